"""Shared fixtures: a real Kafka broker for the session, fresh topic names, a clean env.

The broker comes from, in order: ``KAFKA_BOOTSTRAP_SERVERS``; a Docker engine through
testcontainers if one answers; else the project's own launcher
(``actionstate.service.local_kafka``) in a temporary folder, started once per session and
stopped at the end. A broker that cannot be obtained fails the tests that need it (with
the broker's log tail); it never skips them, in CI or anywhere else.

Every test that uses a broker fixture (``BROKER_FIXTURES``) is marked ``kafka`` at
collection, so ``-m "not kafka"`` runs no broker and needs neither Java nor Kafka.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actionstate.service.local_kafka import LocalKafka, LocalKafkaError, LocalKafkaSettings

# Facts about the machine rather than configuration under test: kept for every test.
_MACHINE_ENV = frozenset(
    {"ACTIONSTATE_CACHE_DIR", "ACTIONSTATE_KAFKA_JAVA", "ACTIONSTATE_KAFKA_MVN"}
)

# The shared broker, and folders for brokers a test starts itself (directly or through a
# command it runs): a test whose fixture closure holds one of them needs Java and Kafka.
BROKER_FIXTURES = frozenset({"kafka_bootstrap", "broker_dirs"})
# Backends whose fixture a parametrized fixture requests by name at run time
# (``params=["memory", "kafka"]`` + ``request.getfixturevalue``), which collection cannot see.
BROKER_BACKENDS = frozenset({"kafka", "sidecar"})


def _needs_broker(item: pytest.Item) -> bool:
    if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    params = () if callspec is None else callspec.params.values()
    return any(isinstance(value, str) and value in BROKER_BACKENDS for value in params)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-long``: the chaos suite's long run (``scripts/chaos``), not its CI size."""
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="run tests/chaos at full size (hundreds of kills); the default is CI size",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``kafka`` every test that gets a broker (``BROKER_FIXTURES``, ``BROKER_BACKENDS``)."""
    for item in items:
        if _needs_broker(item):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(autouse=True)
def _broker_use_is_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that got a broker some other way without being marked ``kafka``:
    ``-m "not kafka"`` would select it and then need a broker."""
    yield
    used = BROKER_FIXTURES & set(request.fixturenames)
    if used and request.node.get_closest_marker("kafka") is None:
        pytest.fail(
            f"{request.node.nodeid} used {sorted(used)} but is not marked kafka; request the "
            "broker fixture directly, or mark the parameter that needs it with "
            "pytest.param(..., marks=pytest.mark.kafka)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _isolate_actionstate_env() -> Iterator[None]:
    """Each test starts without ``ACTIONSTATE_*`` settings and cannot leak any."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ACTIONSTATE_")}
    for name in saved.keys() - _MACHINE_ENV:
        del os.environ[name]
    yield
    for name in [k for k in os.environ if k.startswith("ACTIONSTATE_")]:
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address (``host:port``) of a real Kafka broker for this session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    if _docker_engine_answers():
        yield from _testcontainers_kafka()
        return
    kafka = LocalKafka(LocalKafkaSettings(dir=tmp_path_factory.mktemp("kafka-broker")))
    try:
        bootstrap = kafka.start()
    except LocalKafkaError as exc:
        pytest.fail(f"could not start the local Kafka broker for the tests: {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def broker_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """``broker_dirs(name)``: a fresh folder for a broker the test starts itself. The test
    stops what it starts; any broker still running under one of these folders at the end of
    the session is stopped (by its pid file) all the same."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    for folder in made:
        for pid_file in folder.rglob("broker.pid"):
            LocalKafka(LocalKafkaSettings(dir=pid_file.parent)).stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses: the test's name plus a random suffix."""
    # Only [a-zA-Z0-9-]: Kafka treats "." and "_" as colliding in metric names.
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name).strip("-")[:80]
    return f"test-{base}-{uuid.uuid4().hex[:12]}"


def _docker_engine_answers() -> bool:
    """Whether a Docker engine responds to a ping within a few seconds."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import docker

            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
    except Exception:
        return False


def _testcontainers_kafka() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # testcontainers < 4.10
            from testcontainers.kafka import KafkaContainer
    try:
        container = KafkaContainer().with_kraft().start()
    except Exception as exc:
        pytest.fail(f"Docker answers but its Kafka container did not start: {exc}", pytrace=False)
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()
