"""The sidecar's HTTP API (FastAPI): states by key, listings, writes, prune, health, metrics.

Every answer other than 2xx is ``{"error": code, "detail": message}``; bad input is a 4xx
naming the problem, never a 500. Writes answer only after the broker acknowledged them.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from actionstate.client import StoreReadError, StoreWriteError
from actionstate.client._records import SCHEMA_VERSION, split_state_key
from actionstate.serde import (
    InvalidStateKeyError,
    RecordMeta,
    SerdeError,
    decode_action_state,
    encode_action_state,
    get_codec,
    parse_state_key,
    sign_record,
    validate_agent_key,
    verify_record,
)
from actionstate.service._api import (
    AGENT_KEY_PATTERN,
    HEADER_CODEC,
    HEADER_SCHEMA,
    HEADER_SIGNATURE,
    HEADER_WRITER,
    MAX_SEQ,
    RECORD_SCHEMAS,
    STATE_KEY_PATTERN,
    ApiError,
    DeleteOut,
    ErrorOut,
    PruneIn,
    PruneOut,
    RecoveryMarkerOut,
    StateListOut,
    StateOut,
    StatusOut,
    WriteOut,
)
from actionstate.service._inspect import StatusFilter, parse_offsets
from actionstate.service._journal import WRITER
from actionstate.service._sidecar import Sidecar
from actionstate.service._view import Entry, RecordRejected, Tombstone, sort_key

__all__ = ["create_app"]

_log = logging.getLogger("actionstate.service.app")
_JSON = "application/json"
_PRUNE_CONCURRENCY = 256
_STARTS_PATTERN = "^[0-9]{1,6}:[0-9]{1,18}(,[0-9]{1,6}:[0-9]{1,18})*$"
_WRITER_RE = re.compile("[!-~]{1,200}")
_SIGNATURE_RE = re.compile("[0-9a-f]{64}")
_META_PARAMETERS = [
    {
        "name": HEADER_CODEC,
        "in": "header",
        "required": False,
        "description": "codec of the call payloads (Kafka header actionstate.codec)",
        "schema": {"type": "string", "enum": ["cloudpickle", "json"]},
    },
    {
        "name": HEADER_WRITER,
        "in": "header",
        "required": False,
        "description": "writer id (default: this sidecar's)",
        "schema": {"type": "string", "pattern": f"^{_WRITER_RE.pattern}$"},
    },
    {
        "name": HEADER_SCHEMA,
        "in": "header",
        "required": False,
        "description": "record schema version",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
    {
        "name": HEADER_SIGNATURE,
        "in": "header",
        "required": False,
        "description": "hex HMAC-SHA256 of the state key and the body (sign_record)",
        "schema": {"type": "string", "pattern": f"^{_SIGNATURE_RE.pattern}$"},
    },
]
StateKeyPath = Annotated[
    str,
    Path(
        description="<agentKey>_<seq>_<eventUUID>_<actionUUID>",
        json_schema_extra={"pattern": STATE_KEY_PATTERN},
    ),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 422, 503)
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def _error(status: int, code: str, detail: str) -> Response:
    return _json({"error": code, "detail": detail}, status)


def _check_key(skey: str) -> tuple[str, int]:
    """Agent key and seq of a state key Java can parse back; ApiError otherwise."""
    try:
        parse_state_key(skey)
        return split_state_key(skey)
    except InvalidStateKeyError as exc:
        raise ApiError(422, "invalid_state_key", str(exc)) from None
    except ValueError:
        raise ApiError(
            422,
            "invalid_state_key",
            f"state key {skey!r} is not canonical: write <agentKey>_<seq>_<eventUUID>_"
            "<actionUUID> with lowercase UUIDs and seq without leading zeros",
        ) from None


def _state_json(entry: Entry) -> dict[str, Any]:
    meta = entry.meta
    return {
        "state_key": entry.key,
        "agent_key": entry.agent_key,
        "seq": entry.seq,
        "partition": entry.partition,
        "offset": entry.offset,
        "codec": meta.codec,
        "writer": meta.writer,
        "schema_version": meta.schema,
        "signature": meta.signature,
        "completed": entry.state.completed,
        "pending_calls": entry.pending_calls,
        "record": orjson.Fragment(entry.value),
    }


def _matches(entry: Entry, status: StatusFilter | None) -> bool:
    if status is None:
        return True
    if status is StatusFilter.COMPLETED:
        return entry.state.completed
    if status is StatusFilter.INCOMPLETE:
        return not entry.state.completed
    return entry.pending_calls > 0


def _cursor_position(cursor: str) -> tuple[str, int, str]:
    # A cursor is the last state key of the previous page: the listing continues after
    # it, whether or not that key still exists.
    try:
        split_state_key(cursor)
    except ValueError:
        raise ApiError(
            422,
            "invalid_cursor",
            f"cursor {cursor[:80]!r} is not a state key: pass the next_cursor of a page",
        ) from None
    return sort_key(cursor)


class _BearerAuth:
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
            response = _error(
                401, "unauthorized", "send the sidecar's token as 'Authorization: Bearer <token>'"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.code, exc.detail)

    async def validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        json_invalid = any(e.get("type") == "json_invalid" for e in exc.errors())
        if json_invalid:
            return _error(
                400, "malformed_json", f"the body is not JSON: {_validation_message(exc)}"
            )
        return _error(422, "invalid_request", _validation_message(exc))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    async def unavailable(_request: Request, exc: Exception) -> Response:
        code = "write_failed" if isinstance(exc, StoreWriteError) else "unavailable"
        return _error(503, code, f"{exc} (the request may be retried)")

    async def unexpected(_request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error answering a request")
        return _error(500, "internal_error", f"unexpected {type(exc).__name__}; see the logs")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(StoreWriteError, unavailable)
    app.add_exception_handler(StoreReadError, unavailable)
    app.add_exception_handler(Exception, unexpected)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
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


def create_app(sidecar: Sidecar) -> FastAPI:
    """The HTTP API over a started (or starting) :class:`Sidecar`."""
    app = FastAPI(
        title="actionstate sidecar",
        version="1",
        description="Flink Agents action states in a compacted Kafka topic, over HTTP.",
    )
    _install_error_handlers(app)
    _routes(app, sidecar)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    token = sidecar.settings.token_value
    if token is not None:
        app.add_middleware(_BearerAuth, token=token)
    return app


def _routes(app: FastAPI, sidecar: Sidecar) -> None:  # noqa: PLR0915 - one route each
    view = sidecar.view
    metrics = sidecar.metrics

    @app.get("/healthz", tags=["health"], responses=_ERRORS)
    async def healthz() -> Response:
        """200 while the process and its view follower run."""
        follower = sidecar.follower
        if not follower.alive:
            return _error(503, "follower_stopped", f"the view follower stopped: {follower.error}")
        return _json({"status": "ok"})

    @app.get("/readyz", tags=["health"], responses=_ERRORS)
    async def readyz() -> Response:
        """200 once the view caught up with the topic, 503 before."""
        follower = sidecar.follower
        if not follower.ready:
            return _error(
                503, "not_ready", f"catching up with the topic: {follower.lag()} records behind"
            )
        return _json({"ready": True, "lag": follower.lag()})

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics_text() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/status", tags=["states"], response_model=StatusOut, responses=_ERRORS)
    async def status() -> Response:
        """Counts of the view and how far it has read."""
        follower = sidecar.follower
        samples = [
            {"partition": b.partition, "offset": b.offset, "key": b.key, "reason": b.reason,
             "detail": b.detail}
            for b in view.bad_samples(100)
        ]  # fmt: skip
        return _json(
            {
                "topic": sidecar.settings.topic,
                "partitions": sidecar.journal.partitions,
                "ready": follower.ready,
                "lag": follower.lag(),
                "records_read": view.records_read,
                "states_live": len(view),
                "states_pending": view.pending_count,
                "states_incomplete": view.incomplete_count,
                "tombstones": view.tombstone_count,
                "bad_records": view.bad_records,
                "bad_samples": samples,
                "caught_up_seconds": follower.caught_up_seconds,
            }
        )

    @app.get("/v1/states/{state_key}", tags=["states"], response_model=StateOut, responses=_ERRORS)
    async def get_state(state_key: StateKeyPath) -> Response:
        """The live state under ``state_key``; 404 when there is none."""
        _check_key(state_key)
        entry = view.get(state_key)
        if entry is None:
            raise ApiError(404, "not_found", f"no live state under {state_key!r}")
        return _json(_state_json(entry))

    @app.get("/v1/states", tags=["states"], response_model=StateListOut, responses=_ERRORS)
    async def list_states(
        agent_key: Annotated[
            str | None, Query(min_length=1, json_schema_extra={"pattern": AGENT_KEY_PATTERN})
        ] = None,
        status: StatusFilter | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[
            str | None,
            Query(
                description="the next_cursor of the previous page",
                json_schema_extra={"pattern": STATE_KEY_PATTERN},
            ),
        ] = None,
    ) -> Response:
        """Live states in key order (agent key, seq, UUIDs), a page at a time.

        ``status=pending``: a call slot is PENDING; ``incomplete``: the action has not
        completed; ``completed``: it has.
        """
        keys = view.sorted_keys(agent_key)
        start = (
            0
            if cursor is None
            else bisect.bisect_right(keys, _cursor_position(cursor), key=sort_key)
        )
        items: list[dict[str, Any]] = []
        next_cursor = None
        for skey in keys[start:]:
            entry = view.get(skey)
            if entry is None or not _matches(entry, status):
                continue
            if len(items) == limit:
                next_cursor = items[-1]["state_key"]
                break
            items.append(_state_json(entry))
        return _json({"items": items, "next_cursor": next_cursor})

    @app.put(
        "/v1/states/{state_key}",
        tags=["states"],
        response_model=WriteOut,
        responses=_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ActionStateRecord"}}},
            },
            "parameters": _META_PARAMETERS,
        },
    )
    async def put_state(state_key: StateKeyPath, request: Request) -> Response:
        """Write a record; answered once the broker acknowledged it.

        The body is the record JSON. Its metadata goes in headers: the payload codec
        (``ActionState-Codec``), writer id, schema version, and an HMAC-SHA256 signature
        made by the client over the state key and the body, which is then stored exactly
        as sent (an unsigned body is stored re-encoded in Java's field order). A sidecar
        with a signing secret signs unsigned records and refuses signatures it cannot
        verify.
        """
        agent_key, seq = _check_key(state_key)
        signature = request.headers.get(HEADER_SIGNATURE)
        value = await _validated_body(request, keep_bytes=signature is not None)
        meta = _record_meta(request, state_key, value, sidecar.secret)
        try:
            entry = view.checked_entry(
                state_key, agent_key, seq, value, [*meta.to_headers()], partition=0, offset=0
            )
        except RecordRejected as exc:
            raise ApiError(422, "invalid_record", str(exc)) from None
        started = time.perf_counter()
        partition, offset = await sidecar.journal.write(agent_key, state_key, value, meta)
        metrics.write_latency.labels("put").observe(time.perf_counter() - started)
        view.apply_write(
            Entry(state_key, agent_key, seq, entry.state, value, meta, partition, offset)
        )
        return _json({"state_key": state_key, "partition": partition, "offset": offset})

    @app.delete(
        "/v1/states/{state_key}", tags=["states"], response_model=DeleteOut, responses=_ERRORS
    )
    async def delete_state(state_key: StateKeyPath) -> Response:
        """Write a tombstone for ``state_key``; answered once the broker acknowledged it."""
        agent_key, _seq = _check_key(state_key)
        existed = view.get(state_key) is not None
        started = time.perf_counter()
        partition, offset = await sidecar.journal.delete(agent_key, state_key)
        metrics.write_latency.labels("delete").observe(time.perf_counter() - started)
        view.apply_delete(Tombstone(state_key, agent_key, partition, offset))
        return _json(
            {"state_key": state_key, "partition": partition, "offset": offset, "existed": existed}
        )

    @app.post("/v1/prune", tags=["states"], response_model=PruneOut, responses=_ERRORS)
    async def prune(body: PruneIn) -> Response:
        """Delete (tombstone) the states of ``agent_key`` with seq ≤ ``up_to_seq``.

        Only the owner who knows seqs up to ``up_to_seq`` will never be submitted again
        should prune: a completed state is the proof an action ran.
        """
        try:
            validate_agent_key(body.agent_key)
        except InvalidStateKeyError as exc:
            raise ApiError(422, "invalid_agent_key", f"agent_key: {exc}") from None
        keys = view.keys_up_to(body.agent_key, body.up_to_seq)
        limit = asyncio.Semaphore(_PRUNE_CONCURRENCY)

        async def one(skey: str) -> None:
            async with limit:
                started = time.perf_counter()
                partition, offset = await sidecar.journal.delete(body.agent_key, skey)
                metrics.write_latency.labels("delete").observe(time.perf_counter() - started)
                view.apply_delete(Tombstone(skey, body.agent_key, partition, offset))

        await asyncio.gather(*(one(k) for k in keys))
        return _json(
            {
                "agent_key": body.agent_key,
                # what the request meant: every seq up to Java's largest
                "up_to_seq": min(body.up_to_seq, MAX_SEQ),
                "pruned": len(keys),
            }
        )

    @app.get(
        "/v1/recovery-marker",
        tags=["states"],
        response_model=RecoveryMarkerOut,
        responses=_ERRORS,
    )
    async def recovery_marker() -> Response:
        """The topic's end offset per partition: pass it to a later rebuild."""
        marker = await anyio.to_thread.run_sync(sidecar.journal.recovery_marker)
        offsets = {str(p): o for p, o in sorted(marker.items())}
        return _json({"topic": sidecar.settings.topic, "offsets": offsets})

    @app.get(
        "/v1/snapshot",
        tags=["states"],
        responses={
            200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"},
            **_ERRORS,
        },
    )
    async def snapshot(
        starts: Annotated[
            str | None,
            Query(
                max_length=100_000,
                json_schema_extra={"pattern": _STARTS_PATTERN},
                description="PARTITION:OFFSET[,...]",
            ),
        ] = None,
    ) -> Response:
        """Live states and tombstones at or after ``starts`` (``P:OFFSET,...``; every
        partition from 0 when absent), consistent with the topic's end at the request.

        JSON lines: a header (``records_read``, ``partitions``, ``bad``), then one line per
        state or tombstone with the record bytes in base64 and its metadata.
        """
        count = sidecar.journal.partitions
        plan = dict.fromkeys(range(count), 0)
        if starts is not None:
            try:
                plan = parse_offsets(starts)
            except ValueError as exc:
                raise ApiError(422, "invalid_starts", f"starts: {exc}") from None
            wrong = sorted(p for p in plan if p >= count)
            if wrong:
                raise ApiError(
                    404, "no_such_partition", f"starts: the topic has no partitions {wrong}"
                )
        marker = await anyio.to_thread.run_sync(sidecar.journal.recovery_marker)
        ends = {p: marker[p] for p in plan}
        timeout = sidecar.settings.timeout_s
        reached = await anyio.to_thread.run_sync(sidecar.follower.wait_for, ends, timeout)
        if not reached:
            raise ApiError(
                503, "view_behind", f"the view did not reach the topic's end in {timeout}s"
            )
        entries, tombs, bad, records_read = view.snapshot(plan)
        header = {
            "kind": "header",
            "records_read": records_read,
            "partitions": sorted(plan),
            "bad": [
                {"partition": b.partition, "offset": b.offset, "reason": b.reason,
                 "detail": b.detail}
                for b in bad
            ],
        }  # fmt: skip
        return StreamingResponse(
            _snapshot_lines(header, entries, tombs), media_type="application/x-ndjson"
        )


async def _validated_body(request: Request, *, keep_bytes: bool) -> bytes:
    """The record bytes to store for a PUT body; ApiError naming what is wrong."""
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "empty_body", "the body is empty: send the record JSON")
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from None
    try:
        state = decode_action_state(body)
    except SerdeError as exc:
        detail = f"the body is not an action-state record: {exc}"
        raise ApiError(422, "invalid_record", detail) from None
    # A signature covers the bytes as sent; anything else is stored in Java's field order.
    return body if keep_bytes else encode_action_state(state)


