"""Worker: submit, sequence numbers, idempotency and recovery, over every store."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from actionstate.client import (
    DurableContext,
    RecoveryReport,
    Worker,
    WorkerError,
)
from actionstate.serde import (
    ActionState,
    CallStatus,
    Event,
    InvalidStateKeyError,
    action_uuid,
)


class Crash(BaseException):
    """Stands for the process dying inside a call: nothing about it is journaled."""


class Ledger:
    """An external system: records charges by idempotency key, answers lookups."""

    def __init__(self) -> None:
        self.charges: list[str] = []
        self.lookups = 0

    def pay(self, order: int, call_id: str) -> str:
        self.charges.append(call_id)
        return f"receipt-{order}"

    def lookup(self, order: int, call_id: str) -> str:
        self.lookups += 1
        assert call_id in self.charges
        return f"receipt-{order}"


def states_of(store: Any, action: str) -> list[tuple[Any, ActionState]]:
    wanted = str(action_uuid(action))
    return [(k, s) for k, s in store.states() if str(k.action_uuid) == wanted]


# -- submit ---------------------------------------------------------------------------------


def test_submit_runs_the_action_and_keeps_a_completed_state(store: Any) -> None:
    ledger = Ledger()
    worker = Worker(store)

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(ledger.pay, data["order"], ctx.next_call_id)
        return {"order": data["order"], "receipt": receipt}

    assert worker.submit("order-42", {"order": 42}, seq=1) == {"order": 42, "receipt": "receipt-42"}

    [(skey, state)] = states_of(store, "charge")
    assert (skey.agent_key, skey.seq) == ("order-42", 1)
    assert state.completed
    assert state.call_results == []
    assert state.task_event is not None
    assert state.task_event.type == "_input_event"
    assert state.task_event.attributes == {"input": {"order": 42}}
    [output] = state.output_events
    assert output.type == "_output_event"
    assert output.attributes == {"output": {"order": 42, "receipt": "receipt-42"}}
    assert len(ledger.charges) == 1


def test_submit_with_explicit_seq_is_idempotent_once_completed(store: Any) -> None:
    runs = 0
    worker = Worker(store)

    @worker.action("count")
    def count(data: Any, ctx: DurableContext) -> Any:
        nonlocal runs
        runs += 1
        return {"n": data}

    assert worker.submit("k", 7, seq=3) == {"n": 7}
    assert worker.submit("k", 7, seq=3) == {"n": 7}
    fresh = Worker(store)  # a fresh worker over the same store sees it too
    fresh.register("count", count)
    assert fresh.submit("k", 7, seq=3) == {"n": 7}
    assert runs == 1


def test_submit_with_explicit_seq_resumes_an_unfinished_state(store: Any) -> None:
    ledger = Ledger()
    fail_after_pay = True
    worker = Worker(store)

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(ledger.pay, data["order"], ctx.next_call_id)
        if fail_after_pay:
            raise RuntimeError("shipping service down")
        return receipt

    with pytest.raises(RuntimeError, match="shipping service down"):
        worker.submit("order-1", {"order": 1}, seq=0)
    [(_, state)] = states_of(store, "charge")
    assert not state.completed
    assert [c.status for c in state.call_results] == [CallStatus.SUCCEEDED]

    fail_after_pay = False
    assert worker.submit("order-1", {"order": 1}, seq=0) == "receipt-1"
    assert len(ledger.charges) == 1  # replayed, not paid twice


def test_omitted_seq_takes_the_next_number_for_the_key(store: Any) -> None:
    worker = Worker(store)

    @worker.action("echo")
    def echo(data: Any, ctx: DurableContext) -> Any:
        return data

    worker.submit("a", "x")
    worker.submit("a", "x")  # same event, next seq: runs again
    worker.submit("b", "y")
    worker.submit("a", "z", seq=10)
    worker.submit("a", "w")

    seqs = sorted((k.agent_key, k.seq) for k, _ in states_of(store, "echo"))
    assert seqs == [("a", 0), ("a", 1), ("a", 10), ("a", 11), ("b", 0)]

    later = Worker(store)  # a new worker continues from the store's states
    later.register("echo", echo)
    later.submit("a", "v")
    assert max(k.seq for k, _ in states_of(store, "echo") if k.agent_key == "a") == 12


@pytest.mark.parametrize("bad", [1, 1.0, b"1", None, ("1",)])
def test_agent_keys_must_be_str_and_are_never_converted(store: Any, bad: Any) -> None:
    worker = Worker(store)
    worker.register("echo", lambda data, ctx: data)

    with pytest.raises(WorkerError, match="agent keys must be str"):
        worker.submit(bad, "x", seq=0)
    assert store.states() == []

    worker.submit("1", "x", seq=0)
    [(skey, _)] = store.states()
    assert skey.agent_key == "1"


def test_agent_key_with_underscore_is_rejected(store: Any) -> None:
    worker = Worker(store)
    worker.register("echo", lambda data, ctx: data)
    with pytest.raises(InvalidStateKeyError):
        worker.submit("order_1", "x")
    assert store.states() == []


def test_bad_seq_is_rejected(store: Any) -> None:
    worker = Worker(store)
    worker.register("echo", lambda data, ctx: data)
    for bad in (-1, True, 1.5, "1"):
        with pytest.raises(WorkerError, match=r"seq must be (an int|between 0 and)"):
            worker.submit("k", "x", seq=bad)
    assert store.states() == []


def test_event_must_be_json_before_anything_is_written(store: Any) -> None:
    worker = Worker(store)
    worker.register("echo", lambda data, ctx: data)
    for bad in ({"when": object()}, {1: "int key"}, float("nan"), {"s": {1, 2}}):
        with pytest.raises(WorkerError, match="JSON-serializable"):
            worker.submit("k", bad)
    assert store.states() == []


def test_output_must_be_json_and_the_state_stays_unfinished(store: Any) -> None:
    worker = Worker(store)
    worker.register("bad", lambda data, ctx: {"at": object()})
    with pytest.raises(WorkerError, match=r"output of action 'bad' must be JSON-serializable"):
        worker.submit("k", "x", seq=0)
    [(_, state)] = store.states()
    assert not state.completed


def test_tuples_come_back_as_lists_on_first_run_and_replay(store: Any) -> None:
    worker = Worker(store)
    worker.register("pair", lambda data, ctx: (data, data))
    assert worker.submit("k", "x", seq=0) == ["x", "x"]
    assert worker.submit("k", "x", seq=0) == ["x", "x"]


def test_action_registration_rules(store: Any) -> None:
    worker = Worker(store)
    with pytest.raises(WorkerError, match="no action is registered"):
        worker.submit("k", 1)
    worker.register("a", lambda data, ctx: "a")
    with pytest.raises(WorkerError, match="already registered"):
        worker.register("a", lambda data, ctx: "again")
    with pytest.raises(WorkerError, match="non-empty str"):
        worker.register("", lambda data, ctx: "")
    worker.register("b", lambda data, ctx: "b")
    with pytest.raises(WorkerError, match="several actions"):
        worker.submit("k", 1)
    with pytest.raises(WorkerError, match="no action named 'c'"):
        worker.submit("k", 1, action="c")
    assert worker.submit("k", 1, action="b") == "b"
    assert worker.actions == ["a", "b"]


def test_async_actions_run_through_submit_and_asubmit(store: Any) -> None:
    ledger = Ledger()
    worker = Worker(store)

    @worker.action("charge")
    async def charge(data: Any, ctx: DurableContext) -> Any:
        call_id = ctx.next_call_id
        return await ctx.durable_execute_async(
            ledger.pay,
            data["order"],
            call_id,
            reconciler=lambda: ledger.lookup(data["order"], call_id),
        )

    assert worker.submit("a", {"order": 1}) == "receipt-1"
    assert asyncio.run(worker.asubmit("b", {"order": 2})) == "receipt-2"
    assert len(ledger.charges) == 2
    assert all(call_id.endswith(":0") for call_id in ledger.charges)


def test_sync_action_through_asubmit_and_many_at_once(store: Any) -> None:
    worker = Worker(store)

    @worker.action("double")
    def double(data: Any, ctx: DurableContext) -> Any:
        return ctx.durable_execute(lambda x: 2 * x, data)

    async def go() -> list[Any]:
        return await asyncio.gather(*(worker.asubmit(f"k{i}", i) for i in range(8)))

    assert asyncio.run(go()) == [2 * i for i in range(8)]
    assert all(s.completed for _, s in store.states())


def test_submit_of_an_async_action_inside_a_running_loop_points_to_asubmit(store: Any) -> None:
    worker = Worker(store)

    @worker.action("a")
    async def a(data: Any, ctx: DurableContext) -> Any:
        return data

    async def go() -> None:
        with pytest.raises(WorkerError, match="asubmit"):
            worker.submit("k", 1)

    asyncio.run(go())


# -- recovery -------------------------------------------------------------------------------


def crash_in_pay(
    ledger: Ledger, worker: Worker, *, reconcile: bool, is_async: bool = False, crashes: int = 1
) -> None:
    """Register "charge" whose pay call crashes after charging, the first ``crashes`` times."""
    left = {"crashes": crashes}

    def pay(order: int, call_id: str) -> str:
        receipt = ledger.pay(order, call_id)
        if left["crashes"]:
            left["crashes"] -= 1
            raise Crash
        return receipt

    def ship(order: int) -> str:
        return f"shipped-{order}"

    def body_sync(data: Any, ctx: DurableContext) -> Any:
        call_id = ctx.next_call_id
        order = data["order"]
        rec = (lambda: ledger.lookup(order, call_id)) if reconcile else None
        receipt = ctx.durable_execute(pay, order, call_id, reconciler=rec)
        return {"receipt": receipt, "ship": ctx.durable_execute(ship, order)}

    async def body_async(data: Any, ctx: DurableContext) -> Any:
        call_id = ctx.next_call_id
        order = data["order"]
        rec = (lambda: ledger.lookup(order, call_id)) if reconcile else None
        receipt = await ctx.durable_execute_async(pay, order, call_id, reconciler=rec)
        return {"receipt": receipt, "ship": await ctx.durable_execute_async(ship, order)}

    worker.register("charge", body_async if is_async else body_sync)


@pytest.mark.parametrize("is_async", [False, True])
def test_recover_reconciles_a_pending_call(store: Any, is_async: bool) -> None:
    ledger = Ledger()
    worker = Worker(store)
    crash_in_pay(ledger, worker, reconcile=True, is_async=is_async)
    with pytest.raises(Crash):
        worker.submit("order-7", {"order": 7}, seq=0)
    [(_, state)] = store.states()
    assert [c.status for c in state.call_results] == [CallStatus.PENDING]

    report = worker.recover()

    assert isinstance(report, RecoveryReport)
    assert report.ok
    assert (report.actions_resumed, report.actions_completed) == (1, 1)
    assert (report.calls_reconciled, report.calls_executed, report.calls_replayed) == (1, 1, 0)
    assert report.calls_reexecuted == 0
    assert len(ledger.charges) == 1
    assert ledger.lookups == 1
    [(_, state)] = store.states()
    assert state.completed
    assert state.output_events[-1].attributes["output"] == {
        "receipt": "receipt-7",
        "ship": "shipped-7",
    }
    assert worker.recover().actions_resumed == 0  # nothing left to do


@pytest.mark.parametrize("is_async", [False, True])
def test_recover_reexecutes_a_pending_call_without_reconciler(store: Any, is_async: bool) -> None:
    ledger = Ledger()
    worker = Worker(store)
    crash_in_pay(ledger, worker, reconcile=False, is_async=is_async)
    with pytest.raises(Crash):
        worker.submit("order-7", {"order": 7}, seq=0)

    report = worker.recover()

    assert report.ok
    assert report.actions_completed == 1
    assert len(ledger.charges) == 2  # no reconciler: the call ran again
    assert ledger.lookups == 0


def test_recover_replays_finished_calls_and_runs_the_rest(store: Any) -> None:
    ledger = Ledger()
    ship_down = True
    worker = Worker(store)

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(ledger.pay, data, ctx.next_call_id)
        if ship_down:
            raise Crash
        return receipt

    with pytest.raises(Crash):
        worker.submit("k", 3, seq=0)
    ship_down = False
    report = worker.recover()
    assert (report.calls_replayed, report.calls_executed, report.actions_completed) == (1, 0, 1)
    assert len(ledger.charges) == 1


def test_recover_reports_states_of_unregistered_actions_and_keeps_them(store: Any) -> None:
    old = Worker(store)

    @old.action("retired")
    def retired(data: Any, ctx: DurableContext) -> Any:
        raise Crash

    with pytest.raises(Crash):
        old.submit("k", 1, seq=0)

    new = Worker(store)
    new.register("current", lambda data, ctx: data)
    report = new.recover()

    assert not report.ok
    assert report.actions_resumed == 0
    [unknown] = report.unknown_actions
    assert (unknown.agent_key, unknown.seq, unknown.action_uuid) == (
        "k",
        0,
        str(action_uuid("retired")),
    )
    assert unknown.state_key.startswith("k_0_")
    assert len(store.states()) == 1  # never dropped


def test_one_failing_action_does_not_stop_recovery_of_the_others(store: Any) -> None:
    crash_keys = {"a", "b", "c"}
    broken = {"b"}
    worker = Worker(store)

    @worker.action("step")
    def step(data: Any, ctx: DurableContext) -> Any:
        value = ctx.durable_execute(str.upper, data)
        if data in crash_keys:
            raise Crash
        if data in broken:
            raise ValueError(f"cannot finish {data}")
        return value

    for key in ("a", "b", "c"):
        with pytest.raises(Crash):
            worker.submit(key, key, seq=0)
    crash_keys.clear()

    report = worker.recover()

    assert report.actions_resumed == 3
    assert report.actions_completed == 2
    [failure] = report.failures
    assert failure.action == "step"
    assert failure.state_key.startswith("b_0_")
    assert isinstance(failure.error, ValueError)
    assert failure.message == "ValueError: cannot finish b"
    done = {k.agent_key: s.completed for k, s in store.states()}
    assert done == {"a": True, "b": False, "c": True}


def test_recover_reports_a_state_without_input_event(store: Any) -> None:
    worker = Worker(store)
    worker.register("charge", lambda data, ctx: data)
    odd = Event(
        class_name="com.example.Custom", id=str(uuid.uuid4()), type="custom", attributes={"x": 1}
    )
    store.put("k", 0, "charge", odd, ActionState(task_event=odd))

    report = worker.recover()

    [failure] = report.failures
    assert "no input task event" in str(failure.error)
    assert len(store.states()) == 1


def test_next_call_id_survives_recovery(store: Any) -> None:
    seen: list[str] = []
    crash = True
    worker = Worker(store)

    def pay(call_id: str) -> str:
        seen.append(call_id)
        if crash:
            raise Crash
        return call_id

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        call_id = ctx.next_call_id
        return ctx.durable_execute(pay, call_id, reconciler=lambda: f"found {call_id}")

    with pytest.raises(Crash):
        worker.submit("k", 1, seq=0)
    crash = False
    worker.recover()
    [(skey, state)] = store.states()
    assert seen == [f"k_0_{skey.event_uuid}_{skey.action_uuid}:0"]
    assert state.output_events[-1].attributes["output"] == f"found {seen[0]}"


@pytest.mark.parametrize("is_async", [False, True])
def test_a_new_worker_on_a_new_store_recovers_from_the_log_alone(
    store_opener: Any, is_async: bool
) -> None:
    ledger = Ledger()
    first = Worker(store_opener())
    crash_in_pay(ledger, first, reconcile=True, is_async=is_async)
    with pytest.raises(Crash):
        first.submit("order-9", {"order": 9})
    first.store.close()

    restarted = Worker(store_opener())  # a restart: nothing in memory but the registration
    crash_in_pay(ledger, restarted, reconcile=True, is_async=is_async, crashes=0)
    report = restarted.recover()

    assert report.rebuild is not None
    assert report.rebuild.states_live == 1
    assert (report.actions_completed, report.calls_reconciled) == (1, 1)
    assert (len(ledger.charges), ledger.lookups) == (1, 1)
    [(skey, state)] = restarted.store.states()
    assert (skey.agent_key, skey.seq, state.completed) == ("order-9", 0, True)
    assert restarted.submit("order-9", {"order": 9}, seq=0) == {
        "receipt": "receipt-9",
        "ship": "shipped-9",
    }
    restarted.submit("order-9", {"order": 10})  # the next seq continues after the log's
    assert sorted(k.seq for k, _ in restarted.store.states()) == [0, 1]
