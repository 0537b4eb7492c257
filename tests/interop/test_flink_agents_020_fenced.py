"""A topic written by fenced workers, read back by the real Flink Agents 0.2.0 store.

Two stores share one transactional id prefix, as two workers of a fleet do: A owns a
partition and writes, stalls inside a transaction (a GC pause, SIGSTOP) after its record
reached the log, B claims the partition (fencing A, whose open transaction the broker
aborts) and writes newer states, then A wakes up and its writes are refused. The real
0.2.0 ``KafkaActionStateStore`` then recovers the topic (harness ``store-read``), and so
does ours.

The states are 0.2-shaped (events with ``input`` and no ``type``, call results without
``status``): the 0.2.0 seder refuses the fields 0.3 added.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from actionstate.client import FencedError, KafkaStore, KafkaStoreSettings
from actionstate.client.kafka import TransactionalWriter
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
    decode_action_state,
    parse_state_key,
    partition_for,
)
from tests._support.kafka import delete_topics
from tests.interop._jvm import run

pytestmark = [pytest.mark.java, pytest.mark.java020]

PARTITIONS = 4
INPUT = "org.apache.flink.agents.api.InputEvent"
ACTION = "charge"
# the 0.2.0 shape: the value in the subclass field "input", no "type"
EVENT = Event.model_validate(
    {"@class": INPUT, "id": str(uuid.uuid4()), "attributes": {}, "input": {"order": 42}}
)


def _agents_of_one_partition(count: int) -> list[str]:
    p = partition_for("order-0", PARTITIONS)
    return [a for a in (f"order-{i}" for i in range(200)) if partition_for(a, PARTITIONS) == p][
        :count
    ]


# B rewrites the first two, writes the third first; the fourth only A wrote, last in the
# transaction of A that B's claim aborted
REWRITTEN, REWRITTEN_2, NEW, ZOMBIE_ONLY = _agents_of_one_partition(4)
P = partition_for(REWRITTEN, PARTITIONS)


def noted(note: str, *, calls: int = 1) -> ActionState:
    """A 0.2-shaped state: ``note`` in its short-term memory, legacy call results."""
    return ActionState(
        task_event=EVENT,
        short_term_memory_updates=[MemoryUpdate(path="note", value=note)],
        call_results=[
            CallResult(
                function_id=f"shop.step{i}", args_digest="0123456789abcdef", result_payload=b"ok"
            )
            for i in range(calls)
        ],
    )


def _note(value: bytes) -> Any:
    return decode_action_state(value).short_term_memory_updates[0].value


def _agent(key: str) -> str:
    return parse_state_key(key).agent_key


def _seen(record: Message) -> tuple[str, Any]:
    """(agent key, note) of a record."""
    key, value = record.key(), record.value()
    assert key is not None
    assert value is not None
    return _agent(key.decode()), _note(value)


@pytest.fixture(scope="module")
def fenced_topic(kafka_bootstrap: str) -> Iterator[tuple[KafkaStoreSettings, list[BaseException]]]:
    """The topic after A, B and A's late writes (one per module: the tests only read it):
    (settings, what A's writes raised)."""
    settings = KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap,
        topic=f"test-fenced-020-{uuid.uuid4().hex[:12]}",
        partitions=PARTITIONS,
        timeout_s=20,
    )
    try:
        yield settings, _write_fenced(settings)
    finally:
        delete_topics(kafka_bootstrap, settings.topic)


def _write_fenced(settings: KafkaStoreSettings) -> list[BaseException]:
    refused: list[BaseException] = []
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        KafkaStore(settings) as a,
        KafkaStore(settings) as b,
    ):
        a.own_partitions(transactional_id_prefix="fleet")
        a.claim([P])
        for agent in (REWRITTEN, REWRITTEN_2, ZOMBIE_ONLY):
            a.put(agent, 0, ACTION, EVENT, noted(f"a:{agent}"))

        in_log, wake = _stall_before_commit(a, monkeypatch)
        zombie = threading.Thread(
            target=_refused_into(
                refused, lambda: a.put(ZOMBIE_ONLY, 0, ACTION, EVENT, noted("zombie"))
            )
        )
        zombie.start()
        assert in_log.wait(30), "A's stalled write never reached the log"

        b.own_partitions(transactional_id_prefix="fleet")
        b.claim([P])  # the same transactional id: a new epoch; A's open transaction is aborted
        for agent in (REWRITTEN, REWRITTEN_2):
            b.put(agent, 0, ACTION, EVENT, noted(f"b:{agent}", calls=2))
        b.put(NEW, 0, ACTION, EVENT, noted(f"b:{NEW}", calls=3))

        wake.set()  # A wakes up: its commit is refused, and so is its next write
        zombie.join(60)
        assert not zombie.is_alive()
        _refused_into(refused, lambda: a.put(REWRITTEN, 0, ACTION, EVENT, noted("late")))()
    return refused


