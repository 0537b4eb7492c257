"""The sidecar (``actionstate serve``): its settings, the runtime that starts the journal,
view and follower together, the HTTP app, and the server that runs them."""

from actionstate.service.sidecar._server import SidecarServer
from actionstate.service.sidecar._settings import SidecarSettings

__all__ = ["SidecarServer", "SidecarSettings"]
