"""compose.yaml and the Dockerfile cannot run here (no Docker engine): check their shape.

(``docker compose config`` is the real check where the compose plugin is installed.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from actionstate.service import SidecarSettings
from actionstate.service.cli import build_app

ROOT = Path(__file__).resolve().parents[3]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_kafka_and_the_sidecar_with_healthchecks() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "sidecar"}
    kafka, sidecar = services["kafka"], services["sidecar"]

    assert kafka["image"].startswith("apache/kafka:4.")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])

    assert sidecar["build"]["context"] == "."
    assert (ROOT / sidecar["build"]["dockerfile"]).is_file()
    assert sidecar["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert sidecar["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "/readyz" in " ".join(sidecar["healthcheck"]["test"])


def test_published_ports_stay_on_loopback_and_the_sidecar_needs_a_token() -> None:
    services = compose()["services"]
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    env = services["sidecar"]["environment"]
    assert env["ACTIONSTATE_HOST"] == "0.0.0.0"
    # ${VAR:?message} makes compose refuse to start without a token
    assert re.fullmatch(r"\$\{ACTIONSTATE_TOKEN:\?.+\}", env["ACTIONSTATE_TOKEN"])
    # and the sidecar itself would refuse that bind without one
    settings = SidecarSettings(host=env["ACTIONSTATE_HOST"], token="x")
    assert settings.token_value == "x"


def test_compose_environment_names_are_settings_the_sidecar_reads() -> None:
    env = compose()["services"]["sidecar"]["environment"]
    fields = {f"ACTIONSTATE_{name.upper()}" for name in SidecarSettings.model_fields}
    for name in env:
        assert name in fields or name == "KAFKA_BOOTSTRAP_SERVERS", name


def test_the_dockerfile_runs_serve() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.MULTILINE)
    for folder in ("serde", "client", "service"):
        assert f"COPY {folder} ./{folder}" in text
        assert (ROOT / folder).is_dir()
    assert 'ENTRYPOINT ["actionstate"]' in text
    assert 'CMD ["serve"]' in text
    assert "HEALTHCHECK" in text
    assert "/readyz" in text
    assert "USER actionstate" in text
    assert "serve" in {c.name for c in build_app().registered_commands}
