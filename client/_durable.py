"""Durable execution: every side-effecting call of an action is journaled (DESIGN §5).

A :class:`DurableContext` holds the call list of one action run and a cursor. Each
``durable_execute`` call either replays the journaled outcome of the slot under the cursor,
reconciles a slot that was started but never finished (``PENDING``), or runs the function
and journals its outcome, persisting the whole ``ActionState`` through the store.

Choices this module makes where Flink Agents leaves room:

- The in-memory call list always equals what the store acknowledged: each change to it
  (a PENDING slot, a terminal outcome, dropping another path's slots) is undone when its
  write raises, and the write's error reaches the caller.
- Only ``Exception`` outcomes are journaled. ``KeyboardInterrupt``, ``SystemExit`` and
  ``asyncio.CancelledError`` are not outcomes of the call: they propagate and leave the slot
  as it was (``PENDING`` when a reconciler was given), so a restart reconciles it.
- A call whose slot matches but is still ``PENDING`` and that has no reconciler is run again
  (never replayed as ``None``): without a reconciler, no persisted outcome means re-execute.
- A call with a reconciler whose reconciler (or function) raises :class:`ReconcileLater`
  journals nothing: the slot stays ``PENDING``, the action stops, a later recovery asks again.
- An exception that cannot be pickled (or not unpickled) is journaled as a
  :class:`DurableExecutionError` naming its type and message; the original is still raised.
- Payloads are written with the store's ``payload_codec`` and replayed with the codec their
  record names (a record without a codec header: by content, DESIGN §3). Payloads of a
  resumed record in another codec are re-encoded with the store's before the first write,
  so a record's codec header always tells the truth.
- Order: a durable call takes its index (and ``next_call_id``) when it is *made*
  (``durable_execute_async`` called, not awaited), and calls are journaled in that order.
  An action must make its durable calls in the same order on every run: creating them up
  front and ``asyncio.gather``-ing them is deterministic, but coroutines that await other
  I/O *before* making their durable call make the order follow that I/O's timing. A run
  whose call does not match its journaled slot is counted (``CallCounts.diverged``) and
  logged with the state key and call index, then takes the new path.
- Async calls must be awaited in the order they were made (``gather`` keeps it). When one
  ends without a journaled outcome (its write failed, it was cancelled, its reconciler
  answered "later"), the calls made after it and not run yet are void: awaiting them raises
  :class:`DurableExecutionError`; make them again. ``durable_execute_async`` runs a
  coroutine function on the event loop and a plain function in a worker thread
  (``asyncio.to_thread``); nesting a durable call inside another is an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from actionstate.client._base import ViewStore
from actionstate.client._call_id import (
    CallIds,
    compute_function_id,
    is_async_callable,
    validate_reconciler,
)
from actionstate.client._errors import DurableExecutionError, ReconcileLater
from actionstate.client._locate import Located, action_part_of, event_part_of, locate
from actionstate.serde import (
    ActionState,
    CallResult,
    CallStatus,
    Event,
    PayloadCodec,
    SerdeError,
    action_uuid,
    event_uuid,
    state_key,
)
from actionstate.serde._payloads import codec_of_payload

if TYPE_CHECKING:
    from actionstate.client._store import ActionStateStore

__all__ = ["CallCounts", "DurableCall", "DurableContext", "reencode_calls"]

T = TypeVar("T")

_log = logging.getLogger("actionstate.client.durable")

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
    diverged: int = 0
    """Calls that did not match their journaled slot: the journal from there was dropped."""
    unsettled: int = 0
    """PENDING slots whose reconciler answered ``ReconcileLater``: left PENDING."""

    def add(self, other: CallCounts) -> None:
        """Add ``other``'s counts to these."""
        self.replayed += other.replayed
        self.reconciled += other.reconciled
        self.executed += other.executed
        self.reexecuted += other.reexecuted
        self.diverged += other.diverged
        self.unsettled += other.unsettled


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
    """The call has a reconciler: a PENDING slot is journaled (or is) before it runs."""
    slot: CallResult | None = None
    """The matching PENDING slot being reconciled or re-executed, if any."""

    @property
    def cut(self) -> bool:
        """The terminal write drops another path's slots (nothing was persisted before)."""
        return self.clear and not self.pending