def _stall_before_commit(
    store: KafkaStore, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Event]:
    """Make the next transaction of ``store`` on P wait, its records delivered to the log,
    before it commits: (set once they are in the log, set to let it commit)."""
    writer = store._writer
    assert isinstance(writer, TransactionalWriter)
    part = writer._partitions[P]
    resume = part._resume  # the commit thread's one way of calling commit_transaction
    in_log, wake = threading.Event(), threading.Event()

    def stalled(call: Callable[[float], None], within: float | None) -> Any:
        if not in_log.is_set():
            part._producer.flush(20)
            in_log.set()
            wake.wait(60)
        return resume(call, within)

    monkeypatch.setattr(part, "_resume", stalled)
    return in_log, wake


def _refused_into(refused: list[BaseException], write: Callable[[], None]) -> Callable[[], None]:
    def attempt() -> None:
        try:
            write()
        except BaseException as exc:  # checked by the tests
            refused.append(exc)

    return attempt


def _read(settings: KafkaStoreSettings, isolation: str) -> list[Message]:
    """Every data record of P that a reader with ``isolation.level`` ``isolation`` gets."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"raw-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(settings.topic, P, 0)])
    records: list[Message] = []
    try:
        while True:
            msg = consumer.poll(10)
            assert msg is not None, "no end of partition within 10 s"
            err = msg.error()
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                return records
            assert err is None, err.str()
            records.append(msg)
    finally:
        consumer.close()


def test_the_zombie_is_refused_and_its_record_is_in_the_log_aborted(
    fenced_topic: tuple[KafkaStoreSettings, list[BaseException]],
) -> None:
    settings, refused = fenced_topic
    # the stalled write, refused at its commit; the next one, refused unsent
    assert [type(e) for e in refused] == [FencedError, FencedError], refused
    assert all(getattr(e, "partition", None) == P for e in refused)

    committed = _read(settings, "read_committed")
    everything = _read(settings, "read_uncommitted")
    assert [_seen(m) for m in committed] == [
        (REWRITTEN, f"a:{REWRITTEN}"),
        (REWRITTEN_2, f"a:{REWRITTEN_2}"),
        (ZOMBIE_ONLY, f"a:{ZOMBIE_ONLY}"),
        (REWRITTEN, f"b:{REWRITTEN}"),
        (REWRITTEN_2, f"b:{REWRITTEN_2}"),
        (NEW, f"b:{NEW}"),
    ]
    # A's stalled record is in the log, in the transaction B's claim aborted
    aborted = [m for m in everything if m.offset() not in {c.offset() for c in committed}]
    assert [_seen(m) for m in aborted] == [(ZOMBIE_ONLY, "zombie")]
    # one record per transaction, and each transaction's marker (commit, or the abort)
    # takes the next offset: control records occupy offsets, readers never get them
    assert [m.offset() for m in everything] == [0, 2, 4, 6, 8, 10, 12]
    assert aborted[0].offset() == 6


def test_the_real_020_store_reads_the_fenced_topic_and_sees_the_aborted_record(
    harness_020_command: list[str],
    fenced_topic: tuple[KafkaStoreSettings, list[BaseException]],
) -> None:
    settings, _refused = fenced_topic
    out = json.loads(
        run(
            ["store-read", settings.bootstrap_servers, settings.topic, str(PARTITIONS)],
            harness=harness_020_command,
        )
    )
    # 0.2.0's consumer leaves isolation.level to the Kafka client's default
    assert (out["isolationLevel"], out["isolationLevelSet"]) == ("read_uncommitted", False)
    held = {_agent(s["key"]): s for s in out["states"]}
    ours = {str(m.key() or b"", "utf-8") for m in _read(settings, "read_committed")}
    assert {s["key"] for s in out["states"]} == ours  # each under the key we wrote
    assert set(held) == {REWRITTEN, REWRITTEN_2, NEW, ZOMBIE_ONLY}
    assert not any(s["tombstone"] or s["completed"] for s in held.values())

    # every committed state with the values B wrote: the seder reads our records, and the
    # transaction markers between them do not trip the rebuild
    for agent, calls in ((REWRITTEN, 2), (REWRITTEN_2, 2), (NEW, 3)):
        assert held[agent]["callResults"] == calls
        assert _note(base64.b64decode(held[agent]["value"])) == f"b:{agent}"
    # read_uncommitted: the record of A's aborted transaction is the latest of its key, so
    # the 0.2.0 store recovers the zombie's state, which no committed record holds
    zombie = held[ZOMBIE_ONLY]
    assert (_note(base64.b64decode(zombie["value"])), zombie["callResults"]) == ("zombie", 1)


def test_our_store_reads_the_fenced_topic_with_only_committed_states(
    fenced_topic: tuple[KafkaStoreSettings, list[BaseException]],
) -> None:
    settings, _refused = fenced_topic
    with KafkaStore(settings) as store:
        report = store.rebuild()
        assert (report.bad_records, report.records_read, report.states_live) == (0, 6, 4)
        notes = {_agent(str(k)): s.short_term_memory_updates[0].value for k, s in store.states()}
    assert notes == {
        REWRITTEN: f"b:{REWRITTEN}",
        REWRITTEN_2: f"b:{REWRITTEN_2}",
        NEW: f"b:{NEW}",
        ZOMBIE_ONLY: f"a:{ZOMBIE_ONLY}",  # A's last committed state, not its aborted one
    }
