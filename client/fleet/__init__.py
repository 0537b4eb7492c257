"""The worker fleet: worker processes sharing a requests topic through a consumer group,
each owning (and fencing) the state partitions of its request partitions."""

from actionstate.client.fleet._loop import FleetLoop
from actionstate.client.fleet._metrics import FleetMetrics
from actionstate.client.fleet._offsets import OffsetTracker
from actionstate.client.fleet._sender import RequestSender, SenderSettings, SentRequest
from actionstate.client.fleet._settings import Fencing, FleetSettings

__all__ = [
    "Fencing",
    "FleetLoop",
    "FleetMetrics",
    "FleetSettings",
    "OffsetTracker",
    "RequestSender",
    "SenderSettings",
    "SentRequest",
]
