"""What the Kafka store promises beyond the contract: real records, real broker failures."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from actionstate.client import (
    KafkaStore,
    KafkaStoreSettings,
    StoreWriteError,
    TopicConfigError,
)
from actionstate.serde import (
    HEADER_CODEC,
    HEADER_SCHEMA,
    HEADER_SIGNATURE,
    HEADER_WRITER,
    ActionState,
    Event,
    MemoryUpdate,
    action_uuid,
    encode_action_state,
    event_uuid,
    parse_state_key,
    partition_for,
    state_key,
)
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from tests._support import assert_eventually, returns_within
from tests._support.kafka import delete_topics, raw_producer, read_raw
from tests.client.conftest import PARTITIONS

EVENT = Event.input({"order": 42})


def state(note: str) -> ActionState:
    return ActionState(
        task_event=EVENT, short_term_memory_updates=[MemoryUpdate(path="note", value=note)]
    )


def note_of(found: ActionState | None) -> Any:
    assert found is not None
    return found.short_term_memory_updates[0].value


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result()
    return {name: entry.value for name, entry in configs.items()}


def create_topic(bootstrap: str, topic: str, partitions: int, policy: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, partitions, 1, config={"cleanup.policy": policy})
    admin.create_topics([new])[topic].result()


@pytest.fixture
def kafka(kafka_store_opener: Any) -> KafkaStore:
    store: KafkaStore = kafka_store_opener()
    return store


# -- the topic ---------------------------------------------------------------------------


def test_a_missing_topic_is_created_compacted(kafka: KafkaStore) -> None:
    bootstrap = kafka.settings.bootstrap_servers
    assert topic_config(bootstrap, kafka.topic)["cleanup.policy"] == "compact"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert len(admin.list_topics(topic=kafka.topic).topics[kafka.topic].partitions) == PARTITIONS


def test_a_topic_with_a_delete_policy_is_refused(kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, PARTITIONS, "delete")
    try:
        with pytest.raises(TopicConfigError, match=r"cleanup\.policy='delete'"):
            KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS)
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_a_topic_with_too_few_partitions_is_refused(kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, 2, "compact")
    try:
        with pytest.raises(TopicConfigError, match="has 2 partitions, fewer than the 4"):
            KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=4)
        # More partitions than configured is fine: the topic's own count routes records.
        with KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=1) as s:
            s.put("k", 1, "a", EVENT, state("x"))
        [record] = read_raw(kafka_bootstrap, topic_name)
        assert record.partition() == partition_for("k", 2)
    finally:
        delete_topics(kafka_bootstrap, topic_name)


def test_a_missing_topic_is_refused_when_creation_is_off(
    kafka_bootstrap: str, topic_name: str
) -> None:
    with pytest.raises(TopicConfigError, match="does not exist and create_topic is off"):
        KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, create_topic=False)


# -- records -----------------------------------------------------------------------------


def test_records_land_in_the_flink_agents_partition_with_headers(kafka: KafkaStore) -> None:
    keys = [f"agent-{n}" for n in range(20)]
    for key in keys:
        kafka.put(key, 1, "charge", EVENT, state(key))

    records = read_raw(kafka.settings.bootstrap_servers, kafka.topic)
    assert len(records) == len(keys)
    for record in records:
        raw_key = record.key()
        assert raw_key is not None
        parsed = parse_state_key(raw_key.decode())
        assert record.partition() == partition_for(parsed.agent_key, PARTITIONS)
        assert record.value() == encode_action_state(state(parsed.agent_key))
        headers = dict(record.headers() or [])
        assert headers[HEADER_CODEC] == b"cloudpickle"
        assert headers[HEADER_WRITER].startswith(b"kafka-actionstate")
        assert headers[HEADER_SCHEMA] == b"1"
        assert HEADER_SIGNATURE not in headers


def test_prune_writes_tombstones(kafka: KafkaStore) -> None:
    for seq in (1, 2, 3):
        kafka.put("k", seq, "a", EVENT, state(str(seq)))
    assert kafka.prune("k", 2) == 2

    records = read_raw(kafka.settings.bootstrap_servers, kafka.topic)
    tombstones = [r for r in records if r.value() is None]
    assert len(tombstones) == 2
    pruned = set()
    for record in tombstones:
        raw_key = record.key()
        assert raw_key is not None
        pruned.add(parse_state_key(raw_key.decode()).seq)
    assert pruned == {1, 2}


# -- rebuild -----------------------------------------------------------------------------


def test_rebuild_stops_at_the_watermark_while_writes_race(kafka_store_opener: Any) -> None:
    writer: KafkaStore = kafka_store_opener()
    for n in range(500):
        writer.put(f"agent-{n}", 1, "a", EVENT, state(str(n)))
    producer = raw_producer(writer.settings.bootstrap_servers)
    stop = threading.Event()
    raced = [0]

    def race() -> None:
        value = encode_action_state(state("racing"))
        skey = str(writer.states()[0][0])
        while not stop.is_set():
            for p in range(PARTITIONS):
                producer.produce(writer.topic, value, key=skey, partition=p)
            raced[0] += PARTITIONS
            producer.poll(0.001)

    racer = threading.Thread(target=race)
    racer.start()
    try:
        assert_eventually(lambda: _at_least(raced[0], 1000))
        reader: KafkaStore = kafka_store_opener()
        before = sum(reader.recovery_marker().values())
        report = reader.rebuild()
        after = sum(reader.recovery_marker().values())
    finally:
        stop.set()
        racer.join()
        producer.flush(10)
    assert before <= report.records_read <= after
    assert before > 500
    assert len(reader.states()) == 500


def _at_least(value: int, minimum: int) -> None:
    assert value >= minimum


def _sums_to(marker: dict[int, int], total: int) -> None:
    assert sum(marker.values()) == total


def test_rebuild_returns_across_transaction_marker_gaps(kafka: KafkaStore) -> None:
    # Commit markers take offsets no consumer sees: the last offset of each partition is a
    # gap, so "read until the record at end-1 arrives" alone would never finish.
    producer = Producer(
        {
            "bootstrap.servers": kafka.settings.bootstrap_servers,
            "transactional.id": str(uuid.uuid4()),
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(40):
        agent = f"agent-{n}"
        skey = state_key(agent, 1, event_uuid(EVENT.attributes), action_uuid("a"))
        value = encode_action_state(state(str(n)))
        producer.produce(kafka.topic, value, key=skey, partition=partition_for(agent, PARTITIONS))
    producer.commit_transaction(30)
    # The coordinator writes the commit markers just after the commit returns.
    assert_eventually(lambda: _sums_to(kafka.recovery_marker(), 40 + PARTITIONS))

    report = kafka.rebuild()
    assert report.records_read == 40
    assert report.states_live == 40
    assert report.bad_records == 0
    assert note_of(kafka.get("agent-7", 1, "a", EVENT)) == "7"


BAD_BASE64_STATE = (
    b'{"taskEvent":null,"callResults":[{"functionId":"f","argsDigest":"d",'
    b'"resultPayload":"not base64!","exceptionPayload":null,"status":"SUCCEEDED"}],'
    b'"completed":false}'
)


def test_garbage_among_good_records_is_skipped_and_counted(
    kafka_store_opener: Any, caplog: pytest.LogCaptureFixture
) -> None:
    writer: KafkaStore = kafka_store_opener()
    for n in range(2000):
        writer.put(f"agent-{n}", n % 5, "a", EVENT, state(str(n)))
    good_keys = [str(key) for key, _ in writer.states()]
    producer = raw_producer(writer.settings.bootstrap_servers)
    secret_text = b"PAYLOAD-CONTENTS-MUST-NOT-BE-LOGGED"
    for n in range(1000):
        if n < 400:  # keys Java could not parse
            key, value = f"garbage-{n}".encode(), b"{}"
        elif n < 800:  # well-formed new keys, values that are not action states
            key = f"junk-{n}_1_{uuid.uuid4()}_{uuid.uuid4()}".encode()
            value = secret_text + b"\xff" * (n % 7)
        elif n < 900:  # garbage over a good state, in its partition: the good state survives
            key, value = good_keys[n].encode(), b'{"completed": "yes"}'
        else:  # right shape, wrong inside (bad base64): refused at rebuild, not when read
            key, value = good_keys[n].encode(), BAD_BASE64_STATE
        agent = key.decode().split("_")[0]
        producer.produce(writer.topic, value, key=key, partition=partition_for(agent, PARTITIONS))
    assert producer.flush(30) == 0

    reader: KafkaStore = kafka_store_opener()
    with caplog.at_level(logging.WARNING, logger="actionstate.client"):
        report = reader.rebuild()

    assert report.bad_records == 1000
    assert report.states_live == 2000
    assert {bad.reason for bad in report.bad_samples} == {"key", "value"}
    assert all(bad.topic == writer.topic and bad.offset >= 0 for bad in report.bad_samples)
    for n in range(2000):
        assert note_of(reader.get(f"agent-{n}", n % 5, "a", EVENT)) == str(n)
    assert "offset=" in caplog.text
    assert secret_text.decode() not in caplog.text
    assert len(reader.states()) == 2000  # every state in the view decodes


def test_a_tampered_signed_record_is_refused(kafka_store_opener: Any) -> None:
    writer: KafkaStore = kafka_store_opener(signing_secret="s3cret")
    writer.put("k", 1, "a", EVENT, state("genuine"))
    [record] = read_raw(writer.settings.bootstrap_servers, writer.topic)
    original = record.value()
    assert original is not None
    tampered = original.replace(b"genuine", b"tampered")
    producer = raw_producer(writer.settings.bootstrap_servers)
    producer.produce(
        writer.topic,
        tampered,
        key=record.key(),
        partition=record.partition() or 0,
        headers=record.headers(),
    )
    assert producer.flush(30) == 0

    reader: KafkaStore = kafka_store_opener(signing_secret="s3cret")
    report = reader.rebuild()
    assert report.bad_records == 1
    assert report.bad_samples[0].reason == "signature"
    assert note_of(reader.get("k", 1, "a", EVENT)) == "genuine"


# -- broker failures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_kafka(broker_dirs: Callable[[str], Path]) -> Iterator[LocalKafka]:
    """A broker of this module's own, which its tests stop and start."""
    folder = broker_dirs("private-kafka")
    kafka = LocalKafka(LocalKafkaSettings(dir=folder, heap="384m"))
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def _bootstrap(kafka: LocalKafka) -> str:
    return kafka.status().bootstrap or kafka.start()


