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

``run()`` makes the worker a member of a fleet (client/fleet): it takes requests from a
Kafka topic through a consumer group instead of ``submit`` calls.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from actionstate.client._base import ViewStore
from actionstate.client._call_id import is_async_callable
from actionstate.client._durable import DurableContext
from actionstate.client._errors import WorkerError
from actionstate.client._recovery import RecoveryReport, recoverable
from actionstate.client._redrive import RECOVERY_CONCURRENCY, drive_tasks, drive_threads, fold
from actionstate.client._runs import ActionFunc, _Action, _Done, _Run, check_settled, stored_output
from actionstate.client.fleet._settings import FleetSettings
from actionstate.serde import (
    ActionState,
    Event,
    InvalidStateKeyError,
    action_uuid,
    json_problem,
    validate_agent_key,
    validate_seq,
)

if TYPE_CHECKING:
    from actionstate.client._store import ActionStateStore
    from actionstate.client.fleet._loop import FleetLoop
    from actionstate.client.fleet._metrics import FleetMetrics
    from actionstate.client.kafka._settings import KafkaStoreSettings

__all__ = ["Worker"]

F = TypeVar("F", bound=ActionFunc)


class Worker:
    """Runs registered actions durably over ``store`` and recovers unfinished ones.

    Outcomes of durable calls are encoded with the store's ``payload_codec`` (its settings
    are the one place the codec is configured) and replayed with the codec each record names.
    """

    def __init__(self, store: ActionStateStore | None = None) -> None:
        self._store_or_none = store
        self._actions: dict[str, _Action] = {}
        self._next_seq: dict[str, int] | None = None
        self._seq_lock = threading.Lock()
        self._fleet: FleetLoop | None = None

    @property
    def store(self) -> ActionStateStore:
        """The store this worker journals to."""
        return self._store

    @property
    def has_store(self) -> bool:
        """Whether the worker has a store (a store-less one gets it from ``run()``)."""
        return self._store_or_none is not None

    @property
    def _store(self) -> ActionStateStore:
        store = self._store_or_none
        if store is None:
            msg = (
                "this worker has no store: build it with Worker(KafkaStore(...)), or let "
                "run() / `actionstate worker` build one from their settings"
            )
            raise WorkerError(msg)
        return store

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
        number = self._take_seq(key) if seq is None else self._note_seq(key, _worker_seq(seq))
        stored = self._store.get_stored(key, number, act.name, event)
        state = None if stored is None else stored.state
        if state is not None and state.completed:
            return _Done(stored_output(state))
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
        check_settled(ctx)
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
        check_settled(ctx)
        output = _json_value(result, f"the output of action {ctx.action!r}")
        await self._store.aput(ctx.key, ctx.seq, ctx.action, ctx.event, _completed(ctx, output))
        return output

    # -- the fleet ---------------------------------------------------------------------------

    def run(
        self,
        settings: FleetSettings | None = None,
        *,
        store_settings: KafkaStoreSettings | None = None,
        metrics: FleetMetrics | None = None,
        handle_signals: bool = True,
        **overrides: Any,
    ) -> None:
        """Join the fleet on a requests topic and run its requests until SIGTERM, SIGINT
        or :meth:`stop`: ``worker.run(requests="orders-requests", group="payments")``.

        The group's members share the requests' partitions; each member owns the state
        partitions of its request partitions: on assignment it fences their earlier owners,
        rebuilds them and re-drives their unfinished actions, then runs each request as
        sequence number = its offset and commits the offset once the completed state is
        acknowledged. ``settings`` (or keyword ``overrides``, or ``ACTIONSTATE_*``) are
        :class:`FleetSettings`. A worker built without a store gets a ``KafkaStore`` from
        ``store_settings`` (else from the environment).
        """
        _require_no_loop("run", "arun")
        asyncio.run(
            self.arun(
                settings,
                store_settings=store_settings,
                metrics=metrics,
                handle_signals=handle_signals,
                **overrides,
            )
        )

    async def arun(
        self,
        settings: FleetSettings | None = None,
        *,
        store_settings: KafkaStoreSettings | None = None,
        metrics: FleetMetrics | None = None,
        handle_signals: bool = False,
        **overrides: Any,
    ) -> None:
        """Async :meth:`run`; it handles SIGTERM and SIGINT only with ``handle_signals``."""
        from actionstate.client.fleet._loop import FleetLoop
        from actionstate.client.kafka._store import KafkaStore

        if settings is None:
            settings = FleetSettings(**overrides)
        elif overrides:
            settings = FleetSettings.model_validate(
                {**settings.model_dump(exclude_unset=True), **overrides}
            )
        if not self._actions:
            raise WorkerError("no action is registered; register one with @worker.action(name)")
        built = self._store_or_none is None
        if built:
            self._store_or_none = KafkaStore(store_settings)
        elif store_settings is not None:
            raise WorkerError(
                "this worker has a store already; pass store_settings only to a Worker() "
                "built without one"
            )
        store = self._store
        if not isinstance(store, KafkaStore):
            raise WorkerError(
                f"run() needs a KafkaStore (the fleet shares a Kafka topic); this worker's "
                f"store is a {type(store).__name__}"
            )
        if self._fleet is not None:
            raise WorkerError("this worker is running already; one run() at a time")
        fleet = FleetLoop(self, store, settings, metrics)
        self._fleet = fleet
        loop = asyncio.get_running_loop()
        signals = _install_signals(loop, fleet.stop) if handle_signals else []
        try:
            await fleet.run()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._fleet = None
            if built:
                store.close()
                self._store_or_none = None

    def stop(self) -> None:
        """Ask a running :meth:`run` / :meth:`arun` to stop gracefully (any thread)."""
        fleet = self._fleet
        if fleet is not None:
            fleet.stop()

    # -- recovery ---------------------------------------------------------------------------

    def recover(
        self, partitions: Collection[int] | None = None, *, concurrency: int = RECOVERY_CONCURRENCY
    ) -> RecoveryReport:
        """Rebuild from the store and re-run every unfinished state's action.

        Journaled calls replay, PENDING calls go to their reconciler (or run again without
        one); a call whose reconciler answers ``ReconcileLater`` stays PENDING and is listed
        in ``unsettled``, its action left incomplete for the next ``recover()``. Calls that
        no longer match their journaled slot are counted in ``calls_diverged``. One failing
        action does not stop the others; states whose action is not registered are reported
        and left untouched. ``partitions`` limits the rebuild to the partitions this worker
        owns.

        Only the unfinished states are decoded. Up to ``concurrency`` actions are re-driven
        at once (sync ones on threads, async ones as tasks of one event loop), the states of
        one agent key one after another in seq order; the report lists them in key order.
        """
        limit = _concurrency(concurrency)
        report = self._start_recovery(partitions)
        runs = list(recoverable(self._store, self._actions.values(), report))
        if any(run.action.is_async for run in runs) and not _loop_running():
            errors = asyncio.run(self._adrive_all(runs, limit))
        else:
            # Inside a running loop an async action fails as submit() would, per run.
            errors = drive_threads(runs, self._drive, limit)
        fold(report, runs, errors)
        return report

    async def arecover(
        self, partitions: Collection[int] | None = None, *, concurrency: int = RECOVERY_CONCURRENCY
    ) -> RecoveryReport:
        """Async :meth:`recover`; the rebuild and sync actions run in worker threads."""
        limit = _concurrency(concurrency)
        report = await asyncio.to_thread(self._start_recovery, partitions)
        runs = list(recoverable(self._store, self._actions.values(), report))
        errors = await self._adrive_all(runs, limit)
        fold(report, runs, errors)
        return report

    async def _adrive_all(self, runs: list[_Run], limit: int) -> list[Exception | None]:
        # Sync actions get a pool of ``limit`` threads (the loop's default one may be
        # smaller than the bound); its threads start only if a sync action runs.
        with ThreadPoolExecutor(limit, "actionstate-recover") as pool:

            async def drive(run: _Run) -> Any:
                if run.action.is_async:
                    return await self._drive_async(run)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(pool, self._drive_sync, run)

            return await drive_tasks(runs, drive, limit)

    def _start_recovery(self, partitions: Collection[int] | None) -> RecoveryReport:
        rebuild = self._store.rebuild(partitions=partitions)
        with self._seq_lock:
            self._next_seq = None  # the view changed: sequence numbers are re-read
        return RecoveryReport(rebuild=rebuild)

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
            store = self._store
            if isinstance(store, ViewStore):  # from the view's index: nothing is decoded
                table = {key: seq + 1 for key, seq in store.last_seqs().items()}
            else:
                for skey, _ in store.states():
                    table[skey.agent_key] = max(table.get(skey.agent_key, 0), skey.seq + 1)
            self._next_seq = table
        return self._next_seq


