"""Kafka connection settings: one typed object, one place that builds every client config."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actionstate.serde import DEFAULT_CODEC, get_codec

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_TIMEOUT_S",
    "ClientValue",
    "Compression",
    "KafkaConnection",
    "KafkaStoreSettings",
    "MaxRecordBytes",
    "MinInsyncReplicas",
    "Partitions",
    "ReplicationFactor",
    "Role",
    "TimeoutS",
    "TopicName",
    "check_client_config",
]

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
"""8 MiB: an action's record holds every call result, and Kafka's 1 MB default is reached
after a few thousand durable calls."""

ClientValue = str | int | float | bool
TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]
Partitions = Annotated[int, Field(ge=1)]
ReplicationFactor = Annotated[int, Field(ge=1)]
MinInsyncReplicas = Annotated[int, Field(ge=1)]
# librdkafka's range for message.max.bytes.
MaxRecordBytes = Annotated[int, Field(ge=1000, le=1_000_000_000)]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
TimeoutS = Annotated[float, Field(gt=0, le=86_400)]

# Settings the project's guarantees rest on; overriding them would silently weaken a write
# or a read, so they are refused rather than passed through.
_RESERVED = {
    "bootstrap.servers": "use bootstrap_servers",
    "acks": "writes always wait for all in-sync replicas",
    "request.required.acks": "writes always wait for all in-sync replicas",
    "enable.idempotence": "the producer is always idempotent",
    "partitioner": "the partition is always chosen with partition_for",
    "group.id": "reads are by assignment; a worker's group is its --group / group setting",
    "transactional.id": "a fenced worker derives it from the state topic and partition",
    "isolation.level": "readers see committed records only",
    "enable.auto.commit": "offsets are committed only after an action's state is acknowledged",
    "enable.partition.eof": "readers rely on end-of-partition events",
    "allow.auto.create.topics": "the store creates its topic itself, compacted",
    "message.timeout.ms": "use timeout_s: a write fails with StoreWriteError after it",
    "delivery.timeout.ms": "use timeout_s: a write fails with StoreWriteError after it",
}

Role = Literal["producer", "consumer", "admin"]

# Properties of one kind of client only: ``client_config`` (every client, like ``-X``) keeps
# them from the others, which librdkafka would warn about ("is a consumer property and will
# be ignored by this producer instance").
_CONSUMER_ONLY = frozenset(
    {
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "group.instance.id",
        "group.protocol",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "auto.offset.reset",
        "auto.commit.interval.ms",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "check.crcs",
    }
)
_PRODUCER_ONLY = frozenset(
    {
        "linger.ms",
        "queue.buffering.max.ms",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "batch.size",
        "batch.num.messages",
        "compression.type",
        "compression.codec",
        "retries",
        "message.send.max.retries",
        "transaction.timeout.ms",
        "sticky.partitioning.linger.ms",
    }
)
_NOT_FOR: dict[str, frozenset[str]] = {
    "producer": _CONSUMER_ONLY,
    "consumer": _PRODUCER_ONLY,
    "admin": _CONSUMER_ONLY | _PRODUCER_ONLY,
}


def check_client_config(value: dict[str, ClientValue]) -> dict[str, ClientValue]:
    """``value`` if it overrides none of the properties the project's guarantees rest on."""
    for key in value:
        if key in _RESERVED:
            raise ValueError(f"{key!r} cannot be overridden: {_RESERVED[key]}")
    return value


_CONNECTION_FIELDS = (
    "bootstrap_servers",
    "timeout_s",
    "max_record_bytes",
    "compression",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_ca_location",
    "client_config",
    "producer_config",
    "consumer_config",
)


