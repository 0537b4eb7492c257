"""Sidecar fixtures: a real sidecar (uvicorn on a thread, free port) over a fresh topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from actionstate.service import SidecarServer, SidecarSettings
from tests._support.kafka import delete_topics
from tests._support.sidecar import SIDECAR_PARTITIONS, RunningSidecar, StartSidecar


@pytest.fixture
def start_sidecar(kafka_bootstrap: str, topic_name: str) -> Iterator[StartSidecar]:
    """Starts sidecars on the test's topic (keyword arguments go to ``SidecarSettings``);
    stops them and deletes the topic afterwards."""
    started: list[RunningSidecar] = []

    def start(**overrides: Any) -> RunningSidecar:
        settings: dict[str, Any] = {
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic_name,
            "partitions": SIDECAR_PARTITIONS,
            "port": 0,
            **overrides,
        }
        server = SidecarServer(SidecarSettings(**settings))
        url = server.start()
        token = server.settings.token_value
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        running = RunningSidecar(
            server, url, httpx.Client(base_url=url, headers=headers), topic_name, kafka_bootstrap
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.http.close()
        running.server.stop()
    delete_topics(kafka_bootstrap, topic_name)


@pytest.fixture
def sidecar(start_sidecar: StartSidecar) -> RunningSidecar:
    """A ready sidecar on a fresh 4-partition topic."""
    running = start_sidecar()
    assert running.server.sidecar.follower.wait_ready(30)
    return running
