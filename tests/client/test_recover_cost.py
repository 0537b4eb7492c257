"""Recovery's cost does not grow with the completed history: only unfinished states are
decoded (listed from the view's index), re-driving is concurrent within a bound, one agent
key's states run one at a time in seq order, and the report is what a sequential run gives.
Pure logic over the memory store: the same code serves every view store."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import pytest

from actionstate.client import (
    DurableContext,
    MemoryLog,
    MemoryStore,
    StoreReadError,
    Worker,
    WorkerError,
    compute_args_digest,
)
from actionstate.client import _view as view_module
from actionstate.client._view import Entry
from actionstate.serde import ActionState, CallResult, Event, action_uuid, event_uuid, state_key
from actionstate.serde import _records as records_module

ACTION = "charge"
STEP = "charge-card"


def _pending(store: MemoryStore, key: str, seq: int, order: int) -> None:
    event = Event.input({"order": order})
    state = ActionState(
        task_event=event, call_results=[CallResult.pending(STEP, compute_args_digest((order,), {}))]
    )
    store.put(key, seq, ACTION, event, state)


def _completed(store: MemoryStore, key: str, seq: int, order: int) -> None:
    event = Event.input({"order": order})
    state = ActionState(task_event=event)
    state.output_events.append(Event.output({"receipt": order}))
    state.mark_completed()
    store.put(key, seq, ACTION, event, state)


def _journal(completed: int, unfinished: list[tuple[str, int]]) -> MemoryLog:
    log = MemoryLog(4)
    with MemoryStore(log) as writer:
        for n in range(completed):
            _completed(writer, f"done{n % 7}", n, n)
        for i, (key, seq) in enumerate(unfinished):
            _pending(writer, key, seq, 1000 + i)
    return log


def _paid(order: int) -> str:
    return f"r-{order}"


def _sync_worker(store: MemoryStore, inside: Any = None) -> Worker:
    worker = Worker(store)

    @worker.action(ACTION)
    def charge(data: Any, ctx: DurableContext) -> Any:
        if inside is not None:
            inside(ctx)
        order = data["order"]
        return ctx.durable_execute(_paid, order, reconciler=partial(_paid, order), name=STEP)

    return worker


class DecodeSpy:
    """Counts full decodes of view entries, and fails the test if the rebuild decodes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoded: list[bytes] = []
        original = view_module.decode_action_state

        def counting(data: bytes) -> ActionState:
            self.decoded.append(data)
            return original(data)

        def refused(data: bytes) -> ActionState:
            raise AssertionError("the rebuild's record check decoded a state")

        monkeypatch.setattr(view_module, "decode_action_state", counting)
        monkeypatch.setattr(records_module, "decode_action_state", refused)


def test_recover_decodes_only_the_unfinished_states(monkeypatch: pytest.MonkeyPatch) -> None:
    unfinished = [("open", 0), ("open", 1), ("late", 5)]
    log = _journal(200, unfinished)
    spy = DecodeSpy(monkeypatch)
    with MemoryStore(log) as store:
        report = _sync_worker(store).recover()
        assert report.rebuild is not None
        assert report.rebuild.states_live == 203
        assert (report.actions_resumed, report.actions_completed) == (3, 3)
        assert report.calls_reconciled == 3
        assert len(spy.decoded) == 3
        assert store.unfinished_keys() == []  # the completed writes left the index


def test_the_view_knows_completed_from_the_check() -> None:
    log = _journal(5, [("open", 0)])
    with MemoryStore(log) as store:
        store.rebuild()
        flags = {skey.split("_")[0]: entry.completed for skey, entry in store._view.snapshot()}
        assert flags["open"] is False
        assert all(done for key, done in flags.items() if key != "open")
        assert [(k.agent_key, k.seq) for k in store.unfinished_keys()] == [("open", 0)]


def test_a_state_that_cannot_be_decoded_is_a_failure_naming_its_place() -> None:
    """A view entry that does not decode (the check accepts exactly what decoding does, so
    only a bug or memory corruption gets one there) fails its own recovery with the
    ``StoreReadError`` naming partition and offset; the other states recover."""
    log = _journal(3, [("open", 0)])
    with MemoryStore(log) as store:
        worker = _sync_worker(store)
        store.rebuild()
        event = Event.input({"order": 7})
        broken = state_key("zz", 3, event_uuid(event.attributes), action_uuid(ACTION))
        store._view.put("zz", 3, broken, Entry(b'{"completed": 1}', None, 2, 41))
        store.rebuild = lambda *a, **k: None  # type: ignore[method-assign]  # keep the entry
        report = worker.recover()
        assert report.actions_completed == 1
        [failure] = report.failures
        assert failure.state_key == broken
        assert isinstance(failure.error, StoreReadError)
        assert "partition 2, offset 41" in str(failure.error)


