"""The one partition reader: its end rule, bounded reads and following."""

from __future__ import annotations

import pytest

from actionstate.client import KafkaStoreSettings
from actionstate.client.kafka import (
    KafkaAdmin,
    KafkaConnection,
    PartitionReader,
    ReadEnd,
    ReadEvent,
)
from tests._support.kafka import delete_topics, raw_producer


def test_a_partition_ends_at_its_record_before_the_end() -> None:
    end = ReadEnd({0: 5, 1: 3})
    assert end.record(0, 3)
    assert not end.done
    assert end.record(0, 4)  # end - 1: the last record, and the partition is done
    assert end.remaining == {1: 3}
    assert not end.record(0, 5)  # a later record of a finished partition is outside
    assert not end.record(7, 0)  # so is one of a partition never asked for


def test_a_compaction_gap_ends_the_partition_at_a_record_past_it() -> None:
    end = ReadEnd({0: 10})
    # offsets 8 and 9 were compacted away, a record written later sits at 12
    assert not end.record(0, 12)
    assert end.done


def test_an_end_of_partition_event_ends_it_only_at_the_end() -> None:
    end = ReadEnd({0: 10})
    end.eof(0, 7)  # an EOF before the end offset (a read that has not caught up yet)
    assert not end.done
    end.eof(0, 10)
    assert end.done


def _topic(bootstrap: str, topic: str, count: int) -> KafkaStoreSettings:
    settings = KafkaStoreSettings(bootstrap_servers=bootstrap, topic=topic, partitions=1)
    KafkaAdmin(settings).ensure_topic(settings)
    producer = raw_producer(bootstrap)
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), key=f"k{i}".encode(), partition=0)
    producer.flush(10)
    return settings


def test_a_bounded_read_stops_at_the_end_taken_at_start(
    kafka_bootstrap: str, topic_name: str
) -> None:
    settings = _topic(kafka_bootstrap, topic_name, 5)
    try:
        with PartitionReader(settings, topic_name, purpose="test") as reader:
            partitions = reader.partitions()
            assert partitions == [0]
            ranges = reader.ranges(partitions)
            assert (ranges[0].start, ranges[0].high) == (0, 5)
            producer = raw_producer(kafka_bootstrap)
            producer.produce(topic_name, b"late", key=b"late", partition=0)
            producer.flush(10)
            read = [m for m in reader.read(ranges) if m is not None]
        assert [m.key() for m in read] == [f"k{i}".encode() for i in range(5)]
        assert KafkaAdmin(settings).end_offsets(topic_name, [0]) == {0: 6}
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_a_read_from_given_offsets(kafka_bootstrap: str, topic_name: str) -> None:
    settings = _topic(kafka_bootstrap, topic_name, 4)
    try:
        with PartitionReader(settings, topic_name, purpose="test") as reader:
            ranges = reader.ranges([0], {0: 2})
            read = [m.offset() for m in reader.read(ranges) if m is not None]
        assert read == [2, 3]
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_an_empty_range_ends_at_once_and_follow_sees_new_records(
    kafka_bootstrap: str, topic_name: str
) -> None:
    settings = _topic(kafka_bootstrap, topic_name, 0)
    try:
        with PartitionReader(settings, topic_name, purpose="test") as reader:
            messages = reader.read(reader.ranges([0]), follow=True)
            assert next(messages) is None  # caught up: nothing was there
            producer = raw_producer(kafka_bootstrap)
            producer.produce(topic_name, b"v", key=b"new", partition=0)
            producer.flush(10)
            record = next(m for m in messages if m is not None)
            assert record.key() == b"new"
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_a_missing_topic_has_no_partitions(kafka_bootstrap: str, topic_name: str) -> None:
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    with PartitionReader(conn, topic_name + "-missing", purpose="test") as reader:
        assert reader.partitions() is None
    assert KafkaAdmin(conn).partition_count(topic_name + "-missing") is None


def test_the_admin_answers_when_a_broker_does(kafka_bootstrap: str) -> None:
    assert KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap)).answers()
    assert not KafkaAdmin(KafkaConnection(bootstrap_servers="127.0.0.1:9", timeout_s=1)).answers()


@pytest.mark.parametrize("kind", list(ReadEvent))
def test_read_events_are_named(kind: ReadEvent) -> None:
    assert kind.value in {"eof", "fatal", "transient"}
