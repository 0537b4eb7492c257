"""Durable execution: every side-effecting call of an action is journaled (DESIGN §5).

A :class:`DurableContext` holds the call list of one action run and a cursor. Each
``durable_execute`` call either replays the journaled outcome of the slot under the cursor,
reconciles a slot that was started but never finished (``PENDING``), or runs the function
and journals its outcome, persisting the whole ``ActionState`` through the store.

Choices this module makes where Flink Agents leaves room:

- Only ``Exception`` outcomes are journaled. ``KeyboardInterrupt``, ``SystemExit`` and
  ``asyncio.CancelledError`` are not outcomes of the call: they propagate and leave the slot
  as it was (``PENDING`` when a reconciler was given), so a restart reconciles it.
- A call whose slot matches but is still ``PENDING`` and that has no reconciler is run again
  (never replayed as ``None``): without a reconciler, no persisted outcome means re-execute.
- An exception that cannot be pickled (or not unpickled) is journaled as a
  :class:`DurableExecutionError` naming its type and message; the original is still raised.
- ``durable_execute_async`` runs a coroutine function on the event loop and a plain function
  in a worker thread (``asyncio.to_thread``) so it does not block the loop. Durable calls of
  one action run one at a time, in the order they are awaited (``asyncio.gather`` over
  several of them is safe and deterministic); nesting a durable call inside another is an
  error.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from actionstate.client._base import ViewStore
from actionstate.client._call_id import (
    compute_args_digest,
    compute_function_id,
    is_async_callable,
    validate_reconciler,
)
from actionstate.client._errors import DurableExecutionError
from actionstate.client._records import Located, action_part_of, event_part_of, locate
from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    ActionState,
    CallResult,
    CallStatus,
    Event,
    PayloadCodec,
    action_uuid,
    event_uuid,
    state_key,
)

if TYPE_CHECKING:
    from actionstate.client._store import ActionStateStore

__all__ = ["CallCounts", "DurableCall", "DurableContext"]

T = TypeVar("T")

# id() of the DurableContext whose call is running in this task/thread: catches nesting.
_RUNNING_CALL: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "actionstate_running_durable_call", default=None
)


@dataclass
class CallCounts:
    """How the durable calls of one or more action runs were resolved."""

    replayed: int = 0
    """Outcome taken from the journal; the function did not run."""
    reconciled: int = 0
    """A PENDING slot resolved by its reconciler; the function did not run."""
    executed: int = 0
    """Calls with no slot yet (or another path than before): the function ran."""
    reexecuted: int = 0
    """PENDING slots without a reconciler: the function ran again."""

    def add(self, other: CallCounts) -> None:
        """Add ``other``'s counts to these."""
        self.replayed += other.replayed
        self.reconciled += other.reconciled
        self.executed += other.executed
        self.reexecuted += other.reexecuted


class _Mode(Enum):
    REPLAY = "replay"
    EXECUTE = "execute"
    RECONCILE = "reconcile"
    REEXECUTE = "reexecute"


@dataclass(frozen=True)
class _Step:
    mode: _Mode
    clear: bool = False
    """Slots from the cursor on belong to another path and are dropped first."""
    pending: bool = False
    """A PENDING slot is journaled before the function runs."""
    slot: CallResult | None = None


class DurableCall(Generic[T]):
    """The awaitable ``durable_execute_async`` returns; nothing is journaled until awaited."""

    __slots__ = ("_args", "_awaited", "_ctx", "_digest", "_fid", "_func", "_kwargs", "_reconciler")

    def __init__(
        self,
        ctx: DurableContext,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reconciler: Callable[[], Any] | None,
    ) -> None:
        self._ctx = ctx
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self._reconciler = reconciler
        self._fid = compute_function_id(func)
        self._digest = compute_args_digest(args, kwargs)
        self._awaited = False

    def __await__(self) -> Generator[Any, None, T]:
        if self._awaited:
            msg = (
                f"durable call of {self._fid} was already awaited; make a new call to run it again"
            )
            raise DurableExecutionError(msg)
        self._awaited = True
        return self._ctx._run_async(self).__await__()

    def __repr__(self) -> str:
        return f"<DurableCall {self._fid} awaited={self._awaited}>"


