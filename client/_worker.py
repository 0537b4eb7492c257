"""The worker: runs registered actions durably and re-drives unfinished ones after a crash.

The stored ``taskEvent`` of every state is ``Event.input(data)``, so recovery needs nothing
but the topic: it finds the action by the state key's action UUID (derived from the
registered name) and calls it again with ``data`` and a :class:`DurableContext` over the
journaled calls.

An action that raises leaves its state incomplete, with the calls it made journaled: a later
``recover()`` (after a fix, say) resumes it. A reconciler that answers ``ReconcileLater``
leaves its call PENDING: ``recover()`` reports it in ``RecoveryReport.unsettled`` and the
next ``recover()`` asks again. Sync actions run in the calling thread
(``asubmit`` moves them to a worker thread); async actions run on an event loop
(``submit`` starts one with ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from actionstate.client._call_id import is_async_callable
from actionstate.client._durable import CallCounts, DurableContext
from actionstate.client._errors import WorkerError
from actionstate.serde import (
    ActionState,
    Event,
    StateKey,
    action_uuid,
    event_uuid,
    state_key,
    validate_agent_key,
)

if TYPE_CHECKING:
    from actionstate.client._store import ActionStateStore, RebuildReport, StoredState

__all__ = ["RecoveryFailure", "RecoveryReport", "UnknownActionState", "UnsettledCall", "Worker"]

ActionFunc = Callable[[Any, DurableContext], Any]
F = TypeVar("F", bound=ActionFunc)

_OUTPUT_EVENT_TYPE = "_output_event"


@dataclass(frozen=True)
class RecoveryFailure:
    """An unfinished state whose action could not be brought to completion."""

    state_key: str
    action: str
    error: Exception

    @property
    def message(self) -> str:
        """``"<ExceptionType>: <message>"`` of the error."""
        return f"{type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class UnsettledCall:
    """A PENDING call whose reconciler answered ``ReconcileLater``; its action stays incomplete.

    A later ``recover()`` asks the reconciler again; ``actionstate resolve`` settles it by hand.
    """

    state_key: str
    action: str
    call_index: int
    reason: str


@dataclass(frozen=True)
class UnknownActionState:
    """An unfinished state whose action UUID matches no registered action; left untouched."""

    state_key: str
    agent_key: str
    seq: int
    action_uuid: str


@dataclass
class RecoveryReport:
    """What :meth:`Worker.recover` found and did."""

    actions_resumed: int = 0
    """Unfinished states whose action was run again."""
    actions_completed: int = 0
    """Of those, the ones that now completed."""
    calls: CallCounts = field(default_factory=CallCounts)
    """How the durable calls of the resumed actions were resolved."""
    failures: list[RecoveryFailure] = field(default_factory=list)
    unknown_actions: list[UnknownActionState] = field(default_factory=list)
    unsettled: list[UnsettledCall] = field(default_factory=list)
    """Calls left PENDING because their reconciler answered ``ReconcileLater``."""
    rebuild: RebuildReport | None = None
    """The store's report of the rebuild recovery started with."""

    @property
    def calls_replayed(self) -> int:
        """Calls whose outcome came from the journal."""
        return self.calls.replayed

    @property
    def calls_reconciled(self) -> int:
        """PENDING calls resolved by their reconciler."""
        return self.calls.reconciled

    @property
    def calls_reexecuted(self) -> int:
        """PENDING calls without a reconciler, run again."""
        return self.calls.reexecuted

    @property
    def calls_executed(self) -> int:
        """Calls the crashed run never reached, run for the first time."""
        return self.calls.executed

    @property
    def calls_diverged(self) -> int:
        """Calls that did not match their journaled slot (the action took another path)."""
        return self.calls.diverged

    @property
    def ok(self) -> bool:
        """True when every unfinished state completed and none had an unknown action."""
        return not self.failures and not self.unknown_actions and not self.unsettled


@dataclass(frozen=True)
class _Action:
    name: str
    func: ActionFunc
    is_async: bool
    uuid: str


@dataclass(frozen=True)
class _Run:
    action: _Action
    ctx: DurableContext
    data: Any
    fresh: bool
    """No state existed: the initial ``ActionState(taskEvent)`` is written first."""


