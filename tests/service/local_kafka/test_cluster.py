"""A three-node local KRaft cluster: started once for the module through the CLI
(``actionstate kafka start --brokers 3``), a node taken away and brought back, the
replicated writes it promises while a node is gone, and the CLI's cluster commands.

Heavy (three JVMs): run it under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from actionstate.service.local_kafka import LocalKafka, LocalKafkaError, LocalKafkaSettings
from tests._support import assert_eventually
from tests._support.cluster import broker_ids, in_sync, leaders, node_pid
from tests.service.local_kafka.test_launcher import _cli, _read_all

NOT_RUNNING = 3
NODES = {1, 2, 3}


@pytest.fixture(scope="module")
def cluster_dir(broker_dirs: Callable[[str], Path]) -> Iterator[Path]:
    folder = broker_dirs("cluster")
    try:
        yield folder
    finally:
        LocalKafka(LocalKafkaSettings(dir=folder)).stop(kill=True)


@pytest.fixture(scope="module")
def cluster(cluster_dir: Path) -> tuple[LocalKafka, str]:
    """The cluster and its bootstrap line, as ``actionstate kafka start`` printed it."""
    started = _cli("kafka", "start", "--brokers", "3", "--dir", str(cluster_dir))
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    return LocalKafka(LocalKafkaSettings(dir=cluster_dir)), bootstrap


def replicated_topic(bootstrap: str) -> str:
    topic = f"rf3-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(timeout=30)
    assert_eventually(lambda: all(r == NODES for r in in_sync(bootstrap, topic).values()))
    return topic


def write_acks_all(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Write ``values`` with acks=all; fails unless every one is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    errors: list[str] = []

    def done(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for value in values:
        producer.produce(topic, value, on_delivery=done)
    assert producer.flush(60) == 0
    assert errors == []


def test_the_bootstrap_line_lists_three_brokers_of_one_cluster(
    cluster: tuple[LocalKafka, str],
) -> None:
    kafka, bootstrap = cluster
    addresses = bootstrap.split(",")
    assert len(addresses) == 3
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    assert broker_ids(bootstrap) == NODES
    status = kafka.status()
    assert status.running
    assert status.bootstrap == bootstrap
    assert [n.node_id for n in status.nodes] == [1, 2, 3]
    assert len({n.pid for n in status.nodes}) == 3
    # Each node has its own folder, laid out like a single broker's.
    for node in status.nodes:
        assert (node.dir / "broker.pid").is_file()
        assert (node.dir / "server.properties").is_file()
        assert node.dir.parent == kafka.dir


def test_a_killed_node_leaves_two_brokers_that_still_take_acks_all_writes(
    cluster: tuple[LocalKafka, str],
) -> None:
    kafka, bootstrap = cluster
    topic = replicated_topic(bootstrap)
    victim = leaders(bootstrap, topic)[0]
    pid = node_pid(kafka, victim)
    assert kafka.stop_node(victim, kill=True) == pid
    assert node_pid(kafka, victim) is None
    assert not kafka.status().running  # not every node runs
    assert_eventually(lambda: broker_ids(bootstrap) == NODES - {victim}, timeout=60)
    # min.insync.replicas 2 of 3: acks=all writes are still acknowledged.
    write_acks_all(bootstrap, topic, [b"while-down-%d" % i for i in range(30)])
    assert all(victim not in isr for isr in in_sync(bootstrap, topic).values())

    address = kafka.start_node(victim)
    assert address in bootstrap.split(",")
    assert_eventually(lambda: broker_ids(bootstrap) == NODES, timeout=60)
    assert_eventually(
        lambda: all(isr == NODES for isr in in_sync(bootstrap, topic).values()), timeout=90
    )
    assert kafka.status().running
    assert len(_read_all(bootstrap, topic, expected=30)) == 30


def test_the_cli_stops_and_starts_one_node(cluster: tuple[LocalKafka, str]) -> None:
    kafka, bootstrap = cluster
    stopped = _cli("kafka", "stop", "--dir", str(kafka.dir), "--node", "2")
    assert stopped.returncode == 0, stopped.stderr
    assert "node 2" in stopped.stdout
    status = _cli("kafka", "status", "--dir", str(kafka.dir))
    assert status.returncode == NOT_RUNNING, status.stdout
    assert "node 2: not running" in status.stdout
    assert "2 of 3 nodes running" in status.stdout

    started = _cli("kafka", "start", "--dir", str(kafka.dir), "--node", "2")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] in bootstrap.split(",")
    status = _cli("kafka", "status", "--dir", str(kafka.dir))
    assert status.returncode == 0, status.stdout
    assert status.stdout.strip().splitlines()[-1] == bootstrap
    assert_eventually(lambda: broker_ids(bootstrap) == NODES, timeout=60)


def test_a_node_folder_stops_like_a_broker_folder_but_does_not_start_alone(
    cluster: tuple[LocalKafka, str],
) -> None:
    # What the broker_dirs finalizer does: LocalKafka(dir=<folder of a broker.pid>).stop().
    kafka, bootstrap = cluster
    node = LocalKafka(LocalKafkaSettings(dir=kafka.dir / "node-3"))
    pid = node_pid(kafka, 3)
    assert node.stop() == pid
    assert node_pid(kafka, 3) is None
    with pytest.raises(LocalKafkaError, match=r"is a node of the cluster .* --node N"):
        node.start()
    assert kafka.start_node(3) in bootstrap.split(",")
    assert_eventually(lambda: broker_ids(bootstrap) == NODES, timeout=60)


def test_starting_again_finds_the_cluster_running(cluster: tuple[LocalKafka, str]) -> None:
    kafka, bootstrap = cluster
    again = _cli("kafka", "start", "--dir", str(kafka.dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == bootstrap
    other_size = _cli("kafka", "start", "--brokers", "5", "--dir", str(kafka.dir))
    assert other_size.returncode == 1
    assert "cluster of 3 nodes, not 5" in other_size.stderr


def test_no_cluster_in_a_single_broker_folder(tmp_path: Path) -> None:
    kafka = LocalKafka(LocalKafkaSettings(dir=tmp_path))
    with pytest.raises(LocalKafkaError, match="single broker, not a cluster"):
        kafka.stop_node(1)
    cli = _cli("kafka", "stop", "--dir", str(tmp_path), "--node", "1")
    assert cli.returncode == 1
    assert "single broker, not a cluster" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_the_cli_stops_every_node(cluster: tuple[LocalKafka, str]) -> None:
    # Last in the module (file order): it takes the cluster down.
    kafka, _ = cluster
    pids = [n.pid for n in kafka.status().nodes]
    stopped = _cli("kafka", "stop", "--dir", str(kafka.dir))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped 3 Kafka nodes" in stopped.stdout
    for pid in pids:
        assert f": {pid}" in stopped.stdout
    status = _cli("kafka", "status", "--dir", str(kafka.dir))
    assert status.returncode == NOT_RUNNING
    assert "0 of 3 nodes running" in status.stdout
    assert not any((kafka.dir / f"node-{n}" / "broker.pid").exists() for n in NODES)
