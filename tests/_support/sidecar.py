"""Shared pieces of the sidecar tests (a module name of its own: ``conftest`` is ambiguous
when several test folders have one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from actionstate.service import SidecarServer

SIDECAR_PARTITIONS = 4


@dataclass
class RunningSidecar:
    """A started sidecar: its server object, base URL and an HTTP client for it."""

    server: SidecarServer
    url: str
    http: httpx.Client
    topic: str
    bootstrap: str


StartSidecar = Callable[..., RunningSidecar]
