"""One connection-settings object: every settings class the project has builds on it."""

from __future__ import annotations

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
