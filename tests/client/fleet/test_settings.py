"""The fleet's settings: arguments, then ACTIONSTATE_* from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from actionstate.client.fleet import FleetSettings
from actionstate.client.kafka import KafkaConnection


def test_defaults_and_the_dead_letter_topic_name() -> None:
    s = FleetSettings(requests="orders-requests", group="payments")
    assert (s.max_in_flight, s.fencing, s.grace_s) == (64, "transactions", 10.0)
    assert s.dead_letters == "orders-requests.dead-letter"
    assert FleetSettings(requests="r", group="g", dead_letter_topic="dlq").dead_letters == "dlq"


def test_the_environment_fills_what_arguments_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONSTATE_REQUESTS", "from-env")
    monkeypatch.setenv("ACTIONSTATE_GROUP", "g")
    monkeypatch.setenv("ACTIONSTATE_FENCING", "none")
    s = FleetSettings(max_in_flight=3)
    assert (s.requests, s.group, s.fencing, s.max_in_flight) == ("from-env", "g", "none", 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_in_flight", 0),
        ("fencing", "maybe"),
        ("grace_s", 0),
        ("requests", "bad topic"),
        ("group", ""),
        ("dead_letter_topic", "r"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        FleetSettings(**{"requests": "r", "group": "g", field: value})


def test_client_config_goes_over_the_store_connection_with_its_rules() -> None:
    base = KafkaConnection(bootstrap_servers="b:1", client_config={"client.id": "x"})
    s = FleetSettings(requests="r", group="g", client_config={"session.timeout.ms": 6000})
    conn = s.connection(base)
    assert conn.client_config == {"client.id": "x", "session.timeout.ms": 6000}
    assert conn.bootstrap_servers == "b:1"
    assert FleetSettings(requests="r", group="g").connection(base) is base
    with pytest.raises(ValidationError, match=r"group\.id"):
        FleetSettings(requests="r", group="g", client_config={"group.id": "other"})