@dataclass(frozen=True)
class _Done:
    output: Any


class Worker:
    """Runs registered actions durably over ``store`` and recovers unfinished ones.

    Outcomes of durable calls are encoded with the store's ``payload_codec`` (its settings
    are the one place the codec is configured) and replayed with the codec each record names.
    """

    def __init__(self, store: ActionStateStore) -> None:
        self._store = store
        self._actions: dict[str, _Action] = {}
        self._next_seq: dict[str, int] | None = None
        self._seq_lock = threading.Lock()

    @property
    def store(self) -> ActionStateStore:
        """The store this worker journals to."""
        return self._store

    @property
    def actions(self) -> list[str]:
        """Names of the registered actions."""
        return list(self._actions)

    def action(self, name: str) -> Callable[[F], F]:
        """Register ``func(data, ctx)`` (sync or async) as the action called ``name``.

        The name is the action's identity in every state key: keep it stable across releases.
        """

        def register(func: F) -> F:
            self.register(name, func)
            return func

        return register

    def register(self, name: str, func: ActionFunc) -> None:
        """Register ``func`` as the action ``name`` (what the ``action`` decorator does)."""
        if not isinstance(name, str) or not name:
            msg = f"an action name must be a non-empty str, got {name!r}"
            raise WorkerError(msg)
        if name in self._actions:
            msg = f"an action named {name!r} is already registered; names must be unique"
            raise WorkerError(msg)
        if not callable(func):
            msg = f"action {name!r} must be callable as func(data, ctx), got {func!r}"
            raise WorkerError(msg)
        self._actions[name] = _Action(name, func, is_async_callable(func), str(action_uuid(name)))

    # -- submit -----------------------------------------------------------------------------

    def submit(
        self, agent_key: str, event: Any, seq: int | None = None, *, action: str | None = None
    ) -> Any:
        """Run the action for ``event`` under ``agent_key`` and return its (JSON) output.

        With ``seq`` omitted the next sequence number of ``agent_key`` is taken. With an
        explicit ``seq`` the call is idempotent: a completed state returns its stored output
        without running anything; an unfinished one resumes. ``action`` is required when
        more than one action is registered.
        """
        act = self._resolve(action)
        begun = self._begin(act, agent_key, event, seq)
        if isinstance(begun, _Done):
            return begun.output
        return self._drive(begun)

    async def asubmit(
        self, agent_key: str, event: Any, seq: int | None = None, *, action: str | None = None
    ) -> Any:
        """Async :meth:`submit`; a sync action runs in a worker thread."""
        act = self._resolve(action)
        begun = self._begin(act, agent_key, event, seq)
        if isinstance(begun, _Done):
            return begun.output
        return await self._adrive(begun)

    def _resolve(self, name: str | None) -> _Action:
        if name is None:
            if len(self._actions) == 1:
                return next(iter(self._actions.values()))
            if not self._actions:
                msg = "no action is registered; register one with @worker.action(name)"
            else:
                msg = f"several actions are registered ({', '.join(self._actions)}); pass action="
            raise WorkerError(msg)
        try:
            return self._actions[name]
        except KeyError:
            known = ", ".join(self._actions) or "none"
            msg = f"no action named {name!r} is registered (registered: {known})"
            raise WorkerError(msg) from None

    def _begin(self, act: _Action, agent_key: object, data: Any, seq: int | None) -> _Run | _Done:
        key = _check_agent_key(agent_key)
        value = _json_value(data, "the submitted event")
        event = Event.input(value)
        number = self._take_seq(key) if seq is None else self._note_seq(key, _check_seq(seq))
        stored = self._store.get_stored(key, number, act.name, event)
        state = None if stored is None else stored.state
        if state is not None and state.completed:
            return _Done(_stored_output(state))
        if state is not None and state.task_event is not None:
            event = state.task_event  # resume with the journaled event, id included
        ctx = DurableContext(
            self._store,
            key=key,
            seq=number,
            action=act.name,
            event=event,
            state=state,
            state_codec=None if stored is None else stored.codec,
        )
        return _Run(act, ctx, value, fresh=state is None)

    # -- driving an action ------------------------------------------------------------------

    def _drive(self, run: _Run) -> Any:
        if not run.action.is_async:
            return self._drive_sync(run)
        _require_no_loop("submit", "asubmit")
        return asyncio.run(self._drive_async(run))

    async def _adrive(self, run: _Run) -> Any:
        if run.action.is_async:
            return await self._drive_async(run)
        return await asyncio.to_thread(self._drive_sync, run)

    def _drive_sync(self, run: _Run) -> Any:
        ctx = run.ctx
        if run.fresh:
            self._store.put(ctx.key, ctx.seq, ctx.action, ctx.event, ctx.snapshot())
        result = run.action.func(run.data, ctx)
        _check_settled(ctx)
        if inspect.isawaitable(result):
            _close(result)
            msg = (
                f"action {ctx.action!r} returned an awaitable but is not a coroutine function; "
                "declare it with `async def`"
            )
            raise WorkerError(msg)
        output = _json_value(result, f"the output of action {ctx.action!r}")
        self._store.put(ctx.key, ctx.seq, ctx.action, ctx.event, _completed(ctx, output))
        return output

    async def _drive_async(self, run: _Run) -> Any:
        ctx = run.ctx
        if run.fresh:
            await self._store.aput(ctx.key, ctx.seq, ctx.action, ctx.event, ctx.snapshot())
        result = await run.action.func(run.data, ctx)
        _check_settled(ctx)
        output = _json_value(result, f"the output of action {ctx.action!r}")
        await self._store.aput(ctx.key, ctx.seq, ctx.action, ctx.event, _completed(ctx, output))
        return output

    # -- recovery ---------------------------------------------------------------------------

    def recover(self, partitions: Collection[int] | None = None) -> RecoveryReport:
        """Rebuild from the store and re-run every unfinished state's action.

        Journaled calls replay, PENDING calls go to their reconciler (or run again without
        one); a call whose reconciler answers ``ReconcileLater`` stays PENDING and is listed
        in ``unsettled``, its action left incomplete for the next ``recover()``. Calls that
        no longer match their journaled slot are counted in ``calls_diverged``. One failing
        action does not stop the others; states whose action is not registered are reported
        and left untouched. ``partitions`` limits the rebuild to the partitions this worker
        owns.
        """
        report = self._start_recovery(partitions)
        for run in self._recoverable(report):
            report.actions_resumed += 1
            try:
                self._drive(run)
            except Exception as exc:
                _report_stop(report, run, exc)
            else:
                report.actions_completed += 1
            report.calls.add(run.ctx.counts)
        return report

    async def arecover(self, partitions: Collection[int] | None = None) -> RecoveryReport:
        """Async :meth:`recover`; the rebuild and sync actions run in a worker thread."""
        report = await asyncio.to_thread(self._start_recovery, partitions)
        for run in self._recoverable(report):
            report.actions_resumed += 1
            try:
                await self._adrive(run)
            except Exception as exc:
                _report_stop(report, run, exc)
            else:
                report.actions_completed += 1
            report.calls.add(run.ctx.counts)
        return report

    def _start_recovery(self, partitions: Collection[int] | None) -> RecoveryReport:
        rebuild = self._store.rebuild(partitions=partitions)
        with self._seq_lock:
            self._next_seq = None  # the view changed: sequence numbers are re-read
        return RecoveryReport(rebuild=rebuild)

    def _recoverable(self, report: RecoveryReport) -> Iterable[_Run]:
        by_uuid = {act.uuid: act for act in self._actions.values()}
        unfinished = [(k, s) for k, s in self._store.stored_states() if not s.state.completed]
        unfinished.sort(key=lambda ks: (ks[0].agent_key, ks[0].seq, str(ks[0].action_uuid)))
        for skey, stored in unfinished:
            text = state_key(skey.agent_key, skey.seq, skey.event_uuid, skey.action_uuid)
            act = by_uuid.get(str(skey.action_uuid))
            if act is None:
                report.unknown_actions.append(
                    UnknownActionState(text, skey.agent_key, skey.seq, str(skey.action_uuid))
                )
                continue
            try:
                run = _resume(act, self._store, skey, stored)
            except WorkerError as exc:
                report.failures.append(RecoveryFailure(text, act.name, exc))
                continue
            yield run

    # -- sequence numbers -------------------------------------------------------------------

    def _take_seq(self, key: str) -> int:
        with self._seq_lock:
            table = self._seq_table()
            number = table.get(key, 0)
            table[key] = number + 1
            return number

    def _note_seq(self, key: str, seq: int) -> int:
        with self._seq_lock:
            if self._next_seq is not None:
                self._next_seq[key] = max(self._next_seq.get(key, 0), seq + 1)
            return seq

    def _seq_table(self) -> dict[str, int]:
        if self._next_seq is None:
            table: dict[str, int] = {}
            for skey, _ in self._store.states():
                table[skey.agent_key] = max(table.get(skey.agent_key, 0), skey.seq + 1)
            self._next_seq = table
        return self._next_seq