def _record_meta(request: Request, skey: str, value: bytes, secret: bytes | None) -> RecordMeta:
    """The record's metadata from the request headers; ApiError naming a bad header."""
    headers = request.headers
    codec = headers.get(HEADER_CODEC)
    if codec is not None:
        try:
            get_codec(codec)
        except SerdeError as exc:
            raise ApiError(422, "unknown_codec", f"{HEADER_CODEC}: {exc}") from None
    schema_text = headers.get(HEADER_SCHEMA)
    schema = SCHEMA_VERSION
    if schema_text is not None:
        if not (schema_text.isascii() and schema_text.isdigit() and len(schema_text) <= 9):
            raise ApiError(
                422, "invalid_header", f"{HEADER_SCHEMA}: expected a small non-negative integer"
            )
        schema = int(schema_text)
    writer = headers.get(HEADER_WRITER)
    if writer is not None and _WRITER_RE.fullmatch(writer) is None:
        raise ApiError(
            422, "invalid_header", f"{HEADER_WRITER}: 1 to 200 printable ASCII characters"
        )
    signature = headers.get(HEADER_SIGNATURE)
    if signature is not None and _SIGNATURE_RE.fullmatch(signature) is None:
        raise ApiError(
            422, "invalid_header", f"{HEADER_SIGNATURE}: expected 64 lowercase hex digits"
        )
    if secret is not None:
        if signature is None:
            signature = sign_record(skey, value, secret)
        elif not verify_record(skey, value, signature, secret):
            raise ApiError(
                422,
                "bad_signature",
                f"{HEADER_SIGNATURE} does not verify with the sidecar's secret",
            )
    return RecordMeta(codec=codec, writer=writer or WRITER, schema=schema, signature=signature)


async def _snapshot_lines(
    header: dict[str, Any], entries: Iterable[Entry], tombs: Iterable[Tombstone]
) -> AsyncIterator[bytes]:
    yield orjson.dumps(header) + b"\n"
    chunk: list[bytes] = []
    for e in entries:
        meta = e.meta
        chunk.append(
            orjson.dumps(
                {
                    "kind": "state",
                    "key": e.key,
                    "partition": e.partition,
                    "offset": e.offset,
                    "value": base64.b64encode(e.value).decode(),
                    "codec": meta.codec,
                    "writer": meta.writer,
                    "schema": meta.schema,
                    "signature": meta.signature,
                }
            )
        )
        if len(chunk) >= 500:
            yield b"\n".join(chunk) + b"\n"
            chunk.clear()
    for t in tombs:
        chunk.append(
            orjson.dumps(
                {"kind": "tombstone", "key": t.key, "partition": t.partition, "offset": t.offset}
            )
        )
    if chunk:
        yield b"\n".join(chunk) + b"\n"
