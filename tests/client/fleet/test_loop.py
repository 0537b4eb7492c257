"""The worker loop in this process, on a real broker: requests run once, in order per key,
concurrently across keys; unfinished states are recovered on assignment; bad requests are
dead-lettered; offsets are committed only after the outcome is durable.

The fleet's multi-process behaviour (kills, zombies, scaling) is tested in tests/fleet.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from actionstate.client import (
    DurableContext,
    KafkaStore,
    KafkaStoreSettings,
    MemoryStore,
    TopicConfigError,
    Worker,
    WorkerError,
    compute_args_digest,
)
from actionstate.client.fleet import FleetMetrics
from actionstate.serde import (
    ActionState,
    CallResult,
    CallStatus,
    Event,
    encode_request,
    partition_for,
)
from tests._support import assert_eventually, returns_within
from tests._support.kafka import committed_offsets, raw_producer, read_raw

pytestmark = pytest.mark.timeout(120)

PARTITIONS = 4


@dataclass
class Fleet:
    bootstrap: str
    state: str
    requests: str
    group: str
    metrics: FleetMetrics = field(default_factory=FleetMetrics)
    threads: list[threading.Thread] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def store(self) -> KafkaStore:
        return KafkaStore(bootstrap_servers=self.bootstrap, topic=self.state, partitions=PARTITIONS)

    def start(self, worker: Worker, **overrides: Any) -> None:
        def run() -> None:
            try:
                worker.run(
                    requests=self.requests,
                    group=self.group,
                    metrics=self.metrics,
                    handle_signals=False,
                    commit_interval_s=0.05,
                    client_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                    **overrides,
                )
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        self.workers.append(worker)

    def send(
        self, *requests: tuple[str, str, Any], raw: list[tuple[bytes | None, bytes]] = ()
    ) -> list[tuple[int, int]]:
        producer = raw_producer(self.bootstrap)
        placed: list[tuple[int, int]] = []

        def done(err: Any, msg: Any) -> None:
            assert err is None, err
            placed.append((msg.partition(), msg.offset()))

        for key, action, data in requests:
            k, v = encode_request(key, action, data)
            producer.produce(
                self.requests, v, key=k, partition=partition_for(key, PARTITIONS), on_delivery=done
            )
            producer.flush(10)
        for k, v in raw:
            producer.produce(self.requests, v, key=k, partition=0, on_delivery=done)
            producer.flush(10)
        return placed

    def outcome(self, outcome: str) -> float:
        return self.metrics.totals[outcome]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            thread.join(60)
        assert not any(t.is_alive() for t in self.threads)

    def committed(self) -> dict[int, int]:
        return committed_offsets(self.bootstrap, self.group, self.requests, PARTITIONS)


@pytest.fixture
def fleet(kafka_bootstrap: str) -> Iterator[Fleet]:
    sfx = uuid.uuid4().hex[:8]
    f = Fleet(kafka_bootstrap, f"loop-state-{sfx}", f"loop-requests-{sfx}", f"loop-{sfx}")
    with f.store() as store:
        store.admin.ensure_requests_topic(f.requests, PARTITIONS)
    try:
        yield f
    finally:
        f.stop()


def completed_outputs(fleet: Fleet, expected: int) -> dict[str, Any]:
    """The outputs of the completed states, once ``expected`` of them are visible: a
    transaction's records reach read-committed readers a moment after it committed."""
    found: dict[str, Any] = {}

    def read() -> bool:
        found.clear()
        with fleet.store() as store:
            store.rebuild()
            for skey, state in store.states():
                if state.completed:
                    output = state.output_events[-1].attributes["output"]
                    found[f"{skey.agent_key}/{skey.seq}"] = output
        assert len(found) >= expected, found

    assert_eventually(read, timeout=30)
    return found


def test_each_request_runs_once_and_its_offset_is_committed_after(fleet: Fleet) -> None:
    ran: list[tuple[str, int]] = []
    worker = Worker()

    @worker.action("double")
    def double(data: Any, ctx: DurableContext) -> Any:
        ran.append((ctx.key, ctx.seq))
        return {"n": ctx.durable_execute(lambda n: n * 2, data["n"], name="times-two")}

    placed = fleet.send(*[(f"k{i % 7}", "double", {"n": i}) for i in range(40)])
    fleet.start(worker, store_settings=_settings(fleet))
    assert_eventually(lambda: fleet.outcome("completed") == 40, timeout=60)
    outputs = completed_outputs(fleet, 40)
    assert len(outputs) == 40
    assert sorted(ran) == sorted({(k, s) for k, s in ran})  # none ran twice
    assert {o["n"] for o in outputs.values()} == {2 * i for i in range(40)}
    # The sequence number of each state is its request's offset.
    assert {int(k.split("/")[1]) for k in outputs} == {o for _, o in placed}
    last = {}
    for p, o in placed:
        last[p] = max(last.get(p, -1), o)
    assert_eventually(lambda: fleet.committed() == {p: o + 1 for p, o in last.items()})


def test_one_keys_requests_run_in_order_and_other_keys_concurrently(fleet: Fleet) -> None:
    order: list[int] = []
    running = 0
    peak = 0
    release = threading.Event()
    worker = Worker()

    @worker.action("step")
    async def step(data: Any, ctx: DurableContext) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if data["key"] == "solo":
            order.append(data["i"])
        if data["wait"]:
            await asyncio.to_thread(release.wait, 30)
        running -= 1
        return data["i"]

    fleet.send(*[("solo", "step", {"key": "solo", "i": i, "wait": False}) for i in range(10)])
    fleet.send(*[(f"w{i}", "step", {"key": f"w{i}", "i": i, "wait": True}) for i in range(8)])
    fleet.start(worker, store_settings=_settings(fleet))
    assert_eventually(lambda: peak >= 8, timeout=60)  # eight keys at once
    assert_eventually(lambda: fleet.outcome("completed") >= 10, timeout=60)
    assert order == list(range(10))
    release.set()
    assert_eventually(lambda: fleet.outcome("completed") == 18, timeout=60)


