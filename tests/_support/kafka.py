"""Raw Kafka clients for tests: read or write a topic without going through the stores."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

__all__ = [
    "committed_offsets",
    "delete_topics",
    "raw_producer",
    "read_raw",
    "set_topic_config",
]


def read_raw(bootstrap: str, topic: str, *, isolation: str | None = None) -> list[Message]:
    """Every record of ``topic``, straight from the broker. ``isolation``: the consumer's
    ``isolation.level`` (librdkafka's default is ``read_committed``: records of aborted or
    still open transactions are not read, and a partition ends at its last stable offset)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = admin.list_topics(topic=topic, timeout=10).topics[topic].partitions
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **({} if isolation is None else {"isolation.level": isolation}),
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    pending = set(partitions)
    records: list[Message] = []
    deadline = time.monotonic() + 30
    try:
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: partitions {sorted(pending)} not read to the end")
            # consume() waits its whole timeout unless it fills the batch: keep it short.
            for msg in consumer.consume(1000, 0.2):
                err = msg.error()
                if err is None:
                    records.append(msg)
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise AssertionError(err.str())
    finally:
        consumer.close()
    return records


def raw_producer(bootstrap: str) -> Producer:
    """An idempotent producer on ``bootstrap``, for records the stores did not write."""
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})


def delete_topics(bootstrap: str, *topics: str) -> None:
    """Delete ``topics`` and wait; a topic that is not there is no error."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics), operation_timeout=30).values():
        future.exception()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The committed offset of ``group`` on each partition of ``topic`` (absent: none)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {
            tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10) if tp.offset >= 0
        }
    finally:
        consumer.close()


def set_topic_config(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    """Set topic configs of ``topic`` (incremental: other configs keep their values)."""
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()
    ]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
