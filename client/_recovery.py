"""Recovery: find the unfinished states of a store, re-drive their actions, report.

Kept apart from the worker, as DBOS keeps ``_recovery.py``: the worker runs actions, this
module decides which journaled states need running again and what became of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actionstate.client._base import ViewStore
from actionstate.client._durable import CallCounts, DurableContext
from actionstate.client._errors import StoreReadError, WorkerError
from actionstate.client._runs import _Action, _Run
from actionstate.serde import StateKey, event_uuid, state_key

if TYPE_CHECKING:
    from actionstate.client._store import ActionStateStore, RebuildReport, StoredState

__all__ = [
    "RecoveryFailure",
    "RecoveryReport",
    "UnknownActionState",
    "UnsettledCall",
    "counted",
    "recoverable",
]


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


def recoverable(
    store: ActionStateStore,
    actions: Iterable[_Action],
    report: RecoveryReport,
    select: Callable[[StateKey], bool] | None = None,
) -> Iterator[_Run]:
    """The runs that resume the store's unfinished states (those ``select`` accepts), in
    key order; states of an unknown action, or that cannot be resumed or read, go into
    ``report`` instead.

    A view store lists its unfinished states from its index and only they are decoded;
    the completed ones are never looked at. A state that passed the rebuild's check but
    cannot be decoded is a ``RecoveryFailure`` carrying the ``StoreReadError`` that names
    its partition and offset; the other states recover.
    """
    by_uuid = {act.uuid: act for act in actions}
    for skey, load in _unfinished(store, select):
        text = state_key(skey.agent_key, skey.seq, skey.event_uuid, skey.action_uuid)
        act = by_uuid.get(str(skey.action_uuid))
        if act is None:
            report.unknown_actions.append(
                UnknownActionState(text, skey.agent_key, skey.seq, str(skey.action_uuid))
            )
            continue
        try:
            stored = load()
            if stored is None or stored.state.completed:
                continue  # gone, or completed by a put since it was listed
            run = _resume(act, store, skey, stored)
        except (WorkerError, StoreReadError) as exc:
            report.failures.append(RecoveryFailure(text, act.name, exc))
            continue
        yield run


def _unfinished(
    store: ActionStateStore, select: Callable[[StateKey], bool] | None
) -> list[tuple[StateKey, Callable[[], StoredState | None]]]:
    """The unfinished states in (agent key, seq, action UUID) order, each with how to read it."""
    if isinstance(store, ViewStore):
        view = store
        return [(k, functools.partial(view.stored, str(k))) for k in view.unfinished_keys(select)]
    # Any other store: its snapshot, decoded (the protocol has no index to ask).
    found = [
        (k, s)
        for k, s in store.stored_states()
        if not s.state.completed and (select is None or select(k))
    ]
    found.sort(key=lambda ks: (ks[0].agent_key, ks[0].seq, str(ks[0].action_uuid)))
    return [(k, functools.partial(_same, s)) for k, s in found]


def _same(stored: StoredState) -> StoredState:
    return stored


@contextmanager
def counted(report: RecoveryReport, run: _Run) -> Iterator[None]:
    """Around driving one resumed run: counts what became of it in ``report``; an
    ``Exception`` the action raised is reported, not raised."""
    report.actions_resumed += 1
    try:
        yield
    except Exception as exc:
        _report_stop(report, run, exc)
    else:
        report.actions_completed += 1
    report.calls.add(run.ctx.counts)


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
