"""The public names of actionstate.client.kafka, the Kafka seam."""

from __future__ import annotations

import actionstate.client.kafka as kafka
from tests._support import check_exports

PUBLIC = {
    "DEFAULT_TIMEOUT_S", "GroupConsumer", "KafkaAdmin", "KafkaConnection", "KafkaMessage",
    "KafkaWriter", "PartitionRange", "PartitionReader", "Partitions", "PartitionsCallback",
    "ReadEnd", "ReadEvent", "ReplicationFactor", "TopicName", "TransactionalWriter",
    "kafka_store_error", "parse_offsets", "transactional_id",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(kafka, PUBLIC)


def test_the_store_settings_are_a_connection() -> None:
    from actionstate.client import KafkaStoreSettings

    assert issubclass(KafkaStoreSettings, kafka.KafkaConnection)
