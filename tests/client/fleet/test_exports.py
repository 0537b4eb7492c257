"""The public names of actionstate.client.fleet."""

from __future__ import annotations

import actionstate.client.fleet as fleet
from tests._support import check_exports

PUBLIC = {
    "Fencing", "FleetLoop", "FleetMetrics", "FleetSettings", "OffsetTracker",
    "RequestSender", "SenderSettings", "SentRequest",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(fleet, PUBLIC)


def test_the_sender_settings_are_a_connection() -> None:
    from actionstate.client.kafka import KafkaConnection

    assert issubclass(fleet.SenderSettings, KafkaConnection)