HANG_GUARD_S = 90  # far above the 3 s write timeout; librdkafka's own default is 300 s


def test_writes_to_a_broker_gone_away_fail_within_the_timeout(private_kafka: LocalKafka) -> None:
    topic = f"unreachable-{uuid.uuid4().hex[:8]}"
    store = KafkaStore(
        bootstrap_servers=_bootstrap(private_kafka), topic=topic, partitions=1, timeout_s=3
    )
    assert store.settings.kafka_config("producer")["message.timeout.ms"] == 3000
    try:
        store.put("k", 1, "a", EVENT, state("before"))
        private_kafka.stop()
        errors: list[BaseException] = []

        def put() -> None:
            with pytest.raises(StoreWriteError) as caught:
                store.put("k", 2, "a", EVENT, state("lost"))
            errors.append(caught.value)

        def aput() -> None:
            with pytest.raises(StoreWriteError) as caught:
                asyncio.run(store.aput("k", 3, "a", EVENT, state("lost too")))
            errors.append(caught.value)

        returns_within(HANG_GUARD_S, put)
        returns_within(HANG_GUARD_S, aput)
        for error, seq in zip(errors, (2, 3), strict=True):
            assert isinstance(error, StoreWriteError)
            assert error.topic == topic
            assert error.key.startswith(f"k_{seq}_")
            assert error.cause
            assert "within timeout_s=3s" in str(error)
            assert topic in str(error)
            assert error.key in str(error)
            assert error.cause in str(error)
        # The view only holds what was acknowledged.
        assert store.get("k", 1, "a", EVENT) is not None
        assert store.get("k", 2, "a", EVENT) is None
        assert store.get("k", 3, "a", EVENT) is None
    finally:
        private_kafka.start()
        store.close()