def _settings(fleet: Fleet) -> KafkaStoreSettings:
    return KafkaStoreSettings(
        bootstrap_servers=fleet.bootstrap, topic=fleet.state, partitions=PARTITIONS
    )


def test_an_unfinished_state_is_recovered_on_assignment_and_its_request_not_rerun(
    fleet: Fleet,
) -> None:
    paid: list[str] = []
    reconciled: list[str] = []

    def pay(order: int) -> str:
        paid.append(str(order))
        return f"receipt-{order}"

    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(
            pay, data["order"], reconciler=lambda: reconciled.append("x") or "reconciled"
        )
        return {"receipt": receipt}

    ((_, o),) = fleet.send(("order-7", "charge", {"order": 7}))
    # A crashed run of that request: its pay call PENDING in the journal.
    with fleet.store() as store:
        event = Event.input({"order": 7})
        pending = CallResult(
            function_id=f"{pay.__module__}.{pay.__qualname__}",
            args_digest=compute_args_digest((7,), {}),
            status=CallStatus.PENDING,
        )
        store.put(
            "order-7", o, "charge", event, ActionState(task_event=event, call_results=[pending])
        )
    worker = Worker()
    worker.register("charge", charge)
    fleet.start(worker, store_settings=_settings(fleet))
    assert_eventually(lambda: fleet.metrics.totals["redelivered"] == 1, timeout=60)
    assert reconciled == ["x"]  # resolved by its reconciler,
    assert paid == []  # never run twice
    assert completed_outputs(fleet, 1) == {f"order-7/{o}": {"receipt": "reconciled"}}


def test_bad_requests_go_to_the_dead_letter_topic_and_the_loop_goes_on(fleet: Fleet) -> None:
    worker = Worker()
    worker.register("echo", lambda data, _ctx: data)
    fleet.send(
        ("a", "nope", 1),
        raw=[
            (b"a", b"not json"),
            (None, b'{"action": "echo"}'),
            (b"bad_key", b'{"action": "echo"}'),
        ],
    )
    fleet.send(("b", "echo", {"fine": True}))
    fleet.start(worker, store_settings=_settings(fleet))
    assert_eventually(lambda: fleet.outcome("completed") == 1, timeout=60)
    assert_eventually(lambda: fleet.metrics.totals["dead_letters"] == 4)
    letters = read_raw(fleet.bootstrap, f"{fleet.requests}.dead-letter")
    reasons = sorted(dict(m.headers())["actionstate.dead-letter.reason"].decode() for m in letters)
    assert reasons == ["action", "key", "key", "value"]
    sources = {dict(m.headers())["actionstate.dead-letter.source"].decode() for m in letters}
    assert all(s.startswith(f"{fleet.requests}:") for s in sources)
    assert_eventually(lambda: sum(fleet.committed().values()) == 5)


def test_a_failing_action_is_counted_committed_and_left_incomplete(fleet: Fleet) -> None:
    worker = Worker()

    @worker.action("boom")
    def boom(data: Any, ctx: DurableContext) -> Any:
        raise RuntimeError("secret payload text")

    fleet.send(("a", "boom", {}), ("a", "boom", {}))
    fleet.start(worker, store_settings=_settings(fleet))
    assert_eventually(lambda: fleet.outcome("failed") == 2, timeout=60)
    assert_eventually(lambda: sum(fleet.committed().values()) == 2)
    with fleet.store() as store:
        store.rebuild()
        assert [s.completed for _, s in store.states()] == [False, False]


def test_a_requests_topic_with_another_partition_count_is_refused(
    fleet: Fleet, kafka_bootstrap: str
) -> None:
    requests = f"{fleet.requests}-other"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(requests, PARTITIONS + 1, 1)])[requests].result()
    worker = Worker()
    worker.register("echo", lambda data, _ctx: data)
    with pytest.raises(TopicConfigError, match="partition"):
        returns_within(
            60,
            lambda: worker.run(
                requests=requests,
                group=fleet.group,
                store_settings=_settings(fleet),
                handle_signals=False,
            ),
        )


def test_run_needs_a_kafka_store_and_an_action() -> None:
    worker = Worker(MemoryStore())
    worker.register("echo", lambda data, _ctx: data)
    with pytest.raises(WorkerError, match="KafkaStore"):
        worker.run(requests="r", group="g", handle_signals=False)
    with pytest.raises(WorkerError, match="no action"):
        Worker(MemoryStore()).run(requests="r", group="g", handle_signals=False)
    with pytest.raises(WorkerError, match="has no store"):
        _ = Worker().store


def test_stop_drops_a_long_action_within_the_grace_and_keeps_its_offset(fleet: Fleet) -> None:
    started = threading.Event()
    worker = Worker()

    @worker.action("slow")
    def slow(data: Any, ctx: DurableContext) -> Any:
        ctx.durable_execute(lambda: "first", name="first")
        started.set()
        time.sleep(3)
        return "late"

    fleet.send(("a", "slow", {}))
    fleet.start(worker, store_settings=_settings(fleet), grace_s=0.2)
    assert started.wait(60)
    returns_within(30, fleet.stop)
    assert fleet.metrics.totals["abandoned"] == 1
    assert fleet.committed() in ({}, {partition_for("a", PARTITIONS): 0})
    with fleet.store() as store:  # its journal stays for the next owner
        store.rebuild()
        ((_, state),) = store.states()
        assert not state.completed
        assert len(state.call_results) == 1
