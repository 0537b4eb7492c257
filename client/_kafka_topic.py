"""The state topic's shape: created compacted when missing, checked when it exists."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from ._errors import StoreReadError, TopicConfigError
from ._settings import KafkaStoreSettings

__all__ = ["end_offsets", "ensure_topic", "partition_count"]

_POLL_S = 0.05
_LEADERSHIP_CODES = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        # A just-elected leader answers with epoch errors until its metadata settles.
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
    }
)


def _error_of(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def _describe(err: BaseException) -> str:
    kafka_error = _error_of(err)
    return kafka_error.str() if kafka_error is not None else str(err)


def partition_count(admin: AdminClient, topic: str, timeout: float) -> int | None:
    """Partitions of ``topic`` (None when it does not exist), from fresh metadata."""
    try:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise StoreReadError(
            f"could not read the metadata of topic {topic!r}: {_describe(exc)}; "
            "check that the brokers in bootstrap_servers are reachable"
        ) from exc
    described: Any = metadata.topics.get(topic)
    if described is None:
        return None
    if described.error is not None:
        if described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise StoreReadError(f"could not describe topic {topic!r}: {described.error.str()}")
    return len(described.partitions)


def _cleanup_policy(admin: AdminClient, topic: str, timeout: float) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        configs = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except KafkaException as exc:
        raise StoreReadError(
            f"could not read the configuration of topic {topic!r}: {_describe(exc)}"
        ) from exc
    entry = configs.get("cleanup.policy")
    return "" if entry is None or entry.value is None else str(entry.value)


def _create(admin: AdminClient, settings: KafkaStoreSettings) -> None:
    topic = settings.topic
    new = NewTopic(
        topic,
        num_partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        config={"cleanup.policy": "compact"},
    )
    future = admin.create_topics(
        [new], operation_timeout=settings.timeout_s, request_timeout=settings.timeout_s
    )[topic]
    try:
        future.result()
    except KafkaException as exc:
        kafka_error = _error_of(exc)
        if kafka_error is not None and kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return  # created concurrently by another store; checked like any existing topic
        raise TopicConfigError(
            f"could not create topic {topic!r} ({settings.partitions} partitions, replication "
            f"factor {settings.replication_factor}, compacted): {_describe(exc)}"
        ) from exc


def _wait_for_leaders(admin: AdminClient, topic: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metadata: Any = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if (
            metadata is not None
            and metadata.error is None
            and metadata.partitions
            and all(p.leader >= 0 for p in metadata.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise StoreReadError(f"topic {topic!r} was created but has no leaders after {timeout}s")
        time.sleep(_POLL_S)


def ensure_topic(admin: AdminClient, settings: KafkaStoreSettings) -> int:
    """Make sure the state topic exists with a usable shape; returns its partition count.

    A missing topic is created with ``cleanup.policy=compact`` (unless ``create_topic`` is
    off). An existing topic must be compacted and have at least ``partitions`` partitions.
    """
    topic, timeout = settings.topic, settings.timeout_s
    count = partition_count(admin, topic, timeout)
    if count is None:
        if not settings.create_topic:
            raise TopicConfigError(
                f"topic {topic!r} does not exist and create_topic is off; create it with "
                "cleanup.policy=compact or let the store create it"
            )
        _create(admin, settings)
        _wait_for_leaders(admin, topic, timeout)
        count = partition_count(admin, topic, timeout)
        if count is None:
            raise StoreReadError(f"topic {topic!r} was created but its metadata is missing")
    policy = _cleanup_policy(admin, topic, timeout)
    if policy != "compact":
        raise TopicConfigError(
            f"topic {topic!r} has cleanup.policy={policy!r}, but the action-state journal "
            "needs exactly 'compact' (any 'delete' policy drops states when they age out). "
            f"Set it with `kafka-configs --alter --entity-type topics --entity-name {topic} "
            "--add-config cleanup.policy=compact`, or use another topic."
        )
    if count < settings.partitions:
        raise TopicConfigError(
            f"topic {topic!r} has {count} partitions, fewer than the {settings.partitions} "
            "configured: states would be routed to other partitions than other writers "
            "use. Set partitions to at most the topic's count, or use another topic."
        )
    return count


def end_offsets(
    admin: AdminClient, topic: str, partitions: list[int], timeout: float
) -> dict[int, int]:
    """The end offset of each partition, in one request.

    Read-committed, like the rebuild consumer, so the end offset is one it can reach.
    """
    if not partitions:
        return {}
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    request = {TopicPartition(topic, p): latest for p in partitions}
    deadline = time.monotonic() + timeout
    while True:
        try:
            futures = admin.list_offsets(
                request, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
            )
            return {tp.partition: future.result().offset for tp, future in futures.items()}
        except KafkaException as exc:
            # Leadership moves (a new topic, a restarted broker) answer "not leader" for a
            # moment; anything else, or a move that does not settle, is reported.
            kafka_error = _error_of(exc)
            transient = kafka_error is not None and (
                kafka_error.retriable() or kafka_error.code() in _LEADERSHIP_CODES
            )
            if not transient or time.monotonic() > deadline:
                raise StoreReadError(
                    f"could not list the offsets of topic {topic!r}: {_describe(exc)}"
                ) from exc
        time.sleep(_POLL_S)
