"""Broker loss under load: three brokers (a local KRaft cluster), the state topic with
replication factor 3 and ``min.insync.replicas`` 2, a fleet of three workers on the acked
app taking a stream of requests. The broker leading most state partitions is SIGKILLed
mid-run and restarted later (once in CI size, several times, each time the current leader,
in the long run). Then:

- every write a worker saw acknowledged is on the topic (tests/chaos/_acked.py);
- no request is lost: each completed, its reconciled payment made exactly once;
- with two of three replicas alive (= min ISR) no journal write failed at all.

A second phase takes two brokers away (fewer live replicas than min ISR): a write then
fails with ``StoreWriteError`` within its timeout instead of hanging, and succeeds once
they are back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actionstate.client import StoreWriteError
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from actionstate.serde import ActionState, Event, MemoryUpdate, partition_for
from actionstate.service.local_kafka import LocalKafka
from tests._support import assert_eventually, returns_within
from tests._support.cluster import broker_ids, in_sync, leaders, running_cluster
from tests.chaos._acked import AckedKafkaStore, ack_log_for, check_acked
from tests.chaos._storm import Size, Storm, storm_seed
from tests.chaos._summary import Record
from tests.fleet._fleet import Fleet, Flow, check_outcomes, keys_per_partition

NODES = {1, 2, 3}
JOURNAL_WRITE_FAILED = "a journal write failed"
# A write while fewer than min ISR replicas live fails after its timeout_s, not later.
SHORT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class LossSize:
    """``cycles`` kill-restart rounds; each: ``up_s`` of load, a leader SIGKILLed, ``down_s``
    of load without it, then its restart (awaited until it is back in every ISR)."""

    cycles: int
    up_s: float
    down_s: float
    batch: int = 1
    every: float = 0.1


CI = LossSize(cycles=1, up_s=6.0, down_s=15.0, batch=3)
LONG = LossSize(cycles=5, up_s=10.0, down_s=30.0, batch=4)


@pytest.fixture(scope="module")
def cluster(broker_dirs: Callable[[str], Path]) -> Iterator[LocalKafka]:
    with running_cluster(broker_dirs("broker-loss")) as kafka:
        yield kafka


@pytest.fixture
def cluster_fleet(cluster: LocalKafka, topic_name: str, tmp_path: Path) -> Iterator[Fleet]:
    bootstrap = cluster.status().bootstrap
    assert bootstrap is not None
    fleet = Fleet(bootstrap, topic_name, tmp_path)
    try:
        yield fleet
    finally:
        print(fleet.tails())  # shown by pytest when the test failed
        fleet.close()


def most_leading(bootstrap: str, topic: str) -> int:
    """The node leading the most partitions of ``topic``."""
    counts = Counter(leaders(bootstrap, topic).values())
    return counts.most_common(1)[0][0]


def all_in_sync(bootstrap: str, topic: str) -> None:
    isrs = in_sync(bootstrap, topic)
    assert all(isr == NODES for isr in isrs.values()), isrs


def test_losing_a_leader_broker_loses_no_acknowledged_write(
    cluster: LocalKafka, cluster_fleet: Fleet, chaos_long: bool, chaos_summary: Record
) -> None:
    fleet = cluster_fleet
    bootstrap = fleet.bootstrap
    size = LONG if chaos_long else CI
    # The topics, replicated automatically: 3 replicas, min ISR 2 (the requests topic too,
    # before the sender would create it with its own default).
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=bootstrap))
    admin.ensure_requests_topic(fleet.requests, fleet.partitions)
    fleet.create_topics()
    for topic in (fleet.state_topic, fleet.requests):
        shape = admin.topic_shape(topic)
        assert (shape.replication_factor, shape.min_insync_replicas) == (3, 2), shape

    storm = Storm(fleet, Size(kills=0, workers=3), storm_seed())
    for slot in range(3):
        storm.start(slot)
    fleet.wait_owned(storm.slots, timeout=120)
    flow = Flow(
        fleet,
        keys_per_partition(fleet.partitions, 3),
        batch=size.batch,
        interval=size.every,
        actions=("charge", "charge-async"),
    )
    kills = 0
    with flow:
        for _ in range(size.cycles):
            # The load's schedule, not a synchronisation: nothing waits for a condition here.
            time.sleep(size.up_s)
            victim = most_leading(bootstrap, fleet.state_topic)
            assert cluster.stop_node(victim, kill=True) is not None
            kills += 1
            print(f"killed node {victim} (leading most state partitions) at {len(flow.sent)}")
            time.sleep(size.down_s)
            gone = NODES - {victim}
            assert_eventually(lambda: broker_ids(bootstrap) == gone, timeout=60)  # noqa: B023
            cluster.start_node(victim)
            assert_eventually(lambda: all_in_sync(bootstrap, fleet.state_topic), timeout=120)
    sent = flow.stop()
    print(f"{kills} broker kills, {len(sent)} requests; draining")
    dead = [w for w in storm.slots if not w.alive()]
    assert not dead, f"{dead} died\n{fleet.tails()}"
    fleet.wait_completed(sent, timeout=240)
    check_outcomes(fleet, sent)
    failed = [
        line for w in fleet.workers for line in w.log().splitlines() if JOURNAL_WRITE_FAILED in line
    ]
    codes = fleet.terminate_all(timeout=30)
    assert all(code == 0 for code in codes.values()), f"{codes}\n{fleet.tails()}"
    problems = fleet.problems()
    assert not problems, "\n".join(problems[:20])
    # Two of three replicas (= min ISR) stayed alive all along: no write may have failed.
    assert not failed, "\n".join(failed[:20])
    report = check_acked(bootstrap, fleet.state_topic, storm.ack_logs())
    print(report.summary())
    chaos_summary(
        kills=kills,
        requests=len(sent),
        acked=report.checked,
        lost=len(report.lost),
        seed=storm.seed,
    )
    assert not report.lost, report.summary()
    assert report.checked >= 2 * len(sent), report.summary()


def note(text: str) -> ActionState:
    return ActionState(
        task_event=Event.input({"n": text}),
        short_term_memory_updates=[MemoryUpdate(path="note", value=text)],
    )


def test_below_min_isr_writes_fail_fast_and_succeed_once_brokers_return(
    cluster: LocalKafka, topic_name: str, tmp_path: Path, chaos_summary: Record
) -> None:
    bootstrap = cluster.status().bootstrap
    assert bootstrap is not None
    event = Event.input({"n": 0})
    store = AckedKafkaStore(
        bootstrap_servers=bootstrap,
        topic=topic_name,
        partitions=3,
        timeout_s=SHORT_TIMEOUT_S,
        ack_log=ack_log_for(tmp_path),
    )
    try:
        store.put("k", 1, "act", event, note("before"))
        partition = partition_for("k", 3)
        leader = leaders(bootstrap, topic_name)[partition]
        # The leader of the key's partition and one more: one replica of three is left.
        down = [leader, next(n for n in sorted(NODES) if n != leader)]
        for node in down:
            cluster.stop_node(node, kill=True)
        with pytest.raises(StoreWriteError) as caught:
            returns_within(
                SHORT_TIMEOUT_S + 20,
                lambda: store.put("k", 2, "act", event, note("below min ISR")),
            )
        assert "not acknowledged" in str(caught.value)
        for node in down:
            cluster.start_node(node)
        assert_eventually(lambda: broker_ids(bootstrap) == NODES, timeout=120)

        def put_again() -> None:
            try:
                store.put("k", 3, "act", event, note("after"))
            except StoreWriteError as exc:
                raise AssertionError(str(exc)) from exc

        assert_eventually(put_again, timeout=120, interval=1.0)
    finally:
        store.close()
    report = check_acked(bootstrap, topic_name, [ack_log_for(tmp_path)])
    chaos_summary(kills=2, requests=0, acked=report.checked, lost=len(report.lost))
    assert report.checked >= 2
    assert not report.lost, report.summary()