@pytest.mark.parametrize("name", ["message.timeout.ms", "delivery.timeout.ms"])
def test_the_write_timeout_is_timeout_s_only(name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}' cannot be overridden: use timeout_s"):
        KafkaStoreSettings(topic="t", producer_config={name: 1000})
    config = KafkaStoreSettings(topic="t").kafka_config("producer")
    assert config["message.timeout.ms"] == 30_000


def test_a_broker_restart_never_loses_an_acknowledged_put(private_kafka: LocalKafka) -> None:
    settings = KafkaStoreSettings(
        bootstrap_servers=_bootstrap(private_kafka),
        topic=f"restart-{uuid.uuid4().hex[:8]}",
        partitions=2,
        timeout_s=120,
    )
    store = KafkaStore(settings)
    acknowledged: list[int] = []
    failed: list[int] = []
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            try:
                store.put(f"agent-{n % 50}", n, "a", EVENT, state(str(n)))
                acknowledged.append(n)
            except StoreWriteError:
                failed.append(n)
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert_eventually(lambda: _at_least(len(acknowledged), 200), timeout=60)
        private_kafka.stop()
        before_restart = len(acknowledged)
        private_kafka.start()
        assert_eventually(lambda: _at_least(len(acknowledged), before_restart + 200), timeout=120)
    finally:
        stop.set()
        writer.join()
        store.close()

    with KafkaStore(settings) as reader:
        reader.rebuild()
        for n in acknowledged:
            assert note_of(reader.get(f"agent-{n % 50}", n, "a", EVENT)) == str(n)
    assert len(acknowledged) + len(failed) > before_restart + 200


