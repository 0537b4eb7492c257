"""The acknowledged-writes checker's rule on hand-made inputs, and the logging store on the
broker: what is kept, what compaction may remove, what is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actionstate.serde import ActionState, Event
from tests._support.kafka import delete_topics
from tests.chaos._acked import (
    Ack,
    AckedKafkaStore,
    TopicRecord,
    ack_log_for,
    ack_logs,
    check_acked,
    judge,
    read_acks,
)

A, B = "alice_1_x_y", "bob_1_x_y"


def rec(offset: int, key: str | None, d: str | None, partition: int = 0) -> TopicRecord:
    return TopicRecord(partition, offset, key, d)


def test_a_write_at_its_offset_with_its_digest_is_present() -> None:
    report = judge([Ack(0, 0, A, "d0"), Ack(0, 1, A, "d1")], [rec(0, A, "d0"), rec(1, A, "d1")])
    assert (report.checked, report.present, report.lost) == (2, 2, [])
    assert {k: a.digest for k, a in report.acked_latest.items()} == {A: "d1"}
    assert report.topic_latest == {A: rec(1, A, "d1")}


def test_a_write_compacted_under_a_later_record_of_its_key_is_kept() -> None:
    # offset 0 was removed by the cleaner: offset 2 holds a later record of the same key,
    # even one nobody logged (its writer died before logging it).
    report = judge([Ack(0, 0, A, "d0"), Ack(0, 1, B, "b")], [rec(1, B, "b"), rec(2, A, "d2")])
    assert (report.present, report.superseded, report.lost) == (1, 1, [])
    assert {k: r.digest for k, r in report.topic_latest.items()} == {A: "d2", B: "b"}


def test_a_write_under_a_removed_tombstone_is_deleted_not_lost() -> None:
    acks = [Ack(0, 0, A, "d0"), Ack(0, 1, A, None), Ack(0, 2, B, "b")]
    report = judge(acks, [rec(2, B, "b")])
    assert (report.present, report.deleted, report.lost) == (1, 2, [])
    assert {k: a.digest for k, a in report.acked_latest.items()} == {A: None, B: "b"}


def test_a_different_record_at_the_offset_is_lost() -> None:
    # A truncated and rewritten log: the offset is reused by another key, or the same key
    # with other bytes.
    acks = [Ack(0, 0, A, "d0"), Ack(0, 1, A, "d1")]
    report = judge(acks, [rec(0, B, "b"), rec(1, A, "other"), rec(2, A, "d2")])
    assert [lost.ack.offset for lost in report.lost] == [0, 1]
    assert report.lost[0].found == rec(0, B, "b")
    assert "lost: 2" in report.summary()


def test_a_write_past_the_last_record_is_lost_even_under_a_tombstone() -> None:
    acks = [Ack(0, 5, A, "d5"), Ack(0, 6, A, None)]
    report = judge(acks, [rec(0, B, "b"), rec(3, B, "b3")])
    assert len(report.lost) == 2
    assert all(lost.found is None for lost in report.lost)


def test_a_missing_write_with_nothing_later_is_lost() -> None:
    report = judge([Ack(0, 1, A, "d1")], [rec(0, A, "d0"), rec(2, B, "b")])
    assert [lost.ack for lost in report.lost] == [Ack(0, 1, A, "d1")]


def test_partitions_are_judged_apart() -> None:
    # A later record of the key in another partition does not cover a write.
    report = judge([Ack(0, 0, A, "d0")], [rec(1, B, "b"), rec(5, A, "d5", partition=1)])
    assert len(report.lost) == 1


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "acked-1.jsonl"
    log.write_bytes(b'{"p":0,"o":0,"k":"a","d":"x"}\n{"p":0,"o":1,"k"')
    acks, torn = read_acks([log])
    assert (acks, torn) == ([Ack(0, 0, "a", "x")], 1)
    assert "torn last lines skipped: 1" in judge(acks, [rec(0, "a", "x")], torn).summary()


@pytest.fixture
def store(kafka_bootstrap: str, topic_name: str, tmp_path: Path) -> Iterator[AckedKafkaStore]:
    with AckedKafkaStore(
        bootstrap_servers=kafka_bootstrap,
        topic=topic_name,
        partitions=2,
        ack_log=ack_log_for(tmp_path),
    ) as s:
        yield s
    delete_topics(kafka_bootstrap, topic_name)


def test_the_store_logs_each_acknowledged_write_and_tombstone(
    store: AckedKafkaStore, tmp_path: Path
) -> None:
    event = Event.input({"n": 1})
    for seq in range(3):
        store.put("alice", seq, "charge", event, ActionState(task_event=event))
    store.put("bob", 0, "charge", event, ActionState(task_event=event))
    assert store.prune("alice", 1) == 2
    bootstrap = store.settings.bootstrap_servers
    report = check_acked(bootstrap, store.topic, ack_logs(tmp_path))
    assert (report.checked, report.present, report.lost) == (6, 6, []), report.summary()
    assert sum(a.digest is None for a in report.acked_latest.values()) == 2

    # A line for a write the broker never got is lost.
    with ack_log_for(tmp_path, 0).open("w") as forged:
        forged.write(f'{{"p":0,"o":99,"k":"{A}","d":"x"}}\n')
    report = check_acked(bootstrap, store.topic, ack_logs(tmp_path))
    assert [lost.ack.offset for lost in report.lost] == [99]