def _completed(ctx: DurableContext, output: Any) -> ActionState:
    state = ctx.snapshot()
    state.output_events.append(Event.output(output))
    state.mark_completed()
    return state


def _check_agent_key(agent_key: object) -> str:
    if not isinstance(agent_key, str):
        msg = (
            f"agent keys must be str, got {type(agent_key).__name__} {agent_key!r}; "
            "convert it yourself (1 and '1' are different keys here, unlike in Flink Agents)"
        )
        raise WorkerError(msg)
    return validate_agent_key(agent_key)


def _worker_seq(seq: object) -> int:
    try:
        return validate_seq(seq)
    except InvalidStateKeyError as exc:
        raise WorkerError(str(exc)) from None


def _json_value(value: Any, what: str) -> Any:
    """``value`` as JSON will give it back; a clear WorkerError if it is not JSON."""
    problem = json_problem(value)
    if problem is not None:
        msg = f"{what} must be JSON-serializable: {problem}"
        raise WorkerError(msg)
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        msg = f"{what} must be JSON-serializable: {exc}"
        raise WorkerError(msg) from exc


def _concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"concurrency must be an int >= 1, got {value!r}"
        raise WorkerError(msg)
    return value


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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


def _install_signals(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
) -> list[signal.Signals]:
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
        installed.append(sig)
    return installed


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
