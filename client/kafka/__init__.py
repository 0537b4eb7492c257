"""The Kafka seam: every Kafka client the project creates is built here, from one
:class:`KafkaConnection`."""

from actionstate.client.kafka._admin import KafkaAdmin
from actionstate.client.kafka._errors import ReadEvent, kafka_store_error
from actionstate.client.kafka._reader import (
    KafkaMessage,
    PartitionRange,
    PartitionReader,
    ReadEnd,
    parse_offsets,
)
from actionstate.client.kafka._settings import (
    DEFAULT_TIMEOUT_S,
    KafkaConnection,
    Partitions,
    ReplicationFactor,
    TopicName,
)
from actionstate.client.kafka._writer import KafkaWriter

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "KafkaAdmin",
    "KafkaConnection",
    "KafkaMessage",
    "KafkaWriter",
    "PartitionRange",
    "PartitionReader",
    "Partitions",
    "ReadEnd",
    "ReadEvent",
    "ReplicationFactor",
    "TopicName",
    "kafka_store_error",
    "parse_offsets",
]
