"""A local three-node Kafka cluster for tests, and what tests ask its metadata (raw clients):
brokers, each partition's leader and in-sync replicas."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings

__all__ = ["broker_ids", "in_sync", "leaders", "node_pid", "running_cluster"]


@contextlib.contextmanager
def running_cluster(folder: Path, brokers: int = 3) -> Iterator[LocalKafka]:
    """A cluster of ``brokers`` nodes started in ``folder`` (a ``broker_dirs`` folder), every
    node stopped by its pid afterwards, even when the test failed."""
    kafka = LocalKafka(LocalKafkaSettings(dir=folder, brokers=brokers))
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.stop(kill=True)


def _topic(bootstrap: str, topic: str) -> Any:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert metadata.error is None, metadata.error
    return metadata


def broker_ids(bootstrap: str) -> set[int]:
    """The brokers the cluster metadata names now (the live ones)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return set(admin.list_topics(timeout=10).brokers)


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> the node id leading it (-1 when none does)."""
    return {p: meta.leader for p, meta in _topic(bootstrap, topic).partitions.items()}


def in_sync(bootstrap: str, topic: str) -> dict[int, set[int]]:
    """Partition -> the node ids of its in-sync replicas."""
    return {p: set(meta.isrs) for p, meta in _topic(bootstrap, topic).partitions.items()}


def node_pid(kafka: LocalKafka, node_id: int) -> int | None:
    """The pid of node ``node_id`` of the cluster, None when it does not run."""
    for node in kafka.status().nodes:
        if node.node_id == node_id:
            return node.pid
    raise AssertionError(f"no node {node_id} in {kafka.dir}")
