"""The sidecar service, the command line, and the local Kafka launcher."""

from ._server import SidecarServer
from ._settings import SidecarSettings

__all__ = ["SidecarServer", "SidecarSettings"]
