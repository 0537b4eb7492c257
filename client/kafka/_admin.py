"""The admin helper: the state topic's shape (created compacted when missing, checked when it
exists), the shape of the topics partitioned like it (requests, dead letters), partition
counts and end offsets.

Replication: a topic is created with ``replication_factor`` replicas, by default (None)
``min(3, brokers in the metadata)``, and ``min.insync.replicas`` 2 when it has 3 or more
(else the broker's default). An existing topic with fewer replicas or a lower
``min.insync.replicas`` than that is refused with ``TopicConfigError``, as a wrong cleanup
policy is: an ``acks=all`` write on it promises less than the settings say. Configure the
weaker shape explicitly (``replication_factor=1``, ``min_insync_replicas=1``) to accept it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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

__all__ = ["KafkaAdmin", "TopicShape"]

_POLL_S = 0.05
T = TypeVar("T")
_MAX_AUTO_REPLICAS = 3
_AUTO_MIN_ISR = 2
# The broker's max.message.bytes counts a record batch with its log overhead (offset and
# length, 12 bytes), as Kafka's own default of 1 MiB + 12 does; the producer's
# message.max.bytes does not.
_BATCH_OVERHEAD = 12


@dataclass(frozen=True, slots=True)
class TopicShape:
    """What an existing topic looks like: its partitions, the fewest replicas any of them
    has, and the configuration entries the project checks (None when the broker gave none)."""

    partitions: int
    replication_factor: int
    cleanup_policy: str
    min_insync_replicas: int | None
    max_message_bytes: int | None


_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")


class KafkaAdmin:
    """Topic and offset requests to the brokers of ``conn``; each waits at most its
    ``timeout_s``. librdkafka's own log lines go to ``logger``."""

    def __init__(self, conn: KafkaConnection, *, logger: logging.Logger | None = None) -> None:
        self._timeout = conn.timeout_s
        # model_construct()-ed connections (the local broker's probe) may lack the field.
        self._max_record_bytes: int | None = getattr(conn, "max_record_bytes", None)
        config = {**conn.kafka_config("admin"), "logger": logger or _librdkafka_log}
        self._client = new_client(AdminClient, config)

    def answers(self) -> bool:
        """Whether a broker answers a metadata request (naming at least one broker)."""
        try:
            metadata = self._client.list_topics(timeout=self._timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def broker_ids(self) -> list[int]:
        """The ids of the brokers the cluster metadata names now (the live ones)."""
        try:
            metadata = self._client.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise kafka_store_error(
                exc,
                "could not read the cluster metadata",
                "check that the brokers in bootstrap_servers are reachable",
            ) from exc
        return sorted(int(b) for b in metadata.brokers)

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

        A missing topic is created with ``cleanup.policy=compact``, the replication of the
        module docstring and ``max.message.bytes`` = ``max_record_bytes`` (unless
        ``create_topic`` is off). An existing topic must be compacted, have at least
        ``partitions`` partitions and be replicated as configured or better.
        """
        topic = settings.topic
        count = self.partition_count(topic)
        replicas = self._replication(settings.replication_factor)
        min_isr = _min_isr(replicas, settings.min_insync_replicas)
        if count is None:
            if not settings.create_topic:
                raise TopicConfigError(
                    f"topic {topic!r} does not exist and create_topic is off; create it with "
                    "cleanup.policy=compact or let the store create it"
                )
            count = self._create(
                topic,
                partitions=settings.partitions,
                replication_factor=replicas,
                min_isr=min_isr,
                policy="compact",
                timeout=settings.timeout_s,
            )
        shape = self.topic_shape(topic)
        policy = shape.cleanup_policy
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
        _check_replication(topic, shape, replicas, min_isr)
        return count

    def ensure_requests_topic(
        self,
        topic: str,
        partitions: int,
        replication_factor: int | None = None,
        *,
        create: bool = True,
        min_insync_replicas: int | None = None,
    ) -> int:
        """Make sure a topic keyed by agent key beside the state topic (requests, dead
        letters) exists with exactly ``partitions`` partitions; returns the count.

        A missing topic is created with ``cleanup.policy=delete`` and the replication of
        the module docstring (None: automatic) (unless ``create`` is off). An existing one
        must have ``partitions`` partitions, must not be compacted (compaction would keep
        only the last request of each agent key) and must be replicated as configured.
        """
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        count = self.partition_count(topic)
        replicas = self._replication(replication_factor)
        min_isr = _min_isr(replicas, min_insync_replicas)
        if count is None:
            if not create:
                raise TopicConfigError(
                    f"topic {topic!r} does not exist and creating it is off; create it with "
                    f"{partitions} partitions (the state topic's count), or let it be created"
                )
            count = self._create(
                topic,
                partitions=partitions,
                replication_factor=replicas,
                min_isr=min_isr,
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
        shape = self.topic_shape(topic)
        policy = shape.cleanup_policy
        if "compact" in policy.split(","):
            raise TopicConfigError(
                f"topic {topic!r} has cleanup.policy={policy!r}: compaction keeps only the "
                "last record of each agent key, so requests not yet run would be lost. Set "
                f"`kafka-configs --alter --entity-type topics --entity-name {topic} "
                "--add-config cleanup.policy=delete`, or use another topic."
            )
        _check_replication(topic, shape, replicas, min_isr)
        return count

    def topic_shape(self, topic: str) -> TopicShape:
        """The partitions, replication and checked configuration of an existing ``topic``."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                metadata = self._client.list_topics(topic=topic, timeout=self._timeout)
            except KafkaException as exc:
                raise kafka_store_error(
                    exc, f"could not read the metadata of topic {topic!r}"
                ) from exc
            described: Any = metadata.topics.get(topic)
            if described is not None and described.error is None and described.partitions:
                break
            # On a cluster the broker asked may not know a topic created a moment ago.
            if time.monotonic() > deadline:
                raise StoreReadError(f"topic {topic!r} has no metadata to describe")
            time.sleep(_POLL_S)
        configs = self._configs(topic)
        return TopicShape(
            partitions=len(described.partitions),
            replication_factor=min(len(p.replicas) for p in described.partitions.values()),
            cleanup_policy=configs.get("cleanup.policy", ""),
            min_insync_replicas=_int_or_none(configs.get("min.insync.replicas")),
            max_message_bytes=_int_or_none(configs.get("max.message.bytes")),
        )

    def _replication(self, configured: int | None) -> int:
        """The configured factor, or ``min(3, brokers)`` when it is None (automatic)."""
        if configured is not None:
            return configured
        return max(1, min(_MAX_AUTO_REPLICAS, len(self.broker_ids())))

    def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The end offset of each partition, in one request.

        Read-committed, like the readers, so the end offset is one they can reach.
        """
        if not partitions:
            return {}
        timeout = self._timeout
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        request = {TopicPartition(topic, p): latest for p in partitions}

        def ask() -> dict[int, int]:
            futures = self._client.list_offsets(
                request, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
            )
            return {tp.partition: future.result().offset for tp, future in futures.items()}

        return self._settled(ask, topic, f"could not list the offsets of topic {topic!r}")

    def _settled(self, call: Callable[[], T], topic: str, failed: str) -> T:
        """``call()``, asked again while it fails with an error that clears by itself
        (leadership moving after a new topic or a restarted broker; on a cluster, a broker
        that does not know a topic created a moment ago), up to the timeout; anything else,
        or an error that does not clear, is a ``StoreReadError`` saying ``failed``."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return call()
            except KafkaException as exc:
                if not retriable(error_of(exc)) or time.monotonic() > deadline:
                    raise StoreReadError(f"{failed}: {describe(exc)}") from exc
                # The request went to the leader (and epoch) librdkafka has cached: a fresh
                # metadata request updates the cache, else a moved leader is asked forever.
                self._refresh(topic)
            time.sleep(_POLL_S)

    def _refresh(self, topic: str) -> None:
        with contextlib.suppress(KafkaException):  # the next attempt reports what is wrong
            self._client.list_topics(topic=topic, timeout=self._timeout)

    def _configs(self, topic: str) -> dict[str, str]:
        resource = ConfigResource(ResourceType.TOPIC, topic)

        def ask() -> Any:
            described = self._client.describe_configs([resource], request_timeout=self._timeout)
            return described[resource].result()

        configs = self._settled(ask, topic, f"could not read the configuration of topic {topic!r}")
        return {
            name: str(entry.value) for name, entry in configs.items() if entry.value is not None
        }

    def _create(
        self,
        topic: str,
        *,
        partitions: int,
        replication_factor: int,
        min_isr: int | None,
        policy: str,
        timeout: float,
    ) -> int:
        """Create ``topic``, wait for its leaders and return its partition count. A topic
        created concurrently by another client is no error: the caller checks its shape."""
        config = {"cleanup.policy": policy}
        if min_isr is not None:
            config["min.insync.replicas"] = str(min_isr)
        if self._max_record_bytes is not None:
            config["max.message.bytes"] = str(self._max_record_bytes + _BATCH_OVERHEAD)
        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config=config,
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
                isr = "" if min_isr is None else f", min.insync.replicas {min_isr}"
                raise TopicConfigError(
                    f"could not create topic {topic!r} ({partitions} partitions, "
                    f"replication factor {replication_factor}{isr}, {shape}): {describe(exc)}"
                ) from exc
        # The count from the metadata that showed the leaders: on a cluster, the next
        # request may reach a broker that does not know the topic yet.
        return self._wait_for_leaders(topic)

    def _wait_for_leaders(self, topic: str) -> int:
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
                return len(metadata.partitions)
            if time.monotonic() > deadline:
                raise StoreReadError(
                    f"topic {topic!r} was created but has no leaders after {timeout}s"
                )
            time.sleep(_POLL_S)


def _min_isr(replicas: int, configured: int | None) -> int | None:
    """The ``min.insync.replicas`` to create a topic with; None: the broker's default."""
    if configured is not None:
        if configured > replicas:
            raise TopicConfigError(
                f"min_insync_replicas={configured} is more than the {replicas} replicas: "
                "every acks=all write would be refused. Lower it or raise replication_factor."
            )
        return configured
    return _AUTO_MIN_ISR if replicas >= _MAX_AUTO_REPLICAS else None


def _check_replication(topic: str, shape: TopicShape, replicas: int, min_isr: int | None) -> None:
    """Refuse a topic replicated more weakly than configured (or unwritable)."""
    fix = (
        "Reassign its partitions (kafka-reassign-partitions) or use another topic; to accept "
        "the weaker shape, configure it (replication_factor / min_insync_replicas, "
        "ACTIONSTATE_REPLICATION_FACTOR / ACTIONSTATE_MIN_INSYNC_REPLICAS)."
    )
    if shape.replication_factor < replicas:
        raise TopicConfigError(
            f"topic {topic!r} has {shape.replication_factor} replica(s) per partition, fewer "
            f"than the {replicas} configured: an acknowledged write can be lost with one "
            f"broker. {fix}"
        )
    topic_isr = shape.min_insync_replicas or 1
    if min_isr is not None and topic_isr < min_isr:
        raise TopicConfigError(
            f"topic {topic!r} has min.insync.replicas={topic_isr}, lower than the {min_isr} "
            "configured: an acks=all write would be acknowledged by fewer replicas. Set "
            f"`kafka-configs --alter --entity-type topics --entity-name {topic} --add-config "
            f"min.insync.replicas={min_isr}`; {fix}"
        )
    if topic_isr > shape.replication_factor:
        raise TopicConfigError(
            f"topic {topic!r} has min.insync.replicas={topic_isr} but only "
            f"{shape.replication_factor} replica(s): every acks=all write is refused. Lower "
            "its min.insync.replicas or add replicas."
        )


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
