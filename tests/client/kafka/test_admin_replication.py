"""The replication of the topics the project creates and checks: ``min(3, brokers)``
replicas and ``min.insync.replicas`` 2 on three brokers; an existing topic replicated more
weakly than configured is refused with ``TopicConfigError``, as a wrong cleanup policy is.

The cluster tests start three brokers (heavy: run under ``flock /tmp/heavy.lock``); the
others use the shared single broker, where "automatic" means one replica.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from actionstate.client import KafkaStore, KafkaStoreSettings, TopicConfigError
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from actionstate.client.kafka._settings import DEFAULT_MAX_RECORD_BYTES
from tests._support.cluster import running_cluster
from tests._support.kafka import delete_topics


def create(bootstrap: str, topic: str, replicas: int, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 2, replicas, config={"cleanup.policy": "compact", **config})
    admin.create_topics([new])[topic].result(timeout=30)


def store(bootstrap: str, topic: str, **settings: Any) -> KafkaStore:
    return KafkaStore(
        KafkaStoreSettings(bootstrap_servers=bootstrap, topic=topic, partitions=2, **settings)
    )


# -- one broker ----------------------------------------------------------------------------


@pytest.fixture
def topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    yield topic_name
    delete_topics(kafka_bootstrap, topic_name)


def test_automatic_on_one_broker_is_one_replica(kafka_bootstrap: str, topic: str) -> None:
    s = store(kafka_bootstrap, topic)
    try:
        shape = s.admin.topic_shape(topic)
    finally:
        s.close()
    assert shape.replication_factor == 1
    assert shape.min_insync_replicas == 1
    assert shape.max_message_bytes == DEFAULT_MAX_RECORD_BYTES + 12
    assert KafkaStoreSettings(topic="t").replication_factor is None


def test_more_min_insync_replicas_than_replicas_is_refused(
    kafka_bootstrap: str, topic: str
) -> None:
    with pytest.raises(TopicConfigError, match="min_insync_replicas=2 is more than the 1"):
        store(kafka_bootstrap, topic, replication_factor=1, min_insync_replicas=2)
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    assert admin.partition_count(topic) is None  # nothing was created


def test_a_requests_topic_gets_the_automatic_shape(kafka_bootstrap: str, topic: str) -> None:
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    assert admin.ensure_requests_topic(topic, 2) == 2
    shape = admin.topic_shape(topic)
    assert shape.replication_factor == 1
    assert shape.cleanup_policy == "delete"
    assert shape.max_message_bytes == DEFAULT_MAX_RECORD_BYTES + 12


# -- three brokers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(broker_dirs: Callable[[str], Path]) -> Iterator[str]:
    with running_cluster(broker_dirs("admin-cluster")) as kafka:
        bootstrap = kafka.status().bootstrap
        assert bootstrap is not None
        yield bootstrap


def fresh() -> str:
    return f"repl-{uuid.uuid4().hex[:12]}"


def test_automatic_on_three_brokers_is_three_replicas_min_isr_2(cluster: str) -> None:
    topic = fresh()
    s = store(cluster, topic)
    try:
        shape = s.admin.topic_shape(topic)
        assert shape.replication_factor == 3
        assert shape.min_insync_replicas == 2
        assert shape.cleanup_policy == "compact"
        # the requests and dead-letter topics beside it get the same shape
        requests = fresh()
        assert s.admin.ensure_requests_topic(requests, 2) == 2
        req = s.admin.topic_shape(requests)
        assert (req.replication_factor, req.min_insync_replicas) == (3, 2)
    finally:
        s.close()
    # The same topic opens again with the same settings.
    store(cluster, topic).close()


def test_an_existing_topic_with_fewer_replicas_is_refused(cluster: str) -> None:
    topic = fresh()
    create(cluster, topic, 1, **{"min.insync.replicas": "1"})
    with pytest.raises(TopicConfigError) as caught:
        store(cluster, topic)
    message = str(caught.value)
    assert "has 1 replica(s) per partition, fewer than the 3 configured" in message
    assert "replication_factor" in message
    # Configured explicitly, the weaker shape is accepted.
    store(cluster, topic, replication_factor=1).close()


def test_an_existing_topic_with_a_lower_min_isr_is_refused(cluster: str) -> None:
    topic = fresh()
    create(cluster, topic, 3, **{"min.insync.replicas": "1"})
    with pytest.raises(TopicConfigError, match=r"min.insync.replicas=1, lower than the 2"):
        store(cluster, topic)
    store(cluster, topic, min_insync_replicas=1).close()
    requests = fresh()
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=cluster))
    admin_topic = AdminClient({"bootstrap.servers": cluster})
    new = NewTopic(requests, 2, 3, config={"min.insync.replicas": "1"})
    admin_topic.create_topics([new])[requests].result(timeout=30)
    with pytest.raises(TopicConfigError, match="lower than the 2"):
        admin.ensure_requests_topic(requests, 2)
    assert admin.ensure_requests_topic(requests, 2, min_insync_replicas=1) == 2


def test_a_stronger_existing_topic_is_used(cluster: str) -> None:
    topic = fresh()
    create(cluster, topic, 3, **{"min.insync.replicas": "3"})
    store(cluster, topic, replication_factor=2).close()


def test_a_topic_with_more_min_isr_than_replicas_is_refused(cluster: str) -> None:
    topic = fresh()
    create(cluster, topic, 1)  # the cluster's default min.insync.replicas is 2
    with pytest.raises(TopicConfigError, match="every acks=all write is refused"):
        store(cluster, topic, replication_factor=1)
