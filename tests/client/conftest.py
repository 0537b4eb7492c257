"""Store fixtures: every contract test runs over every backend.

A backend is one entry in ``STORE_BACKENDS`` naming a fixture that returns an *opener*:
a callable opening a new store on the backing the test shares (the same memory log, the
same Kafka topic, the same sidecar). To add a backend, add ``"name": "fixture_name"`` and
define that fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actionstate.client import (
    ActionStateStore,
    KafkaStore,
    KafkaStoreSettings,
    MemoryLog,
    MemoryStore,
    SidecarStore,
)
from actionstate.service import SidecarServer, SidecarSettings
from tests._support.kafka import delete_topics

PARTITIONS = 4

STORE_BACKENDS: dict[str, str] = {
    "memory": "memory_store_opener",
    "kafka": "kafka_store_opener",
    "sidecar": "sidecar_store_opener",
}

# opener(signing_secret=None) -> a new store on the test's shared backing
StoreOpener = Callable[..., ActionStateStore]


@pytest.fixture
def memory_store_opener() -> Iterator[StoreOpener]:
    """Opens ``MemoryStore`` instances sharing one ``MemoryLog``."""
    log = MemoryLog(PARTITIONS)
    opened: list[MemoryStore] = []

    def open_store(signing_secret: str | None = None) -> MemoryStore:
        store = MemoryStore(log, signing_secret=signing_secret)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, topic_name: str) -> KafkaStoreSettings:
    """Settings of a fresh 4-partition topic on the session's broker."""
    return KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS
    )


@pytest.fixture
def kafka_store_opener(kafka_settings: KafkaStoreSettings) -> Iterator[StoreOpener]:
    """Opens ``KafkaStore`` instances on one fresh topic, deleted afterwards."""
    opened: list[KafkaStore] = []

    def open_store(signing_secret: str | None = None, **overrides: Any) -> KafkaStore:
        if signing_secret is not None:
            overrides["signing_secret"] = signing_secret
        store = KafkaStore(kafka_settings, **overrides)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    delete_topics(kafka_settings.bootstrap_servers, kafka_settings.topic)


@pytest.fixture
def sidecar_store_opener(kafka_settings: KafkaStoreSettings) -> Iterator[StoreOpener]:
    """Opens ``SidecarStore`` instances on one sidecar (in process, on a free port) serving
    a fresh topic, deleted afterwards."""
    server = SidecarServer(
        SidecarSettings(
            bootstrap_servers=kafka_settings.bootstrap_servers,
            topic=kafka_settings.topic,
            partitions=PARTITIONS,
            port=0,
        )
    )
    url = server.start()
    opened: list[SidecarStore] = []

    def open_store(signing_secret: str | None = None) -> SidecarStore:
        store = SidecarStore(url, signing_secret=signing_secret)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    server.stop()
    delete_topics(kafka_settings.bootstrap_servers, kafka_settings.topic)


@pytest.fixture(params=list(STORE_BACKENDS))
def store_backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
def store_opener(request: pytest.FixtureRequest, store_backend: str) -> StoreOpener:
    """Opens stores of the backend under test, all on the same backing."""
    opener: StoreOpener = request.getfixturevalue(STORE_BACKENDS[store_backend])
    return opener


@pytest.fixture
def store(store_opener: StoreOpener) -> ActionStateStore:
    """A store of the backend under test (memory, Kafka, ...)."""
    return store_opener()
