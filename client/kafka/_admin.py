"""The admin helper: the state topic's shape (created compacted when missing, checked when it
exists), the shape of the topics partitioned like it (requests, dead letters), partition
counts and end offsets."""

from __future__ import annotations

import logging
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

from actionstate.client._errors import StoreReadError, TopicConfigError
from actionstate.client.kafka._errors import (
    describe,
    error_of,
    kafka_store_error,
    new_client,
    retriable,
)
from actionstate.client.kafka._settings import KafkaConnection, KafkaStoreSettings

__all__ = ["KafkaAdmin"]

_POLL_S = 0.05
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")


class KafkaAdmin:
    """Topic and offset requests to the brokers of ``conn``; each waits at most its
    ``timeout_s``. librdkafka's own log lines go to ``logger``."""

    def __init__(self, conn: KafkaConnection, *, logger: logging.Logger | None = None) -> None:
        self._timeout = conn.timeout_s
        config = {**conn.kafka_config("admin"), "logger": logger or _librdkafka_log}
        self._client = new_client(AdminClient, config)

    def answers(self) -> bool:
        """Whether a broker answers a metadata request (naming at least one broker)."""
        try:
            metadata = self._client.list_topics(timeout=self._timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def partition_count(self, topic: str) -> int | None:
        """Partitions of ``topic`` (None when it does not exist), from fresh metadata."""
        try:
            metadata = self._client.list_topics(topic=topic, timeout=self._timeout)
        except KafkaException as exc:
            raise kafka_store_error(
                exc,
                f"could not read the metadata of topic {topic!r}",
                "check that the brokers in bootstrap_servers are reachable",
            ) from exc
        described: Any = metadata.topics.get(topic)
        if described is None:
            return None
        if described.error is not None:
            if described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise StoreReadError(f"could not describe topic {topic!r}: {described.error.str()}")
        return len(described.partitions)

    def ensure_topic(self, settings: KafkaStoreSettings) -> int:
        """Make sure the state topic exists with a usable shape; returns its partition count.

        A missing topic is created with ``cleanup.policy=compact`` (unless ``create_topic``
        is off). An existing topic must be compacted and have at least ``partitions``
        partitions.
        """
        topic = settings.topic
        count = self.partition_count(topic)
        if count is None:
            if not settings.create_topic:
                raise TopicConfigError(
                    f"topic {topic!r} does not exist and create_topic is off; create it with "
                    "cleanup.policy=compact or let the store create it"
                )
            count = self._create(
                topic,
                partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                policy="compact",
                timeout=settings.timeout_s,
            )
        policy = self._cleanup_policy(topic)
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

    def ensure_requests_topic(
        self, topic: str, partitions: int, replication_factor: int = 1, *, create: bool = True
    ) -> int:
        """Make sure a topic keyed by agent key beside the state topic (requests, dead
        letters) exists with exactly ``partitions`` partitions; returns the count.

        A missing topic is created with ``cleanup.policy=delete`` (unless ``create`` is
        off). An existing one must have ``partitions`` partitions and must not be
        compacted (compaction would keep only the last request of each agent key).
        """
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        count = self.partition_count(topic)
        if count is None:
            if not create:
                raise TopicConfigError(
                    f"topic {topic!r} does not exist and creating it is off; create it with "
                    f"{partitions} partitions (the state topic's count), or let it be created"
                )
            count = self._create(
                topic,
                partitions=partitions,
                replication_factor=replication_factor,
                policy="delete",
                timeout=self._timeout,
            )
        if count != partitions:
            raise TopicConfigError(
                f"topic {topic!r} has {count} partitions, but the state topic has {partitions}: "
                "request partition p and state partition p must hold the same agent keys, "
                "because a worker owns the states of partition p by owning request partition "
                "p (the fleet's ownership rests on it). Use a topic with exactly "
                f"{partitions} partitions: another name, or delete {topic!r} once drained "
                "and let it be created again (adding partitions moves agent keys)."
            )
        policy = self._cleanup_policy(topic)
        if "compact" in policy.split(","):
            raise TopicConfigError(
                f"topic {topic!r} has cleanup.policy={policy!r}: compaction keeps only the "
                "last record of each agent key, so requests not yet run would be lost. Set "
                f"`kafka-configs --alter --entity-type topics --entity-name {topic} "
                "--add-config cleanup.policy=delete`, or use another topic."
            )
        return count

    def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The end offset of each partition, in one request.

        Read-committed, like the readers, so the end offset is one they can reach.
        """
        if not partitions:
            return {}
        timeout = self._timeout
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        request = {TopicPartition(topic, p): latest for p in partitions}
        deadline = time.monotonic() + timeout
        while True:
            try:
                futures = self._client.list_offsets(
                    request, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
                )
                return {tp.partition: future.result().offset for tp, future in futures.items()}
            except KafkaException as exc:
                # Leadership moves (a new topic, a restarted broker) answer "not leader" for
                # a moment; anything else, or a move that does not settle, is reported.
                if not retriable(error_of(exc)) or time.monotonic() > deadline:
                    raise StoreReadError(
                        f"could not list the offsets of topic {topic!r}: {describe(exc)}"
                    ) from exc
            time.sleep(_POLL_S)

    def _cleanup_policy(self, topic: str) -> str:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            described = self._client.describe_configs([resource], request_timeout=self._timeout)
            configs = described[resource].result()
        except KafkaException as exc:
            raise StoreReadError(
                f"could not read the configuration of topic {topic!r}: {describe(exc)}"
            ) from exc
        entry = configs.get("cleanup.policy")
        return "" if entry is None or entry.value is None else str(entry.value)

    def _create(
        self, topic: str, *, partitions: int, replication_factor: int, policy: str, timeout: float
    ) -> int:
        """Create ``topic``, wait for its leaders and return its partition count. A topic
        created concurrently by another client is no error: the caller checks its shape."""
        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config={"cleanup.policy": policy},
        )
        future = self._client.create_topics(
            [new], operation_timeout=timeout, request_timeout=timeout
        )[topic]
        try:
            future.result()
        except KafkaException as exc:
            kafka_error = error_of(exc)
            if kafka_error is None or kafka_error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                shape = "compacted" if policy == "compact" else f"cleanup.policy={policy}"
                raise TopicConfigError(
                    f"could not create topic {topic!r} ({partitions} partitions, "
                    f"replication factor {replication_factor}, {shape}): {describe(exc)}"
                ) from exc
        self._wait_for_leaders(topic)
        count = self.partition_count(topic)
        if count is None:
            raise StoreReadError(f"topic {topic!r} was created but its metadata is missing")
        return count

    def _wait_for_leaders(self, topic: str) -> None:
        timeout = self._timeout
        deadline = time.monotonic() + timeout
        while True:
            metadata: Any = self._client.list_topics(topic=topic, timeout=timeout).topics.get(topic)
            if (
                metadata is not None
                and metadata.error is None
                and metadata.partitions
                and all(p.leader >= 0 for p in metadata.partitions.values())
            ):
                return
            if time.monotonic() > deadline:
                raise StoreReadError(
                    f"topic {topic!r} was created but has no leaders after {timeout}s"
                )
            time.sleep(_POLL_S)