class DurableContext:
    """Journals the durable calls of one action run in its ``ActionState`` (DESIGN §5).

    ``store`` is any ``ActionStateStore``; ``key``, ``seq``, ``action`` (the registered
    action name) and ``event`` (the task event) name the state. ``state`` is the journal to
    resume; without it the run starts from ``ActionState(taskEvent=event)``.
    """

    def __init__(
        self,
        store: ActionStateStore,
        *,
        key: str,
        seq: int,
        action: str,
        event: Event,
        state: ActionState | None = None,
        codec: PayloadCodec = CLOUDPICKLE_CODEC,
    ) -> None:
        self._store = store
        self._key = key
        self._seq = seq
        self._action = action
        self._event = event
        base = state if state is not None else ActionState(task_event=event)
        self._state = base
        self._calls: list[CallResult] = list(base.call_results)
        self._index = 0
        self._codec = codec
        self._lock: asyncio.Lock | None = None
        self._busy = False
        # The event's UUID (Jackson-compatible JSON of its attributes) is the costly part of
        # a state key; a run's key never changes, so it is computed here, once.
        self._event_part = (
            event_part_of(event) if isinstance(event, Event) else str(event_uuid(event.attributes))
        )
        action_part = action_part_of(action) if type(action) is str else action_uuid(action)
        self._state_key = state_key(key, seq, self._event_part, action_part)
        # Stores that ``put`` as ViewStore does are given the located key and a working
        # state (the call list shared, not copied): they encode it before returning.
        self._direct = _direct_store(store)
        self._located: Located | None = None
        self._working: ActionState | None = None
        self.counts = CallCounts()
        """How this run's durable calls were resolved so far."""

    @property
    def key(self) -> str:
        """The agent key of the run."""
        return self._key

    @property
    def seq(self) -> int:
        """The sequence number of the run."""
        return self._seq

    @property
    def action(self) -> str:
        """The registered name of the action being run."""
        return self._action

    @property
    def event(self) -> Event:
        """The task event of the run."""
        return self._event

    @property
    def state_key(self) -> str:
        """The state key this run persists under."""
        return self._state_key

    @property
    def call_index(self) -> int:
        """Index of the next durable call (the cursor)."""
        return self._index

    @property
    def next_call_id(self) -> str:
        """Id the next durable call carries: ``"<state key>:<index>"``, stable across restarts.

        Pass it to an external service as an idempotency key so a reconciler can later ask
        whether that call happened. The cursor moves when a call finishes (an async call:
        when it is awaited), so read it just before making the call it is meant for.
        """
        return f"{self._state_key}:{self._index}"

    def snapshot(self) -> ActionState:
        """A copy of the action state as the next persist would write it."""
        return self._state.model_copy(
            update={
                "call_results": list(self._calls),
                "output_events": list(self._state.output_events),
            }
        )

    # -- sync -------------------------------------------------------------------------------

    def durable_execute(
        self,
        func: Callable[..., T],
        *args: Any,
        reconciler: Callable[[], T] | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``func(*args, **kwargs)`` once across restarts; replay its journaled outcome.

        With a ``reconciler`` (zero arguments), a call that was started but whose outcome was
        never journaled is not run again: the reconciler's answer becomes its outcome.
        ``reconciler`` is reserved and never passed to ``func``.
        """
        rec = validate_reconciler(reconciler)
        _require_sync(func, "func")
        if rec is not None:
            _require_sync(rec, "reconciler")
        self._check_not_nested()
        if self._busy or (self._lock is not None and self._lock.locked()):
            msg = (
                f"another durable call of action {self._action!r} is in flight; "
                "await it before calling durable_execute"
            )
            raise DurableExecutionError(msg)
        fid = compute_function_id(func)
        digest = compute_args_digest(args, kwargs)
        step = self._plan(fid, digest, reconcile=rec is not None)
        if step.mode is _Mode.REPLAY:
            replayed: T = self._replay(step)
            return replayed
        self._busy = True
        token = _RUNNING_CALL.set(id(self))
        try:
            self._prepare(step, fid, digest)
            if step.mode is _Mode.RECONCILE and rec is not None:
                target: Callable[[], Any] = rec
            else:
                target = functools.partial(func, *args, **kwargs)
            try:
                value: T = target()
            except Exception as exc:
                self._place(self._finish(fid, digest, error=exc))
                self._persist()
                self._index += 1
                raise
            if inspect.isawaitable(value):
                _discard(value)  # not journaled: a coroutine object is no outcome
                msg = f"{fid} returned an awaitable; use `await ctx.durable_execute_async(...)`"
                raise TypeError(msg)
            self._place(self._finish(fid, digest, value=value))
            self._persist()
            self._index += 1
            return value
        finally:
            _RUNNING_CALL.reset(token)
            self._busy = False

    # -- async ------------------------------------------------------------------------------

    @overload
    def durable_execute_async(
        self,
        func: Callable[..., Awaitable[T]],
        *args: Any,
        reconciler: Callable[[], T] | Callable[[], Awaitable[T]] | None = None,
        **kwargs: Any,
    ) -> DurableCall[T]: ...

    @overload
    def durable_execute_async(
        self,
        func: Callable[..., T],
        *args: Any,
        reconciler: Callable[[], T] | Callable[[], Awaitable[T]] | None = None,
        **kwargs: Any,
    ) -> DurableCall[T]: ...

    def durable_execute_async(
        self,
        func: Callable[..., Any],
        *args: Any,
        reconciler: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> DurableCall[Any]:
        """Like :meth:`durable_execute`, returning an awaitable; journals only when awaited.

        ``func`` and ``reconciler`` may be coroutine functions (awaited on the loop) or plain
        functions (run in a worker thread). The PENDING slot is written at await time.
        """
        rec = validate_reconciler(reconciler)
        self._check_not_nested()
        return DurableCall(self, func, args, kwargs, rec)

    async def _run_async(self, call: DurableCall[Any]) -> Any:
        fid, digest, rec = call._fid, call._digest, call._reconciler
        self._check_not_nested()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            step = self._plan(fid, digest, reconcile=rec is not None)
            if step.mode is _Mode.REPLAY:
                return self._replay(step)
            self._busy = True
            token = _RUNNING_CALL.set(id(self))
            try:
                await self._aprepare(step, fid, digest)
                if step.mode is _Mode.RECONCILE and rec is not None:
                    target: Callable[[], Any] = rec
                else:
                    target = functools.partial(call._func, *call._args, **call._kwargs)
                try:
                    value = await _call(target)
                except Exception as exc:
                    self._place(self._finish(fid, digest, error=exc))
                    await self._apersist()
                    self._index += 1
                    raise
                self._place(self._finish(fid, digest, value=value))
                await self._apersist()
                self._index += 1
                return value
            finally:
                _RUNNING_CALL.reset(token)
                self._busy = False

    # -- the state machine ------------------------------------------------------------------

    def _check_not_nested(self) -> None:
        if _RUNNING_CALL.get() == id(self):
            msg = (
                f"durable calls cannot be nested: a durable call of action {self._action!r} "
                "is running; make the inner call a plain call of the outer function"
            )
            raise DurableExecutionError(msg)

    def _plan(self, fid: str, digest: str, *, reconcile: bool) -> _Step:
        slot = self._calls[self._index] if self._index < len(self._calls) else None
        clear = False
        if slot is not None and not slot.matches(fid, digest):
            clear = True  # the action took another path than the journaled run
            slot = None
        if slot is None:
            return _Step(_Mode.EXECUTE, clear=clear, pending=reconcile)
        if slot.effective_status is not CallStatus.PENDING:
            return _Step(_Mode.REPLAY, slot=slot)
        return _Step(_Mode.RECONCILE if reconcile else _Mode.REEXECUTE, slot=slot)

    def _replay(self, step: _Step) -> Any:
        slot = step.slot
        assert slot is not None
        index = self._index
        self._index += 1
        self.counts.replayed += 1
        if slot.effective_status is CallStatus.FAILED:
            if slot.exception_payload is None:
                msg = (
                    f"call #{index} ({slot.function_id}) of {self._state_key} is journaled as "
                    "FAILED without an exception payload; the record is damaged"
                )
                raise DurableExecutionError(msg)
            error = self._decode(slot.exception_payload, index, slot.function_id)
            if not isinstance(error, BaseException):
                msg = (
                    f"call #{index} ({slot.function_id}) of {self._state_key} has an exception "
                    f"payload that decodes to {type(error).__name__}, not an exception"
                )
                raise DurableExecutionError(msg)
            raise error
        if slot.result_payload is None:
            return None
        return self._decode(slot.result_payload, index, slot.function_id)

    def _decode(self, payload: bytes, index: int, fid: str) -> Any:
        try:
            return self._codec.decode(payload)
        except Exception as exc:
            msg = (
                f"the journaled outcome of call #{index} ({fid}) of {self._state_key} could not "
                f"be decoded with codec {self._codec.name!r}: {exc}"
            )
            raise DurableExecutionError(msg) from exc

    def _prepare(self, step: _Step, fid: str, digest: str) -> None:
        if step.clear:
            del self._calls[self._index :]
            if step.pending:  # the reconcile path persists the cleared journal (DESIGN §5)
                self._persist()
        if step.pending:
            self._calls.append(CallResult.pending(fid, digest))
            self._persist()
        self._count(step)

    async def _aprepare(self, step: _Step, fid: str, digest: str) -> None:
        if step.clear:
            del self._calls[self._index :]
            if step.pending:
                await self._apersist()
        if step.pending:
            self._calls.append(CallResult.pending(fid, digest))
            await self._apersist()
        self._count(step)

    def _count(self, step: _Step) -> None:
        if step.mode is _Mode.RECONCILE:
            self.counts.reconciled += 1
        elif step.mode is _Mode.REEXECUTE:
            self.counts.reexecuted += 1
        else:
            self.counts.executed += 1

    def _finish(
        self,
        fid: str,
        digest: str,
        *,
        value: Any = None,
        error: Exception | None = None,
    ) -> CallResult:
        index = self._index
        if error is not None:
            return CallResult.failed(fid, digest, self._encode_error(error, index, fid))
        try:
            payload = self._codec.encode(value)
        except Exception as exc:
            msg = (
                f"call #{index} ({fid}) of {self._state_key} ran, but its result of type "
                f"{type(value).__name__} could not be encoded with codec {self._codec.name!r}: "
                f"{exc}; return a value the codec can encode"
            )
            raise DurableExecutionError(msg) from exc
        return CallResult.succeeded(fid, digest, payload)

    def _encode_error(self, error: Exception, index: int, fid: str) -> bytes:
        try:
            payload = self._codec.encode(error)
            self._codec.decode(payload)  # an exception that cannot be rebuilt is no outcome
        except Exception as exc:
            stand_in = DurableExecutionError(
                f"call #{index} ({fid}) failed with {type(error).__module__}."
                f"{type(error).__qualname__}: {error} (the exception itself could not be "
                f"journaled: {exc})"
            )
            try:
                return self._codec.encode(stand_in)
            except Exception:
                msg = (
                    f"call #{index} ({fid}) of {self._state_key} failed, and codec "
                    f"{self._codec.name!r} cannot encode its exception; use a codec that can"
                )
                raise DurableExecutionError(msg) from error
        return payload

    def _place(self, outcome: CallResult) -> None:
        if self._index < len(self._calls):
            self._calls[self._index] = outcome
        else:
            self._calls.append(outcome)

    def _persist(self) -> None:
        if self._direct is not None:
            self._direct.put_located(self._location(), self._working_state())
        else:
            self._store.put(self._key, self._seq, self._action, self._event, self.snapshot())

    async def _apersist(self) -> None:
        if self._direct is not None:
            await self._direct.aput_located(self._location(), self._working_state())
        else:
            await self._store.aput(self._key, self._seq, self._action, self._event, self.snapshot())

    def _location(self) -> Located:
        if self._located is None:  # validated as ``put`` would, on the first persist
            self._located = locate(
                self._key, self._seq, self._action, self._event, event_part=self._event_part
            )
        return self._located

    def _working_state(self) -> ActionState:
        if self._working is None:
            self._working = self._state.model_copy(update={"call_results": self._calls})
        return self._working


def _direct_store(store: object) -> ViewStore | None:
    # A subclass overriding put/aput (a test double, a wrapper) keeps being called through them.
    kind = type(store)
    if (
        isinstance(store, ViewStore)
        and getattr(kind, "put", None) is ViewStore.put
        and getattr(kind, "aput", None) is ViewStore.aput
    ):
        return store
    return None


async def _call(target: Callable[[], Any]) -> Any:
    if is_async_callable(target):
        return await target()
    value = await asyncio.to_thread(target)
    if inspect.isawaitable(value):
        value = await value
    return value


def _require_sync(func: Callable[..., Any], role: str) -> None:
    if is_async_callable(func):
        msg = (
            f"{role} {compute_function_id(func)} is a coroutine function; "
            "use `await ctx.durable_execute_async(...)` for it"
        )
        raise TypeError(msg)


def _discard(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()
