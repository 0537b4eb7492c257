"""The local Kafka launcher, driven through ``actionstate kafka ...`` like a user would.

Starts a second real broker in a temporary folder (next to the session's broker), so it
also shows that several brokers run side by side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from actionstate.service.local_kafka import LocalKafka, LocalKafkaError, LocalKafkaSettings

NOT_RUNNING = 3


def _actionstate() -> list[str]:
    script = Path(sys.executable).with_name("actionstate")
    if script.exists():
        return [str(script)]
    found = shutil.which("actionstate")
    assert found is not None, "the actionstate console script is not installed"
    return [found]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_actionstate(), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


@pytest.fixture
def broker_dir(broker_dirs: Callable[[str], Path]) -> Iterator[Path]:
    """A folder for a broker the test starts; whatever runs there is stopped afterwards."""
    folder = broker_dirs("broker")
    yield folder
    LocalKafka(LocalKafkaSettings(dir=folder)).stop()


def _produce_and_consume(bootstrap: str, topic: str, value: bytes) -> list[bytes]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=value, key=b"k")
    assert producer.flush(30) == 0
    return _read_all(bootstrap, topic, expected=1)


def _read_all(bootstrap: str, topic: str, *, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(600):
            if len(values) >= expected:
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            error = msg.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            if error is None:
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_start_status_stop_restart_through_the_cli(
    broker_dir: Path, kafka_bootstrap: str, topic_name: str
) -> None:
    started = _cli("kafka", "start", "--dir", str(broker_dir))
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    host, _, port = bootstrap.partition(":")
    assert host == "127.0.0.1"
    assert port.isdigit()
    assert bootstrap != kafka_bootstrap  # a second broker, beside the session's

    status = _cli("kafka", "status", "--dir", str(broker_dir))
    assert status.returncode == 0, status.stdout + status.stderr
    assert bootstrap in status.stdout

    again = _cli("kafka", "start", "--dir", str(broker_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == bootstrap

    assert _produce_and_consume(bootstrap, topic_name, b"hello") == [b"hello"]

    stopped = _cli("kafka", "stop", "--dir", str(broker_dir))
    assert stopped.returncode == 0, stopped.stderr
    status = _cli("kafka", "status", "--dir", str(broker_dir))
    assert status.returncode == NOT_RUNNING, status.stdout

    # A restart on the same folder keeps the data and, the ports being free, the address.
    restarted = _cli("kafka", "start", "--dir", str(broker_dir))
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip().splitlines()[-1] == bootstrap
    assert _read_all(bootstrap, topic_name, expected=1) == [b"hello"]


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    kafka = LocalKafka(LocalKafkaSettings(dir=tmp_path / "broker", java=str(tmp_path / "no-java")))
    with pytest.raises(LocalKafkaError, match=r"JDK 17\+: apt-get install openjdk-17"):
        kafka.start()
    assert not kafka.status().running
    assert not (tmp_path / "broker" / "broker.pid").exists()

    env = {**os.environ, "ACTIONSTATE_KAFKA_JAVA": str(tmp_path / "no-java")}
    result = _cli("kafka", "start", "--dir", str(tmp_path / "broker"), env=env)
    assert result.returncode == 1, result.stderr
    assert "Java" in result.stderr, result.stderr
    assert "openjdk-17" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_missing_maven_is_a_clear_error(tmp_path: Path) -> None:
    kafka = LocalKafka(
        LocalKafkaSettings(
            dir=tmp_path / "broker", cache_dir=tmp_path / "cache", mvn=str(tmp_path / "no-mvn")
        )
    )
    with pytest.raises(LocalKafkaError, match=r"apt-get install maven"):
        kafka.install()


def test_unresolvable_version_shows_mavens_error(tmp_path: Path) -> None:
    kafka = LocalKafka(
        LocalKafkaSettings(dir=tmp_path / "broker", cache_dir=tmp_path / "cache", version="0.0.1")
    )
    with pytest.raises(
        LocalKafkaError, match=r"Maven could not resolve .*kafka_2\.13:0\.0\.1"
    ) as info:
        kafka.install()
    assert "[ERROR]" in info.value.log_tail
    assert not (tmp_path / "cache" / "kafka-0.0.1").exists()


def test_broker_dying_at_start_reports_its_log(broker_dir: Path) -> None:
    # A heap far too small for the JVM: the process starts, then exits at once.
    kafka = LocalKafka(LocalKafkaSettings(dir=broker_dir, heap="1k"))
    with pytest.raises(LocalKafkaError, match=r"exited with code") as info:
        kafka.start()
    assert "heap" in info.value.log_tail.lower()
    assert not kafka.status().running


def test_start_timeout_stops_the_broker(broker_dir: Path) -> None:
    kafka = LocalKafka(LocalKafkaSettings(dir=broker_dir, start_timeout=0.0))
    with pytest.raises(LocalKafkaError, match=r"did not accept connections .* so it was stopped"):
        kafka.start()
    status = kafka.status()
    assert not status.running
    assert not (broker_dir / "broker.pid").exists()