class KafkaConnection(BaseSettings):
    """How to reach the brokers: every Kafka client the project creates is configured here.

    Every field can come from an argument or from ``ACTIONSTATE_<FIELD>`` in the
    environment (``KAFKA_BOOTSTRAP_SERVERS`` is honoured too). Security settings are
    passed to every client; any other librdkafka property goes in ``client_config`` (all
    clients), ``producer_config`` or ``consumer_config``, e.g.
    ``ACTIONSTATE_CLIENT_CONFIG='{"ssl.endpoint.identification.algorithm": "none"}'``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ACTIONSTATE_", extra="forbid", frozen=True, populate_by_name=True
    )

    bootstrap_servers: str = Field(
        default="localhost:9092",
        min_length=1,
        validation_alias=AliasChoices(
            "bootstrap_servers", "ACTIONSTATE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    timeout_s: TimeoutS = DEFAULT_TIMEOUT_S
    """Seconds any broker operation may take: a write not acknowledged within it raises
    ``StoreWriteError``; admin requests and a stalled read fail after it too."""
    max_record_bytes: MaxRecordBytes = DEFAULT_MAX_RECORD_BYTES
    """The largest record a producer sends (librdkafka's ``message.max.bytes``, checked
    before compression); a topic the project creates gets it as ``max.message.bytes``. A
    larger record fails with ``RecordTooLargeError``."""
    compression: Compression = "lz4"
    """The producers' ``compression.type``: state records are JSON that compresses well."""
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    client_config: dict[str, ClientValue] = Field(default_factory=dict)
    producer_config: dict[str, ClientValue] = Field(default_factory=dict)
    consumer_config: dict[str, ClientValue] = Field(default_factory=dict)

    @field_validator("client_config", "producer_config", "consumer_config")
    @classmethod
    def _no_reserved(cls, value: dict[str, ClientValue]) -> dict[str, ClientValue]:
        return check_client_config(value)

    def connection_values(self) -> dict[str, Any]:
        """The connection fields, to build other settings on the same connection."""
        return {name: getattr(self, name) for name in _CONNECTION_FIELDS}

    def kafka_config(
        self,
        role: Role,
        *,
        purpose: str = "rebuild",
        group: str | None = None,
        transactional_id: str | None = None,
    ) -> dict[str, Any]:
        """The confluent-kafka configuration of a ``role`` client.

        A consumer without ``group`` reads by assignment and its group id (never committed
        to) names its ``purpose``; with ``group`` it is a member of that consumer group and
        commits offsets itself. A producer with ``transactional_id`` writes in transactions.
        """
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "allow.auto.create.topics": False,
        }
        security = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            ),
            "ssl.ca.location": self.ssl_ca_location,
        }
        config.update({k: v for k, v in security.items() if v is not None})
        other = _NOT_FOR[role]
        if role == "producer":
            # Before the passthrough properties: an explicit property wins over the settings.
            config["compression.type"] = self.compression
            config["message.max.bytes"] = self.max_record_bytes
        config.update({k: v for k, v in self.client_config.items() if k not in other})
        if role == "producer":
            config.update({"linger.ms": 0})
            config.update(self.producer_config)
            # librdkafka retries a write until this expires, then reports it failed.
            config["message.timeout.ms"] = timeout_ms = max(1, round(self.timeout_s * 1000))
            config.update({"enable.idempotence": True, "acks": "all"})
            if transactional_id is not None:
                # A commit retries its requests after this backoff: librdkafka's 100 ms
                # default puts most of a transaction's latency in waiting.
                config.setdefault("retry.backoff.ms", 1)
                config["transaction.timeout.ms"] = max(timeout_ms, 10_000)
                config["transactional.id"] = transactional_id
        elif role == "consumer":
            config.update({"auto.offset.reset": "earliest", "fetch.wait.max.ms": 50})
            if group is not None:
                # Sticky and incremental: a rebalance moves only the partitions that must move.
                config["partition.assignment.strategy"] = "cooperative-sticky"
            config.update(self.consumer_config)
            config["isolation.level"] = "read_committed"
            config["enable.auto.commit"] = False
            config["enable.auto.offset.store"] = False
            if group is None:
                config["group.id"] = f"actionstate-{purpose}-{uuid.uuid4()}"
                config["enable.partition.eof"] = True
            else:
                config["group.id"] = group
                config["enable.partition.eof"] = False
        return config


class KafkaStoreSettings(KafkaConnection):
    """Where and how the Kafka store keeps its journal, on a :class:`KafkaConnection`.

    Every field can come from an argument or from ``ACTIONSTATE_<FIELD>`` in the
    environment, as the connection's do.
    """

    topic: TopicName
    partitions: Partitions = 64
    replication_factor: ReplicationFactor | None = None
    """Replicas of a topic the store creates; None: min(3, brokers in the cluster). An
    existing topic with fewer is refused (``TopicConfigError``)."""
    min_insync_replicas: MinInsyncReplicas | None = None
    """The topic's ``min.insync.replicas``; None: 2 when the factor is 3 or more, else the
    broker's default. An existing topic with fewer is refused (``TopicConfigError``)."""
    create_topic: bool = True
    signing_secret: SecretStr | None = None
    payload_codec: str = DEFAULT_CODEC

    @field_validator("payload_codec")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        return get_codec(value).name  # an unknown name is refused with the known ones listed

    @property
    def secret_bytes(self) -> bytes | None:
        """The signing secret as bytes, or None when records are not signed."""
        if self.signing_secret is None:
            return None
        return self.signing_secret.get_secret_value().encode()
