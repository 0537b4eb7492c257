"""``KafkaAdmin.ensure_requests_topic``: the topics partitioned like the state topic
(requests, dead letters), against the real broker."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from actionstate.client import KafkaStoreSettings, TopicConfigError
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from tests._support.kafka import delete_topics


@pytest.fixture
def topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    yield topic_name
    delete_topics(kafka_bootstrap, topic_name)


@pytest.fixture
def admin(kafka_bootstrap: str) -> KafkaAdmin:
    return KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap, timeout_s=20))


def cleanup_policy(bootstrap: str, topic: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    client = AdminClient({"bootstrap.servers": bootstrap})  # alive until the answer came
    configs = client.describe_configs([resource])[resource].result()
    return str(configs["cleanup.policy"].value)


def test_a_missing_topic_is_created_with_delete_policy(
    admin: KafkaAdmin, kafka_bootstrap: str, topic: str
) -> None:
    assert admin.ensure_requests_topic(topic, 3) == 3
    assert admin.partition_count(topic) == 3
    assert cleanup_policy(kafka_bootstrap, topic) == "delete"
    # leaders are elected: the end offsets can be read at once
    assert admin.end_offsets(topic, [0, 1, 2]) == {0: 0, 1: 0, 2: 0}


def test_an_existing_topic_with_the_same_count_is_used(admin: KafkaAdmin, topic: str) -> None:
    assert admin.ensure_requests_topic(topic, 2) == 2
    assert admin.ensure_requests_topic(topic, 2) == 2
    assert admin.ensure_requests_topic(topic, 2, create=False) == 2


def test_another_partition_count_is_refused_saying_why(admin: KafkaAdmin, topic: str) -> None:
    admin.ensure_requests_topic(topic, 2)
    with pytest.raises(TopicConfigError) as caught:
        admin.ensure_requests_topic(topic, 4)
    message = str(caught.value)
    assert f"topic {topic!r} has 2 partitions, but the state topic has 4" in message
    assert "must hold the same agent keys" in message
    assert "exactly 4 partitions" in message
    assert admin.partition_count(topic) == 2  # nothing was changed


def test_a_missing_topic_is_refused_when_creating_is_off(admin: KafkaAdmin, topic: str) -> None:
    with pytest.raises(TopicConfigError, match="does not exist and creating it is off"):
        admin.ensure_requests_topic(topic, 3, create=False)
    assert admin.partition_count(topic) is None


def test_a_compacted_topic_is_refused(admin: KafkaAdmin, kafka_bootstrap: str, topic: str) -> None:
    admin.ensure_topic(
        KafkaStoreSettings(bootstrap_servers=kafka_bootstrap, topic=topic, partitions=2)
    )
    with pytest.raises(TopicConfigError, match=r"cleanup\.policy='compact'.*would be lost"):
        admin.ensure_requests_topic(topic, 2)


def test_concurrent_creators_agree(kafka_bootstrap: str, topic: str) -> None:
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap, timeout_s=20)
    admins = [KafkaAdmin(conn) for _ in range(3)]
    with ThreadPoolExecutor(len(admins)) as pool:
        counts = list(pool.map(lambda a: a.ensure_requests_topic(topic, 5), admins))
    assert counts == [5, 5, 5]


def test_bad_partition_counts_are_refused(admin: KafkaAdmin) -> None:
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="partitions must be an int >= 1"):
            admin.ensure_requests_topic("never-created", bad)  # type: ignore[arg-type]