# -- settings ----------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("ACTIONSTATE_TOPIC", "orders-state")
    monkeypatch.setenv("ACTIONSTATE_PARTITIONS", "8")
    monkeypatch.setenv("ACTIONSTATE_SASL_PASSWORD", "pw")
    monkeypatch.setenv(
        "ACTIONSTATE_CLIENT_CONFIG", '{"ssl.endpoint.identification.algorithm": "none"}'
    )
    settings = KafkaStoreSettings()
    assert (settings.bootstrap_servers, settings.topic, settings.partitions) == (
        "kafka-1:9092",
        "orders-state",
        8,
    )
    monkeypatch.setenv("ACTIONSTATE_BOOTSTRAP_SERVERS", "kafka-2:9092")
    assert KafkaStoreSettings().bootstrap_servers == "kafka-2:9092"
    assert "pw" not in repr(settings)


def test_security_settings_reach_every_client() -> None:
    settings = KafkaStoreSettings(
        topic="t",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="user",
        sasl_password="pw",
        ssl_ca_location="/etc/ca.pem",
        client_config={"ssl.endpoint.identification.algorithm": "none"},
        producer_config={"linger.ms": 2},
        consumer_config={"fetch.wait.max.ms": 5},
    )
    for role in ("producer", "consumer", "admin"):
        config = settings.kafka_config(role)
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert config["sasl.username"] == "user"
        assert config["sasl.password"] == "pw"
        assert config["ssl.ca.location"] == "/etc/ca.pem"
        assert config["ssl.endpoint.identification.algorithm"] == "none"
    producer = settings.kafka_config("producer")
    assert (producer["acks"], producer["enable.idempotence"], producer["linger.ms"]) == (
        "all",
        True,
        2,
    )
    assert settings.kafka_config("consumer")["fetch.wait.max.ms"] == 5


@pytest.mark.parametrize("reserved", ["acks", "enable.idempotence", "bootstrap.servers"])
def test_settings_the_guarantees_rest_on_cannot_be_overridden(reserved: str) -> None:
    with pytest.raises(ValueError, match=f"'{reserved}' cannot be overridden"):
        KafkaStoreSettings(topic="t", producer_config={reserved: "1"})


def test_overrides_win_over_settings(kafka_settings: KafkaStoreSettings) -> None:
    with KafkaStore(kafka_settings, topic=f"{kafka_settings.topic}-b") as store:
        assert store.topic == f"{kafka_settings.topic}-b"
        assert store.settings.bootstrap_servers == kafka_settings.bootstrap_servers
    delete_topics(kafka_settings.bootstrap_servers, f"{kafka_settings.topic}-b")
