"""Settling a PENDING call by hand: the outcome a person looked up, journaled as the slot's
terminal outcome the way a worker would write it (encoded with the store's payload codec,
signed when the store signs), so the next recovery replays it instead of asking again."""

from __future__ import annotations

from typing import Any

from actionstate.serde import ActionStateError, CallResult, CallStatus, split_state_key

from ._base import ViewStore
from ._durable import reencode_calls
from ._errors import CallNotPendingError, ClientError, ResolvedCallError, StateNotFoundError
from ._locate import Located

__all__ = ["resolve_call"]

_UNSET: Any = object()


def resolve_call(
    store: ViewStore,
    state_key: str,
    index: int,
    *,
    result: Any = _UNSET,
    error: str | None = None,
) -> CallResult:
    """Journal the outcome of call ``index`` of the state under ``state_key``: it returned
    ``result``, or (``error``) it failed, replaying as ``ResolvedCallError(error)``.

    The store's view must hold the state (rebuild first). Raises
    :class:`StateNotFoundError` when it does not, :class:`CallNotPendingError` when the call
    does not exist or is not PENDING, ``InvalidStateKeyError`` for a malformed key. Returns
    the journaled call result.
    """
    if (result is _UNSET) == (error is None):
        raise TypeError("give exactly one of result= or error=")
    agent_key, seq = split_state_key(state_key)
    stored = store.stored(state_key)
    if stored is None:
        raise StateNotFoundError(f"no state {state_key!r} in the topic (never written, or pruned)")
    calls = stored.state.call_results
    if not 0 <= index < len(calls):
        what = "is completed" if stored.state.completed else f"has {len(calls)} call(s)"
        raise CallNotPendingError(f"state {state_key!r} {what}: it has no call #{index} to resolve")
    slot = calls[index]
    if slot.effective_status is not CallStatus.PENDING:
        raise CallNotPendingError(
            f"call #{index} ({slot.function_id}) of {state_key!r} is "
            f"{slot.effective_status.value}, not PENDING: its outcome is journaled already and "
            "is never rewritten"
        )
    codec = store.payload_codec
    value = ResolvedCallError(error) if error is not None else result
    try:
        payload = codec.encode(value)
    except ActionStateError as exc:
        raise ClientError(
            f"the store's payload codec {codec.name!r} cannot journal this outcome ({exc}); "
            "set ACTIONSTATE_PAYLOAD_CODEC to the codec the workers use"
        ) from exc
    if error is not None:
        outcome = CallResult.failed(slot.function_id, slot.args_digest, payload)
    else:
        outcome = CallResult.succeeded(slot.function_id, slot.args_digest, payload)
    rewritten = reencode_calls(calls, stored.codec, codec, state_key)
    rewritten[index] = outcome
    state = stored.state.model_copy(update={"call_results": rewritten})
    store.put_located(Located(agent_key, seq, state_key), state)
    return outcome
