"""Record size limits and compression: a topic the store creates takes records up to
``max_record_bytes``, a larger one fails with ``RecordTooLargeError`` naming the limit (the
producer's or the topic's), and the store keeps working after it. Idempotent and fenced
(transactional) writers alike, against the real broker."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from actionstate.client import (
    KafkaStore,
    KafkaStoreSettings,
    RecordTooLargeError,
    StoreWriteError,
)
from actionstate.client.kafka import KafkaConnection, KafkaWriter, TransactionalWriter
from actionstate.serde import ActionState, Event, HeaderList, MemoryUpdate
from tests._support.kafka import delete_topics

Opener = Callable[..., KafkaStore]
EVENT = Event.input({"order": 1})
PARTITIONS = 2
MiB = 1024 * 1024


def state_of(note: str) -> ActionState:
    return ActionState(
        task_event=EVENT, short_term_memory_updates=[MemoryUpdate(path="note", value=note)]
    )


def noise(size: int) -> str:
    """Text that no codec compresses much below ``size`` * 3/4 (random bytes, base64)."""
    return base64.b64encode(os.urandom(size * 3 // 4)).decode("ascii")


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result()
    return {name: entry.value for name, entry in configs.items()}


@pytest.fixture(params=["idempotent", "fenced"])
def opener(
    request: pytest.FixtureRequest, kafka_bootstrap: str, topic_name: str
) -> Iterator[Opener]:
    """Opens stores on one fresh topic; ``fenced`` ones write through transactions."""
    opened: list[KafkaStore] = []

    def open_store(**overrides: object) -> KafkaStore:
        settings = KafkaStoreSettings(
            bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS
        )
        store = KafkaStore(settings, **overrides)
        opened.append(store)
        if request.param == "fenced":
            store.own_partitions(transactional_id_prefix=f"t-{uuid.uuid4().hex[:8]}")
            store.claim(range(store.partition_count))
        return store

    yield open_store
    for store in opened:
        store.close()
    delete_topics(kafka_bootstrap, topic_name)


def put(store: KafkaStore, key: str, note: str, seq: int = 1) -> None:
    store.put(key, seq, "act", EVENT, state_of(note))


def test_a_created_topic_takes_records_up_to_max_record_bytes(
    opener: Opener, kafka_bootstrap: str, topic_name: str
) -> None:
    opener()
    config = topic_config(kafka_bootstrap, topic_name)
    assert int(config["max.message.bytes"]) >= 8 * MiB
    assert config["cleanup.policy"] == "compact"


def test_a_2_mb_record_round_trips(opener: Opener) -> None:
    store = opener()
    big = noise(2 * MiB)
    put(store, "big", big)
    put(store, "small", "x")
    fresh = opener()
    fresh.rebuild()
    found = fresh.get("big", 1, "act", EVENT)
    assert found is not None
    assert found.short_term_memory_updates[0].value == big
    assert fresh.get("small", 1, "act", EVENT) is not None


def test_a_record_above_the_producer_limit_names_it_and_the_store_goes_on(
    opener: Opener,
) -> None:
    store = opener()
    with pytest.raises(RecordTooLargeError) as caught:
        put(store, "huge", "a" * (12 * MiB))  # compressible: librdkafka checks before
    error = caught.value
    assert isinstance(error, StoreWriteError)
    assert error.limit == 8 * MiB
    assert error.size > 12 * MiB
    assert error.retriable is False
    message = str(error)
    assert str(8 * MiB) in message
    assert "max_record_bytes" in message
    assert "ACTIONSTATE_MAX_RECORD_BYTES" in message
    assert "nothing was stored" in message
    # Nothing else breaks: the next writes are acknowledged and read back.
    put(store, "after", "fine")
    put(store, "huge", "small now")
    fresh = opener()
    fresh.rebuild()
    assert fresh.get("after", 1, "act", EVENT) is not None
    found = fresh.get("huge", 1, "act", EVENT)
    assert found is not None
    assert found.short_term_memory_updates[0].value == "small now"


def test_a_record_above_the_topic_limit_names_the_topics_limit(
    opener: Opener, kafka_bootstrap: str, topic_name: str
) -> None:
    # A topic made elsewhere with Kafka's 1 MiB default, the producer allowing 8 MiB.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    config = {"cleanup.policy": "compact", "max.message.bytes": str(MiB)}
    admin.create_topics([NewTopic(topic_name, PARTITIONS, 1, config=config)])[topic_name].result()
    store = opener()
    with pytest.raises(RecordTooLargeError) as caught:
        put(store, "k", noise(2 * MiB))
    error = caught.value
    assert error.limit == MiB
    message = str(error)
    assert f"max.message.bytes={MiB}" in message
    assert topic_name in message
    assert "kafka-configs --alter" in message
    put(store, "k", "small", seq=2)
    put(store, "other", "fine")
    fresh = opener()
    fresh.rebuild()
    assert fresh.get("k", 2, "act", EVENT) is not None
    assert fresh.get("other", 1, "act", EVENT) is not None


def test_max_record_bytes_and_compression_reach_the_producer() -> None:
    conn = KafkaConnection(bootstrap_servers="127.0.0.1:1")
    producer = conn.kafka_config("producer")
    assert producer["compression.type"] == "lz4"
    assert producer["message.max.bytes"] == 8 * MiB
    conn = KafkaConnection(
        bootstrap_servers="127.0.0.1:1", compression="zstd", max_record_bytes=2 * MiB
    )
    producer = conn.kafka_config("producer")
    assert producer["compression.type"] == "zstd"
    assert producer["message.max.bytes"] == 2 * MiB
    assert "compression.type" not in conn.kafka_config("consumer")
    # An explicit librdkafka property still wins, as every passthrough does.
    conn = KafkaConnection(
        bootstrap_servers="127.0.0.1:1", producer_config={"compression.type": "gzip"}
    )
    assert conn.kafka_config("producer")["compression.type"] == "gzip"


def test_bad_size_and_compression_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="compression"):
        KafkaConnection(bootstrap_servers="x:1", compression="brotli")
    with pytest.raises(ValueError, match="max_record_bytes"):
        KafkaConnection(bootstrap_servers="x:1", max_record_bytes=10)


@pytest.mark.parametrize("fenced", [False, True], ids=["idempotent", "fenced"])
def test_only_the_refused_record_of_a_batch_fails(
    fenced: bool, kafka_bootstrap: str, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    config = {"cleanup.policy": "compact", "max.message.bytes": str(MiB)}
    admin.create_topics([NewTopic(topic_name, 1, 1, config=config)])[topic_name].result()
    conn = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    writer: KafkaWriter | TransactionalWriter
    if fenced:
        writer = TransactionalWriter(conn, topic_name, id_prefix=f"t-{uuid.uuid4().hex[:8]}")
        writer.claim([0])
    else:
        writer = KafkaWriter(conn, topic_name)
    try:
        records: list[tuple[str, bytes | None, HeaderList]] = [
            ("a", b"small", []),
            ("b", noise(2 * MiB).encode(), []),
            ("c", b"small", []),
            ("d", b"x" * (9 * MiB), []),  # above the producer's own limit
        ]
        results = dict(writer.write_all(0, records))
        assert results["a"] is None
        assert results["c"] is None
        assert isinstance(results["b"], RecordTooLargeError)
        assert results["b"].limit == MiB
        assert isinstance(results["d"], RecordTooLargeError)
        assert results["d"].limit == 8 * MiB
        assert writer.write(0, "e", b"after", []) >= 0
    finally:
        writer.close()
        delete_topics(kafka_bootstrap, topic_name)
