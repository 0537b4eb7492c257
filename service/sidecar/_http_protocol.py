"""The sidecar's HTTP/1.1 protocol: uvicorn's httptools protocol, with limits on the
request head and the API's JSON error shape for requests refused before the app sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from actionstate.service._errors import ServiceError
from actionstate.service.sidecar._http import error_response

__all__ = ["MAX_HEADER_BYTES", "MAX_URL_BYTES", "SidecarHttpProtocol"]

MAX_URL_BYTES = 65_535
"""The longest request target (path and query) served: httptools parses none longer."""
MAX_HEADER_BYTES = 1024 * 1024
"""The most header bytes (names and values) a request may carry."""


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    detail: str


_NOT_HTTP = _Refusal(
    400, "bad_request", "the request is not valid HTTP/1.1: check its request line and headers"
)
_URL_TOO_LONG = _Refusal(
    414,
    "uri_too_long",
    f"the request's URL is longer than {MAX_URL_BYTES} bytes: shorten its query parameters "
    "(list states a page at a time, snapshot fewer partitions per request)",
)
_HEADERS_TOO_LARGE = _Refusal(
    431, "headers_too_large", f"the request's headers hold more than {MAX_HEADER_BYTES} bytes"
)


class SidecarHttpProtocol(HttpToolsProtocol):
    """Refuses a URL over :data:`MAX_URL_BYTES` (414) and headers over
    :data:`MAX_HEADER_BYTES` (431), and answers every request it cannot parse with the
    API's ``{"error", "detail"}`` JSON instead of uvicorn's text/plain 400."""

    _refusal: _Refusal | None = None
    _header_bytes = 0
    client_errors: ClassVar[Counter | None] = None
    """Where refusals are counted, by status (set by :meth:`counting_into`)."""

    @classmethod
    def counting_into(cls, counter: Counter) -> type[SidecarHttpProtocol]:
        """This protocol, counting its refusals in ``counter`` (one sidecar's metric)."""
        return type(cls.__name__, (cls,), {"client_errors": counter})

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal = None
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        if self._refusal is not None:
            return
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refusal = _URL_TOO_LONG
        else:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._refusal is None and self._header_bytes > MAX_HEADER_BYTES:
            self._refusal = _HEADERS_TOO_LARGE
        if self._refusal is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # Refused only once the whole head is read: closing on unread bytes would reset
        # the connection before the client reads the answer.
        if self._refusal is not None:
            raise ServiceError(self._refusal.detail)  # a parser error: send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        refusal = self._refusal or _NOT_HTTP
        if self.client_errors is not None:
            self.client_errors.labels(str(refusal.status)).inc()
        response = error_response(refusal.status, refusal.code, refusal.detail)
        head = [STATUS_LINE[refusal.status]]
        for name, value in [
            *self.server_state.default_headers,
            *response.raw_headers,
            (b"connection", b"close"),
        ]:
            head += [name, b": ", value, b"\r\n"]
        self.transport.write(b"".join([*head, b"\r\n", response.body]))
        self.transport.close()
