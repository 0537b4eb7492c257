"""The sidecar service, the command line, inspect, the demo, and the local Kafka launcher."""

from actionstate.service.sidecar import SidecarServer, SidecarSettings

__all__ = ["SidecarServer", "SidecarSettings"]
