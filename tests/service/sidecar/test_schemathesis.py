"""Property-based API test with schemathesis: requests generated from /openapi.json, valid
and invalid, never get a 5xx, and every answer matches the document (status codes,
content types, response schemas). Generation is derandomized: the same requests every run.

(schemathesis' pytest fixture loader does not run on pytest 9, so the operations are
driven here with their hypothesis strategies.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from actionstate.service import SidecarServer, SidecarSettings
from tests._support.kafka import delete_topics


@pytest.fixture(scope="module")
def sidecar_url(kafka_bootstrap: str) -> Iterator[str]:
    topic = f"test-schemathesis-{uuid.uuid4().hex[:12]}"
    server = SidecarServer(
        SidecarSettings(bootstrap_servers=kafka_bootstrap, topic=topic, partitions=4, port=0)
    )
    url = server.start()
    assert server.sidecar.follower.wait_ready(30)
    try:
        yield url
    finally:
        server.stop()
        delete_topics(kafka_bootstrap, topic)


def checks_config() -> schemathesis.Config:
    """schemathesis' defaults, plus the HTTP layer's refusals (SidecarHttpProtocol): a URL
    too long (414) and headers too large (431) are rejections too, and a URL's length in
    bytes depends on how its characters encode, which no maxLength of the document bounds."""
    config = schemathesis.Config()
    checks = config.projects.default.checks
    rejected = checks.negative_data_rejection
    rejected.expected_statuses = [*rejected.expected_statuses, "414", "431"]
    accepted = checks.positive_data_acceptance
    accepted.expected_statuses = [*accepted.expected_statuses, "414"]
    return config


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_never_get_a_server_error(
    sidecar_url: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{sidecar_url}/openapi.json", config=checks_config())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:
        takes_input = any(True for _ in operation.iter_parameters()) or bool(
            operation.get_request_payload_content_types()
        )
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to make invalid (/healthz, /metrics, ...)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=sidecar_url)

        check()