def _resume(act: _Action, store: ActionStateStore, skey: StateKey, stored: StoredState) -> _Run:
    key, seq, state = skey.agent_key, skey.seq, stored.state
    event = state.task_event
    if event is None or "input" not in event.attributes:
        msg = (
            f"the state of action {act.name!r} for {key!r} seq {seq} has no input task event "
            "(not written by a Worker?); it cannot be re-run"
        )
        raise WorkerError(msg)
    if str(event_uuid(event.attributes)) != str(skey.event_uuid):
        msg = (
            f"the task event of the state of action {act.name!r} for {key!r} seq {seq} does not "
            "hash to its state key's event UUID; re-running it would write another state"
        )
        raise WorkerError(msg)
    ctx = DurableContext(
        store,
        key=key,
        seq=seq,
        action=act.name,
        event=event,
        state=state,
        state_codec=stored.codec,
    )
    return _Run(act, ctx, event.attributes["input"], fresh=False)


def _check_settled(ctx: DurableContext) -> None:
    # An action that caught its ReconcileLater and returned must not be marked completed.
    if ctx.unsettled is not None:
        raise ctx.unsettled


def _report_stop(report: RecoveryReport, run: _Run, error: Exception) -> None:
    # Only the context's own ReconcileLater means "unsettled": a journaled one that replays
    # (raised by a call without a reconciler) is the call's outcome, a failure.
    later = run.ctx.unsettled
    if later is None:
        report.failures.append(RecoveryFailure(run.ctx.state_key, run.action.name, error))
    else:
        report.unsettled.append(
            UnsettledCall(run.ctx.state_key, run.action.name, later.call_index, str(later))
        )