class DurableCall(Generic[T]):
    """The awaitable ``durable_execute_async`` returns; nothing is journaled until awaited.

    Its index in the journal (``call_id``) is taken when it is made.
    """

    __slots__ = (
        "_args",
        "_awaited",
        "_ctx",
        "_digest",
        "_fid",
        "_func",
        "_index",
        "_kwargs",
        "_reconciler",
    )

    def __init__(
        self,
        ctx: DurableContext,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reconciler: Callable[[], Any] | None,
        *,
        name: str | None = None,
    ) -> None:
        self._ctx = ctx
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self._reconciler = reconciler
        self._fid, self._digest = ctx._ids.identify(func, args, kwargs, name)
        self._awaited = False
        self._index = ctx._reserve(self)

    @property
    def call_id(self) -> str:
        """``"<state key>:<index>"``: what ``ctx.next_call_id`` was when this call was made."""
        return f"{self._ctx.state_key}:{self._index}"

    def __await__(self) -> Generator[Any, None, T]:
        if self._awaited:
            msg = (
                f"durable call of {self._fid} was already awaited; make a new call to run it again"
            )
            raise DurableExecutionError(msg)
        self._awaited = True
        return self._ctx._run_async(self).__await__()

    def __repr__(self) -> str:
        return f"<DurableCall #{self._index} {self._fid} awaited={self._awaited}>"


