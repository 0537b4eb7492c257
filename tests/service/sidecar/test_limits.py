"""Requests the HTTP layer refuses before the app sees them (a URL too long, headers too
large, bytes that are not HTTP) still get the API's JSON error shape, as documented."""

from __future__ import annotations

import http.client
import socket
from typing import Any

import orjson
import pytest

from actionstate.service.sidecar._http_protocol import MAX_HEADER_BYTES, MAX_URL_BYTES
from tests._support import returns_within
from tests._support.sidecar import RunningSidecar

# Every operation can be refused at the HTTP layer.
_HTTP_LAYER_STATUSES = {"400", "414", "431"}


def raw_request(sc: RunningSidecar, head: bytes) -> tuple[int, str, Any]:
    """Sends ``head`` as is (httpx refuses URLs this long) and reads the whole answer:
    status, content type and body (parsed when it is JSON)."""
    host, port = sc.server.settings.host, int(sc.url.rsplit(":", 1)[1])

    def exchange() -> tuple[int, str, Any]:
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(head)
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            content_type, body = answer.getheader("content-type", ""), answer.read()
            shown = orjson.loads(body) if content_type == "application/json" else body
            return answer.status, content_type, shown

    return returns_within(60, exchange)


def get(path: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([b"GET " + path + b" HTTP/1.1", b"Host: x", b"Connection: close",
                         *headers, b"", b""])  # fmt: skip


def assert_error(answer: tuple[int, str, Any], status: int, code: str) -> str:
    got_status, content_type, body = answer
    assert (got_status, content_type) == (status, "application/json"), answer
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    return str(body["detail"])


def test_a_url_at_the_limit_reaches_the_app(sidecar: RunningSidecar) -> None:
    prefix = b"/v1/states?cursor="
    url = prefix + b"a" * (MAX_URL_BYTES - len(prefix))
    detail = assert_error(raw_request(sidecar, get(url)), 422, "invalid_request")
    assert "cursor" in detail


@pytest.mark.parametrize(
    "path",
    [b"/v1/states?cursor=", b"/v1/snapshot?starts=0:", b"/v1/states/"],
)
@pytest.mark.parametrize("excess", [1, 100_000, 2_000_000])
def test_a_url_over_the_limit_gets_a_json_414(
    sidecar: RunningSidecar, path: bytes, excess: int
) -> None:
    url = path + b"1" * (MAX_URL_BYTES - len(path) + excess)
    detail = assert_error(raw_request(sidecar, get(url)), 414, "uri_too_long")
    assert str(MAX_URL_BYTES) in detail


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Big: " + b"a" * MAX_HEADER_BYTES],
        [b"X-%d: %s" % (i, b"a" * 1000) for i in range(MAX_HEADER_BYTES // 1000 + 1)],
    ],
    ids=["one-large-header", "many-headers"],
)
def test_headers_over_the_limit_get_a_json_431(
    sidecar: RunningSidecar, headers: list[bytes]
) -> None:
    answer = raw_request(sidecar, get(b"/v1/status", *headers))
    detail = assert_error(answer, 431, "headers_too_large")
    assert str(MAX_HEADER_BYTES) in detail


def test_headers_under_the_limit_are_served(sidecar: RunningSidecar) -> None:
    status, _type, body = raw_request(sidecar, get(b"/v1/status", b"X-Big: " + b"a" * 100_000))
    assert status == 200
    assert body["topic"] == sidecar.topic


@pytest.mark.parametrize(
    "head",
    [b"\x00\x01 not http\r\n\r\n", b"GET /v1/status HTTP/1.1\r\nBad Header\r\n\r\n"],
    ids=["garbage", "header-without-colon"],
)
def test_a_request_that_is_not_http_gets_a_json_400(sidecar: RunningSidecar, head: bytes) -> None:
    assert_error(raw_request(sidecar, head), 400, "bad_request")


def test_the_document_lists_the_http_layer_refusals(sidecar: RunningSidecar) -> None:
    doc = sidecar.http.get("/openapi.json").json()
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            missing = _HTTP_LAYER_STATUSES - set(responses)
            assert not missing, f"{method.upper()} {path} does not document {missing}"
            for status in _HTTP_LAYER_STATUSES:
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}