def _unfinished_keys(keys: int, seqs: int) -> list[tuple[str, int]]:
    return [(f"k{k}", s) for k in range(keys) for s in range(seqs)]


class Overlap:
    """How many runs are inside the action at once, and each key's run order."""

    def __init__(self, target: int) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.target = target
        self.reached = threading.Event()
        self.per_key: dict[str, list[tuple[str, int]]] = {}
        self.active_keys: set[str] = set()

    def enter(self, key: str, seq: int) -> None:
        with self.lock:
            assert key not in self.active_keys, f"two runs of {key} at once"
            self.active_keys.add(key)
            self.active += 1
            self.most = max(self.most, self.active)
            self.per_key.setdefault(key, []).append(("start", seq))
            if self.active >= self.target:
                self.reached.set()

    def leave(self, key: str, seq: int) -> None:
        with self.lock:
            self.active -= 1
            self.active_keys.discard(key)
            self.per_key[key].append(("end", seq))


@pytest.mark.parametrize("bound", [1, 3])
def test_sync_recovery_runs_within_the_bound_and_keys_in_order(bound: int) -> None:
    log = _journal(10, _unfinished_keys(6, 3))
    overlap = Overlap(bound)

    def inside(ctx: DurableContext) -> None:
        overlap.enter(ctx.key, ctx.seq)
        # Wait (bounded) until the bound is reached, so an unbounded pool would show.
        overlap.reached.wait(5)
        overlap.leave(ctx.key, ctx.seq)

    with MemoryStore(log) as store:
        report = _sync_worker(store, inside).recover(concurrency=bound)
    assert report.actions_completed == 18
    assert report.ok
    assert overlap.most == bound
    for key, events in overlap.per_key.items():
        expected = [(what, s) for s in range(3) for what in ("start", "end")]
        assert events == expected, key


@pytest.mark.parametrize("bound", [1, 4])
def test_async_recovery_runs_within_the_bound_and_keys_in_order(bound: int) -> None:
    log = _journal(10, _unfinished_keys(8, 3))
    overlap = Overlap(bound)
    with MemoryStore(log) as store:
        worker = Worker(store)

        @worker.action(ACTION)
        async def charge(data: Any, ctx: DurableContext) -> Any:
            overlap.enter(ctx.key, ctx.seq)
            for _ in range(200):  # let other tasks in until the bound is reached
                if overlap.reached.is_set():
                    break
                await asyncio.sleep(0)
            overlap.leave(ctx.key, ctx.seq)
            order = data["order"]
            return await ctx.durable_execute_async(
                _paid, order, reconciler=partial(_paid, order), name=STEP
            )

        report = asyncio.run(worker.arecover(concurrency=bound))
    assert report.actions_completed == 24
    assert report.ok
    assert overlap.most == bound
    for key, events in overlap.per_key.items():
        assert events == [(what, s) for s in range(3) for what in ("start", "end")], key


def _mixed_report(concurrency: int) -> Any:
    log = _journal(20, _unfinished_keys(5, 2))
    with MemoryStore(log) as store:

        def inside(ctx: DurableContext) -> None:
            if ctx.key in ("k1", "k3") and ctx.seq == 1:
                raise ValueError(f"boom {ctx.key}")

        return _sync_worker(store, inside).recover(concurrency=concurrency)


def test_the_report_of_a_concurrent_recovery_is_the_sequential_one() -> None:
    one, many = _mixed_report(1), _mixed_report(8)
    assert (one.actions_resumed, one.actions_completed) == (10, 8)
    assert (many.actions_resumed, many.actions_completed) == (10, 8)
    assert one.calls == many.calls
    assert [f.state_key for f in one.failures] == [f.state_key for f in many.failures]
    assert [f.message for f in many.failures] == ["ValueError: boom k1", "ValueError: boom k3"]


def test_recover_refuses_a_bad_bound() -> None:
    with MemoryStore() as store, pytest.raises(WorkerError, match="concurrency"):
        _sync_worker(store).recover(concurrency=0)