def _completed(ctx: DurableContext, output: Any) -> ActionState:
    state = ctx.snapshot()
    state.output_events.append(Event.output(output))
    state.mark_completed()
    return state


def _stored_output(state: ActionState) -> Any:
    for event in reversed(state.output_events):
        if event.type == _OUTPUT_EVENT_TYPE and "output" in event.attributes:
            return event.attributes["output"]
    return None


def _check_agent_key(agent_key: object) -> str:
    if not isinstance(agent_key, str):
        msg = (
            f"agent keys must be str, got {type(agent_key).__name__} {agent_key!r}; "
            "convert it yourself (1 and '1' are different keys here, unlike in Flink Agents)"
        )
        raise WorkerError(msg)
    return validate_agent_key(agent_key)


def _check_seq(seq: object) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        msg = f"seq must be a non-negative int, got {seq!r}"
        raise WorkerError(msg)
    return seq


def _json_value(value: Any, what: str) -> Any:
    """``value`` as JSON will give it back; a clear WorkerError if it is not JSON."""
    problem = _json_problem(value, "")
    if problem is not None:
        msg = f"{what} must be JSON-serializable: {problem}"
        raise WorkerError(msg)
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        msg = f"{what} must be JSON-serializable: {exc}"
        raise WorkerError(msg) from exc


def _json_problem(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"value{path} is {value!r}, which JSON cannot hold"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                return f"value{path} has a key {k!r} of type {type(k).__name__}; keys must be str"
            problem = _json_problem(item, f"{path}[{k!r}]")
            if problem is not None:
                return problem
        return None
    return f"value{path} is a {type(value).__name__}; use None, bool, int, float, str, list or dict"


def _require_no_loop(method: str, alternative: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    msg = (
        f"Worker.{method} cannot run an async action inside a running event loop; "
        f"await Worker.{alternative}(...) instead"
    )
    raise WorkerError(msg)


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
