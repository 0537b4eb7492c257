"""The sidecar's HTTP API (FastAPI): states by key, listings, writes, prune, health, metrics.

Every answer other than 2xx is ``{"error": code, "detail": message}``; bad input is a 4xx
naming the problem, never a 500. Writes answer only after the broker acknowledged them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from actionstate.client.kafka import parse_offsets
from actionstate.serde import (
    HTTP_HEADER_SIGNATURE,
    MAX_SEQ,
    STATE_KEY_PATTERN,
    InvalidStateKeyError,
    next_version,
    tombstone_meta,
    validate_agent_key,
)
from actionstate.service.inspect import StatusFilter
from actionstate.service.sidecar._api import (
    AGENT_KEY_PATTERN,
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
from actionstate.service.sidecar._http import (
    BearerAuth,
    BodyLimit,
    CountClientErrors,
    error_response,
    install_error_handlers,
    json_response,
    openapi_builder,
)
from actionstate.service.sidecar._runtime import Sidecar
from actionstate.service.sidecar._view import LiveState, Tombstone, pending_calls
from actionstate.service.sidecar._wire import (
    META_PARAMETERS,
    STARTS_PATTERN,
    TOMBSTONE_PARAMETERS,
    check_key,
    cursor_position,
    record_meta,
    snapshot_lines,
    state_json,
    validated_body,
)

__all__ = ["create_app"]

_PRUNE_CONCURRENCY = 256
_RECORD_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionStateRecord"}}},
}
StateKeyPath = Annotated[
    str,
    Path(
        description="<agentKey>_<seq>_<eventUUID>_<actionUUID>",
        json_schema_extra={"pattern": STATE_KEY_PATTERN},
    ),
]
# 400, 414 and 431 also come from the HTTP layer (SidecarHttpProtocol), and 413 from the
# body limit (BodyLimit), for any operation.
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 414, 422, 431, 503)
}


def create_app(sidecar: Sidecar) -> FastAPI:
    """The HTTP API over a started (or starting) :class:`Sidecar`."""
    app = FastAPI(
        title="actionstate sidecar",
        version="1",
        description="Flink Agents action states in a compacted Kafka topic, over HTTP.",
    )
    install_error_handlers(app)
    _routes(app, sidecar)
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]
    # The last added runs first: count every 4xx, then authenticate, then limit the body.
    app.add_middleware(BodyLimit, max_bytes=sidecar.settings.body_limit)
    token = sidecar.settings.token_value
    if token is not None:
        app.add_middleware(BearerAuth, token=token)
    app.add_middleware(CountClientErrors, counter=sidecar.metrics.http_errors)
    return app


def _routes(app: FastAPI, sidecar: Sidecar) -> None:  # noqa: PLR0915 - one route each
    view = sidecar.view
    metrics = sidecar.metrics

    @app.get("/healthz", tags=["health"], responses=_ERRORS)
    async def healthz() -> Response:
        """Liveness: 200 while the process serves and its view follower runs; 503 once
        the follower died (it does not restart: restart the process). A broker away does
        not fail it (a restart would not help); ``/readyz`` says so."""
        follower = sidecar.follower
        if not follower.alive:
            return error_response(
                503, "follower_stopped", f"the view follower stopped: {follower.error}"
            )
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"], responses=_ERRORS)
    async def readyz() -> Response:
        """Readiness: 200 while the view is current with the topic; 503 with a reason
        (``not_ready``: first catch-up; ``lagging``; ``broker_unreachable``;
        ``follower_stopped``) when it was not confirmed current within the sidecar's
        ``ready_max_lag_s``, and 200 again once it is."""
        verdict = sidecar.readiness.verdict()
        if not verdict.ready:
            return error_response(503, verdict.code, verdict.detail)
        return json_response({"ready": True, "lag": sidecar.follower.lag()})

    @app.get("/metrics", tags=["health"], response_class=Response, responses=_ERRORS)
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
        return json_response(
            {
                "topic": sidecar.settings.topic,
                "partitions": sidecar.journal.partitions,
                "ready": sidecar.readiness.verdict().ready,
                "lag": follower.lag(),
                "records_read": view.records_read,
                "states_live": len(view),
                "states_pending": view.pending_count,
                "states_incomplete": view.incomplete_count,
                "tombstones": view.tombstone_count,
                "bad_records": view.bad_records,
                "bad_samples": samples,
                "caught_up_seconds": follower.caught_up_seconds,
                "timeout_s": sidecar.settings.timeout_s,
                "signing": sidecar.secret is not None,
            }
        )

    @app.get("/v1/states/{state_key}", tags=["states"], response_model=StateOut, responses=_ERRORS)
    async def get_state(state_key: StateKeyPath) -> Response:
        """The live state under ``state_key``; 404 when there is none."""
        check_key(state_key)
        entry = view.get(state_key)
        if entry is None:
            raise ApiError(404, "not_found", f"no live state under {state_key!r}")
        return json_response(state_json(entry))

    @app.get("/v1/states", tags=["states"], response_model=StateListOut, responses=_ERRORS)
    async def list_states(
        agent_key: Annotated[
            str | None,
            Query(
                min_length=1, max_length=10_000, json_schema_extra={"pattern": AGENT_KEY_PATTERN}
            ),
        ] = None,
        status: StatusFilter | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[
            str | None,
            Query(
                description="the next_cursor of the previous page",
                max_length=20_000,
                json_schema_extra={"pattern": STATE_KEY_PATTERN},
            ),
        ] = None,
    ) -> Response:
        """Live states in key order (agent key, seq, UUIDs), a page at a time.

        ``status=pending``: a call slot is PENDING; ``incomplete``: the action has not
        completed; ``completed``: it has.
        """
        if agent_key is not None:
            _check_agent_key(agent_key)
        after = None if cursor is None else cursor_position(cursor)
        page, more = view.page(agent_key=agent_key, status=status, after=after, limit=limit)
        items = [state_json(entry) for entry in page]
        next_cursor = page[-1].key if more and page else None
        return json_response({"items": items, "next_cursor": next_cursor})

    @app.put(
        "/v1/states/{state_key}",
        tags=["states"],
        response_model=WriteOut,
        responses=_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                **_RECORD_BODY,
            },
            "parameters": META_PARAMETERS,
        },
    )
    async def put_state(state_key: StateKeyPath, request: Request) -> Response:
        """Write a record; answered once the broker acknowledged it (503 if it was not
        within the sidecar's ``timeout_s``).

        The body is the record JSON. Its metadata goes in headers: the payload codec
        (``ActionState-Codec``), writer id, schema version, write version, and an
        HMAC-SHA256 signature made by the client over the state key, the body, the codec
        and the version; a signed body is stored exactly as sent (an unsigned one is
        stored re-encoded in Java's field order). A sidecar with a signing secret (and so
        a token) signs unsigned records for its authenticated callers, refuses
        signatures it cannot verify, and refuses a version not above the key's (409).
        """
        agent_key, _seq = check_key(state_key)
        signed = request.headers.get(HTTP_HEADER_SIGNATURE) is not None
        value, state = await validated_body(request, keep_bytes=signed)
        meta = record_meta(request, state_key, value, sidecar.secret, view.version(state_key))
        started = time.perf_counter()
        partition, offset = await sidecar.journal.write(agent_key, state_key, value, meta)
        metrics.write_latency.labels("put").observe(time.perf_counter() - started)
        view.apply_write(
            LiveState(
                state_key, value, meta, partition, offset, state.completed, pending_calls(state)
            )
        )
        return json_response({"state_key": state_key, "partition": partition, "offset": offset})

    @app.delete(
        "/v1/states/{state_key}",
        tags=["states"],
        response_model=DeleteOut,
        responses=_ERRORS,
        openapi_extra={"parameters": TOMBSTONE_PARAMETERS},
    )
    async def delete_state(state_key: StateKeyPath, request: Request) -> Response:
        """Write a tombstone for ``state_key``; answered once the broker acknowledged it.

        Signed like a PUT's record (``ActionState-Version`` and ``ActionState-Signature``
        over the state key and version), or by a sidecar with a signing secret.
        """
        agent_key, _seq = check_key(state_key)
        existed = view.get(state_key) is not None
        meta = record_meta(request, state_key, None, sidecar.secret, view.version(state_key))
        started = time.perf_counter()
        partition, offset = await sidecar.journal.delete(agent_key, state_key, meta)
        metrics.write_latency.labels("delete").observe(time.perf_counter() - started)
        view.apply_delete(Tombstone(state_key, partition, offset, meta))
        return json_response(
            {"state_key": state_key, "partition": partition, "offset": offset, "existed": existed}
        )

    @app.post("/v1/prune", tags=["states"], response_model=PruneOut, responses=_ERRORS)
    async def prune(body: PruneIn) -> Response:
        """Delete (tombstone) the states of ``agent_key`` with seq ≤ ``up_to_seq``.

        Only the owner who knows seqs up to ``up_to_seq`` will never be submitted again
        should prune: a completed state is the proof an action ran.
        """
        _check_agent_key(body.agent_key)
        keys = view.keys_up_to(body.agent_key, body.up_to_seq)
        limit = asyncio.Semaphore(_PRUNE_CONCURRENCY)

        async def one(skey: str) -> None:
            async with limit:
                secret = sidecar.secret
                version = None if secret is None else next_version(view.version(skey))
                meta = tombstone_meta(skey, secret=secret, version=version)
                started = time.perf_counter()
                partition, offset = await sidecar.journal.delete(body.agent_key, skey, meta)
                metrics.write_latency.labels("delete").observe(time.perf_counter() - started)
                view.apply_delete(Tombstone(skey, partition, offset, meta))

        await asyncio.gather(*(one(k) for k in keys))
        return json_response(
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
        return json_response({"topic": sidecar.settings.topic, "offsets": offsets})

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
                max_length=16_000,
                json_schema_extra={"pattern": STARTS_PATTERN},
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
        # O(states): off the event loop, which keeps serving meanwhile.
        entries, tombs, bad, records_read = await anyio.to_thread.run_sync(view.snapshot, plan)
        lines = snapshot_lines(records_read, sorted(plan), bad, entries, tombs)
        return StreamingResponse(lines, media_type="application/x-ndjson")


def _check_agent_key(agent_key: str) -> None:
    """A 422 naming the problem when Java could not parse ``agent_key`` back."""
    try:
        validate_agent_key(agent_key)
    except InvalidStateKeyError as exc:
        raise ApiError(422, "invalid_agent_key", f"agent_key: {exc}") from None
