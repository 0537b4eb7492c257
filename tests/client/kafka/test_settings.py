"""One connection-settings object: every settings class the project has builds on it."""

from __future__ import annotations

import pytest

from actionstate.client import KafkaStoreSettings
from actionstate.client.kafka import KafkaConnection
from actionstate.service import SidecarSettings


def test_connection_values_carry_security_and_passthrough() -> None:
    conn = KafkaConnection(
        bootstrap_servers="b:1",
        sasl_username="u",
        sasl_password="p",
        security_protocol="SASL_SSL",
        client_config={"client.id": "x"},
        timeout_s=4,
    )
    store = KafkaStoreSettings(**conn.connection_values(), topic="t")
    assert store.kafka_config("admin") == conn.kafka_config("admin")
    assert store.timeout_s == 4


def test_the_sidecar_takes_sasl_by_argument() -> None:
    sidecar = SidecarSettings(
        bootstrap_servers="b:1",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="p",
        timeout_s=7,
    )
    config = sidecar.store_settings("b:2", 3).kafka_config("producer")
    assert config["bootstrap.servers"] == "b:2"
    assert (config["sasl.username"], config["sasl.password"]) == ("u", "p")
    assert config["message.timeout.ms"] == 7000


def test_a_consumer_group_names_its_purpose() -> None:
    config = KafkaConnection().kafka_config("consumer", purpose="inspect")
    assert str(config["group.id"]).startswith("actionstate-inspect-")
    assert config["enable.partition.eof"] is True


def test_a_property_librdkafka_refuses_is_a_kafka_config_error_naming_it() -> None:
    from actionstate.client import KafkaConfigError, KafkaStore

    with pytest.raises(KafkaConfigError, match=r"bogus\.prop"):
        KafkaStore(bootstrap_servers="127.0.0.1:1", topic="t", client_config={"bogus.prop": "1"})


def test_client_config_reaches_only_the_clients_a_property_is_for() -> None:
    conn = KafkaConnection(
        client_config={"session.timeout.ms": 6000, "compression.type": "lz4", "client.id": "x"}
    )
    producer, consumer, admin = (conn.kafka_config(r) for r in ("producer", "consumer", "admin"))
    assert "session.timeout.ms" not in producer
    assert producer["compression.type"] == "lz4"
    assert consumer["session.timeout.ms"] == 6000
    assert "compression.type" not in consumer
    assert "session.timeout.ms" not in admin
    assert "compression.type" not in admin
    assert producer["client.id"] == consumer["client.id"] == admin["client.id"] == "x"
