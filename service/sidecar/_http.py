"""HTTP plumbing of the sidecar: JSON answers, error handlers, bearer auth, OpenAPI document.

Every answer other than 2xx is ``{"error": code, "detail": message}``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actionstate.client import RecordTooLargeError, StoreReadError, StoreWriteError
from actionstate.service.sidecar._api import RECORD_SCHEMAS, ApiError

__all__ = [
    "HEADER_LIMIT",
    "HEADER_SIZE",
    "BearerAuth",
    "BodyLimit",
    "CountClientErrors",
    "error_response",
    "install_error_handlers",
    "json_response",
    "openapi_builder",
    "too_large_response",
]

_log = logging.getLogger("actionstate.service.app")
_JSON = "application/json"
HEADER_LIMIT = "ActionState-Limit"
"""On a 413: the limit the body or record broke, in bytes (0: the broker did not say)."""
HEADER_SIZE = "ActionState-Size"
"""On a 413: the size of the body or record, in bytes (0: not known)."""


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as JSON (orjson; ``orjson.Fragment`` embeds stored JSON as is)."""
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def error_response(status: int, code: str, detail: str) -> Response:
    """The error answer every route and handler gives."""
    return json_response({"error": code, "detail": detail}, status)


class BearerAuth:
    """Refuses every request without ``Authorization: Bearer <token>`` (pure ASGI)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected):
            response = error_response(
                401, "unauthorized", "send the sidecar's token as 'Authorization: Bearer <token>'"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def too_large_response(code: str, detail: str, *, limit: int, size: int) -> Response:
    """A 413 error answer, with the limit and the size also in headers for clients."""
    response = error_response(413, code, detail)
    response.headers[HEADER_LIMIT] = str(limit)
    response.headers[HEADER_SIZE] = str(size)
    return response


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with a 413 (pure ASGI): at once when its
    Content-Length says so, else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self, size: str) -> str:
        return (
            f"the request body is {size} bytes, over the sidecar's limit of {self.max_bytes} "
            "bytes (max_body_bytes, ACTIONSTATE_MAX_BODY_BYTES): a record this large cannot "
            "be stored; make it smaller (fewer durable calls per action, smaller results)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                size = int(value)
                answer = too_large_response(
                    "body_too_large", self._detail(str(size)), limit=limit, size=size
                )
                await answer(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes FastAPI's body parsing unchanged.
                    raise HTTPException(
                        413,
                        self._detail(f"more than {limit}"),
                        headers={HEADER_LIMIT: str(limit), HEADER_SIZE: "0"},
                    )
            return message

        await self.app(scope, counted, send)


class CountClientErrors:
    """Counts every 4xx answer the app sends, by status (pure ASGI)."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if 400 <= status < 500:
                    self.counter.labels(str(status)).inc()
            await send(message)

        await self.app(scope, receive, counting)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def install_error_handlers(app: FastAPI) -> None:
    """Turn every exception into an error answer: bad input 4xx, broker trouble 503, a
    record too large for Kafka 413 (a retry cannot help)."""

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail)

    async def validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            detail = f"the body is not JSON: {_validation_message(exc)}"
            return error_response(400, "malformed_json", detail)
        return error_response(422, "invalid_request", _validation_message(exc))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def too_large(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RecordTooLargeError)
        limit = f"{exc.limit} bytes" if exc.limit else "not named by the broker"
        size = f"{exc.size} bytes" if exc.size else "unknown"
        detail = f"{exc} (limit: {limit}; record: {size}; retrying cannot succeed)"
        return too_large_response("record_too_large", detail, limit=exc.limit, size=exc.size)

    async def unavailable(_request: Request, exc: Exception) -> Response:
        code = "write_failed" if isinstance(exc, StoreWriteError) else "unavailable"
        return error_response(503, code, f"{exc} (the request may be retried)")

    async def unexpected(_request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error answering a request")
        detail = f"unexpected {type(exc).__name__}; see the sidecar's log"
        return error_response(500, "internal_error", detail)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RecordTooLargeError, too_large)
    app.add_exception_handler(StoreWriteError, unavailable)
    app.add_exception_handler(StoreReadError, unavailable)
    app.add_exception_handler(Exception, unexpected)


def openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document plus the record's hand-written JSON schema."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(RECORD_SCHEMAS)
            schemas["StateOut"]["properties"]["record"] = {
                "$ref": "#/components/schemas/ActionStateRecord"
            }
            app.openapi_schema = doc
        return app.openapi_schema

    return build
