"""The Kafka seam: every Kafka client the project creates is built here, from one
:class:`KafkaConnection`."""

from actionstate.client.kafka._admin import KafkaAdmin
from actionstate.client.kafka._errors import ReadEvent, kafka_store_error
from actionstate.client.kafka._group import GroupConsumer, PartitionsCallback
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
from actionstate.client.kafka._transactions import TransactionalWriter, transactional_id
from actionstate.client.kafka._writer import KafkaWriter

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "GroupConsumer",
    "KafkaAdmin",
    "KafkaConnection",
    "KafkaMessage",
    "KafkaWriter",
    "PartitionRange",
    "PartitionReader",
    "Partitions",
    "PartitionsCallback",
    "ReadEnd",
    "ReadEvent",
    "ReplicationFactor",
    "TopicName",
    "TransactionalWriter",
    "kafka_store_error",
    "parse_offsets",
    "transactional_id",
]