class DurableContext:
    """Journals the durable calls of one action run in its ``ActionState`` (DESIGN §5).

    ``store`` is any ``ActionStateStore``; its ``payload_codec`` encodes the outcomes.
    ``key``, ``seq``, ``action`` (the registered action name) and ``event`` (the task event)
    name the state. ``state`` is the journal to resume, ``state_codec`` the payload codec its
    record names (None: none named, payloads are read by content); without ``state`` the run
    starts from ``ActionState(taskEvent=event)``.
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
        state_codec: str | None = None,
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
        self._codec = store.payload_codec
        # The codec of the payloads in _calls; the store's own once this run has written.
        self._calls_codec = state_codec if state is not None else self._codec.name
        self._made: list[DurableCall[Any]] = []  # async calls made, not finished, in order
        self._unsettled: ReconcileLater | None = None
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
        self._ids = CallIds(action)
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
        """Index of the next durable call to be journaled (the cursor)."""
        return self._index

    @property
    def next_call_id(self) -> str:
        """Id the next durable call made carries: ``"<state key>:<index>"``, stable across restarts.

        Pass it to an external service as an idempotency key so a reconciler can later ask
        whether that call happened. A call takes its index when it is made
        (``durable_execute`` or ``durable_execute_async`` called, not when awaited), so
        several async calls made before the first await each get their own id: read it just
        before making the call it is meant for (``DurableCall.call_id`` tells it afterwards).
        """
        return f"{self._state_key}:{self._index + len(self._made)}"

    @property
    def unsettled(self) -> ReconcileLater | None:
        """The ``ReconcileLater`` a reconciler answered in this run, if any; the run stops."""
        return self._unsettled

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
        name: str | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``func(*args, **kwargs)`` once across restarts; replay its journaled outcome.

        With a ``reconciler`` (zero arguments), a call that was started but whose outcome was
        never journaled is not run again: the reconciler's answer becomes its outcome (its
        return value SUCCEEDED, its exception FAILED). A reconciler that cannot tell yet
        raises :class:`ReconcileLater`: nothing is journaled, the slot stays PENDING and the
        error stops the action; a later ``recover()`` asks again. ``name`` is the call's
        function id in the journal instead of the one computed from ``func``. ``reconciler``
        and ``name`` are reserved and never passed to ``func``.
        """
        rec = validate_reconciler(reconciler)
        _require_sync(func, "func")
        if rec is not None:
            _require_sync(rec, "reconciler")
        self._check_not_nested()
        if self._unsettled is not None:
            raise self._unsettled
        if self._busy or (self._lock is not None and self._lock.locked()) or self._made:
            msg = (
                f"another durable call of action {self._action!r} is in flight or made but not "
                "awaited; await it before calling durable_execute"
            )
            raise DurableExecutionError(msg)
        fid, digest = self._ids.identify(func, args, kwargs, name)
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
                self._unsettle_on_later(exc, step)
                self._save(self._finish(fid, digest, error=exc), cut=step.cut)
                self._done(step)
                raise
            if inspect.isawaitable(value):
                _discard(value)  # not journaled: a coroutine object is no outcome
                msg = f"{fid} returned an awaitable; use `await ctx.durable_execute_async(...)`"
                raise TypeError(msg)
            self._save(self._finish(fid, digest, value=value), cut=step.cut)
            self._done(step)
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
        name: str | None = None,
        **kwargs: Any,
    ) -> DurableCall[T]: ...

    @overload
    def durable_execute_async(
        self,
        func: Callable[..., T],
        *args: Any,
        reconciler: Callable[[], T] | Callable[[], Awaitable[T]] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> DurableCall[T]: ...

    def durable_execute_async(
        self,
        func: Callable[..., Any],
        *args: Any,
        reconciler: Callable[[], Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> DurableCall[Any]:
        """Like :meth:`durable_execute`, returning an awaitable; journals only when awaited.

        ``func`` and ``reconciler`` may be coroutine functions (awaited on the loop) or plain
        functions (run in a worker thread). The call takes its index now; its PENDING slot
        is written when it is awaited. Await calls in the order they are made.
        """
        rec = validate_reconciler(reconciler)
        self._check_not_nested()
        return DurableCall(self, func, args, kwargs, rec, name=name)

    def _reserve(self, call: DurableCall[Any]) -> int:
        self._made.append(call)
        return self._index + len(self._made) - 1

    async def _run_async(self, call: DurableCall[Any]) -> Any:
        try:
            self._check_not_nested()
            self._check_turn(call)
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                self._check_turn(call)
                return await self._step_async(call)
        finally:
            self._retire(call)

    def _check_turn(self, call: DurableCall[Any]) -> None:
        if self._unsettled is not None:
            raise self._unsettled
        if call not in self._made:
            msg = (
                f"durable call #{call._index} ({call._fid}) of {self._state_key} is void: a "
                "call made before it ended without a journaled outcome; make the call again"
            )
            raise DurableExecutionError(msg)
        for earlier in self._made:
            if earlier is call:
                return
            if not earlier._awaited:
                msg = (
                    f"durable call #{call._index} ({call._fid}) was awaited before call "
                    f"#{earlier._index} ({earlier._fid}), which was made first; await durable "
                    "calls in the order they are made (asyncio.gather keeps it)"
                )
                raise DurableExecutionError(msg)

    def _retire(self, call: DurableCall[Any]) -> None:
        if call not in self._made:
            return
        if self._index > call._index:
            self._made.remove(call)
        else:  # no outcome journaled: the indexes taken after it are not valid any more
            self._made.clear()

    async def _step_async(self, call: DurableCall[Any]) -> Any:
        fid, digest, rec = call._fid, call._digest, call._reconciler
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
                self._unsettle_on_later(exc, step)
                await self._asave(self._finish(fid, digest, error=exc), cut=step.cut)
                self._done(step)
                raise
            await self._asave(self._finish(fid, digest, value=value), cut=step.cut)
            self._done(step)
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
            self._diverged(slot, fid)
            slot = None
        if slot is None:
            return _Step(_Mode.EXECUTE, clear=clear, pending=reconcile)
        if slot.effective_status is not CallStatus.PENDING:
            return _Step(_Mode.REPLAY, slot=slot)
        mode = _Mode.RECONCILE if reconcile else _Mode.REEXECUTE
        return _Step(mode, pending=reconcile, slot=slot)

    def _diverged(self, slot: CallResult, fid: str) -> None:
        self.counts.diverged += 1
        _log.warning(
            "action %s diverged from its journal: state %s call #%d is journaled as %s but "
            "the run now calls %s (or another argument digest); journaled calls #%d.. are "
            "dropped and the run goes on from there",
            self._action,
            self._state_key,
            self._index,
            slot.function_id,
            fid,
            self._index,
        )

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
        where = f"the journaled outcome of call #{index} ({fid}) of {self._state_key}"
        try:
            codec = codec_of_payload(self._calls_codec, payload)
        except SerdeError as exc:
            msg = f"{where} names a codec this client does not know: {exc}"
            raise DurableExecutionError(msg) from exc
        try:
            return codec.decode(payload)
        except Exception as exc:
            msg = f"{where} could not be decoded with codec {codec.name!r}: {exc}"
            raise DurableExecutionError(msg) from exc

    def _prepare(self, step: _Step, fid: str, digest: str) -> None:
        if step.clear and step.pending:  # the reconcile path persists the cleared journal
            self._save(None, cut=True)
        if step.pending and step.slot is None:
            self._save(CallResult.pending(fid, digest))

    async def _aprepare(self, step: _Step, fid: str, digest: str) -> None:
        if step.clear and step.pending:
            await self._asave(None, cut=True)
        if step.pending and step.slot is None:
            await self._asave(CallResult.pending(fid, digest))

    def _unsettle_on_later(self, error: Exception, step: _Step) -> None:
        """Re-raise a ``ReconcileLater`` of a call with a PENDING slot, journaling nothing."""
        if not isinstance(error, ReconcileLater) or not step.pending:
            return
        error.state_key = self._state_key
        error.call_index = self._index
        self._unsettled = error
        self.counts.unsettled += 1
        _log.info(
            "call #%d of state %s stays PENDING: its reconciler will be asked again later",
            self._index,
            self._state_key,
        )
        raise error

    def _done(self, step: _Step) -> None:
        self._index += 1
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

    # -- persisting: the call list changes only with an acknowledged write --------------------

    def _edit(self, outcome: CallResult | None, *, cut: bool) -> None:
        """Put ``outcome`` in the slot under the cursor, dropping the slots from it first
        when ``cut``; payloads journaled in another codec are re-encoded in the store's."""
        if self._calls_codec != self._codec.name:
            self._calls[:] = reencode_calls(
                self._calls, self._calls_codec, self._codec, self._state_key
            )
        index = self._index
        if cut:
            del self._calls[index:]
        if outcome is None:
            return
        if index < len(self._calls):
            self._calls[index] = outcome
        else:
            self._calls.append(outcome)

    def _save(self, outcome: CallResult | None, *, cut: bool = False) -> None:
        before = self._calls[:]
        try:
            self._edit(outcome, cut=cut)
            self._persist()
        except BaseException:
            self._calls[:] = before
            raise
        self._calls_codec = self._codec.name

    async def _asave(self, outcome: CallResult | None, *, cut: bool = False) -> None:
        before = self._calls[:]
        try:
            self._edit(outcome, cut=cut)
            await self._apersist()
        except BaseException:
            self._calls[:] = before
            raise
        self._calls_codec = self._codec.name

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


def reencode_calls(
    calls: list[CallResult], codec_name: str | None, codec: PayloadCodec, skey: str
) -> list[CallResult]:
    """``calls`` with every payload not in ``codec`` (read as ``codec_name`` names it, or by
    content when None) decoded and encoded again with ``codec``."""
    out: list[CallResult] = []
    for index, call in enumerate(calls):
        update: dict[str, bytes] = {}
        for field, data in (
            ("result_payload", call.result_payload),
            ("exception_payload", call.exception_payload),
        ):
            if data is None:
                continue
            try:
                source = codec_of_payload(codec_name, data)
                if source.name != codec.name:
                    update[field] = codec.encode(source.decode(data))
            except Exception as exc:
                msg = (
                    f"call #{index} ({call.function_id}) of {skey} was journaled with another "
                    f"codec than the store's {codec.name!r} and cannot be re-encoded: {exc}; "
                    "open the store with the payload_codec the record names to resume it"
                )
                raise DurableExecutionError(msg) from exc
        out.append(call.model_copy(update=update) if update else call)
    return out


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
