"""Between HTTP and records: checking keys, bodies, headers and cursors of requests, and
shaping states and snapshots into answers. Every refusal is an ``ApiError`` naming what
is wrong."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from fastapi import Request

from actionstate.serde import (
    CODEC_NAMES,
    HTTP_HEADER_CODEC,
    HTTP_HEADER_SCHEMA,
    HTTP_HEADER_SIGNATURE,
    HTTP_HEADER_VERSION,
    HTTP_HEADER_WRITER,
    SCHEMA_VERSION,
    WRITER,
    ActionState,
    InvalidStateKeyError,
    RecordMeta,
    SerdeError,
    decode_action_state,
    encode_action_state,
    get_codec,
    next_version,
    parse_state_key,
    sign_record,
    split_state_key,
    verify_record,
)
from actionstate.service.sidecar._api import ApiError
from actionstate.service.sidecar._view import BadSample, LiveState, Tombstone

__all__ = [
    "META_PARAMETERS",
    "STARTS_PATTERN",
    "TOMBSTONE_PARAMETERS",
    "check_key",
    "cursor_position",
    "record_meta",
    "snapshot_lines",
    "state_json",
    "validated_body",
]

STARTS_PATTERN = "^[0-9]{1,6}:[0-9]{1,18}(,[0-9]{1,6}:[0-9]{1,18})*$"
_WRITER_RE = re.compile("[!-~]{1,200}")
_SIGNATURE_RE = re.compile("[0-9a-f]{64}")
_SNAPSHOT_CHUNK = 500

# The PUT's metadata headers, for the OpenAPI document (the route reads them itself).
META_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": HTTP_HEADER_CODEC,
        "in": "header",
        "required": False,
        "description": "codec of the call payloads (Kafka header actionstate.codec)",
        "schema": {"type": "string", "enum": list(CODEC_NAMES)},
    },
    {
        "name": HTTP_HEADER_WRITER,
        "in": "header",
        "required": False,
        "description": "writer id (default: this sidecar's)",
        "schema": {"type": "string", "pattern": f"^{_WRITER_RE.pattern}$"},
    },
    {
        "name": HTTP_HEADER_SCHEMA,
        "in": "header",
        "required": False,
        "description": "record schema version",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
    {
        "name": HTTP_HEADER_VERSION,
        "in": "header",
        "required": False,
        "description": "the key's write version (Kafka header actionstate.version); "
        "required with a signature, which covers it",
        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    },
    {
        "name": HTTP_HEADER_SIGNATURE,
        "in": "header",
        "required": False,
        "description": "hex HMAC-SHA256 of the state key, body, codec and version (sign_record)",
        "schema": {"type": "string", "pattern": f"^{_SIGNATURE_RE.pattern}$"},
    },
]
# A tombstone (DELETE) has no body, codec or schema; its signature covers key and version.
TOMBSTONE_PARAMETERS = [
    p for p in META_PARAMETERS if p["name"] not in (HTTP_HEADER_CODEC, HTTP_HEADER_SCHEMA)
]


def check_key(skey: str) -> tuple[str, int]:
    """Agent key and seq of a state key Java can parse back."""
    try:
        parse_state_key(skey)
        return split_state_key(skey)
    except InvalidStateKeyError as exc:
        raise ApiError(422, "invalid_state_key", str(exc)) from None
    except ValueError:
        raise ApiError(
            422,
            "invalid_state_key",
            f"state key {skey[:200]!r} is not canonical: write <agentKey>_<seq>_<eventUUID>_"
            "<actionUUID> with lowercase UUIDs and seq without leading zeros",
        ) from None


def cursor_position(cursor: str) -> str:
    """Where a listing continues: after the state key ``cursor`` (present or not)."""
    try:
        split_state_key(cursor)
    except ValueError:
        raise ApiError(
            422,
            "invalid_cursor",
            f"cursor {cursor[:80]!r} is not a state key: pass the next_cursor of a page",
        ) from None
    return cursor


def state_json(entry: LiveState) -> dict[str, Any]:
    """A live state as the API shows it (``StateOut``), the record embedded as stored."""
    meta = entry.meta
    agent_key, seq = split_state_key(entry.key)
    return {
        "state_key": entry.key,
        "agent_key": agent_key,
        "seq": seq,
        "partition": entry.partition,
        "offset": entry.offset,
        "codec": meta.codec,
        "writer": meta.writer,
        "schema_version": meta.schema,
        "version": meta.version,
        "signature": meta.signature,
        "completed": entry.completed,
        "pending_calls": entry.pending_calls,
        "record": orjson.Fragment(entry.value),
    }


async def validated_body(request: Request, *, keep_bytes: bool) -> tuple[bytes, ActionState]:
    """The record bytes to store for a PUT body, and the state they hold.

    A signed body (``keep_bytes``) is stored as sent, since the signature covers those
    bytes; any other is stored re-encoded, in Java's field order.
    """
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
    return (body if keep_bytes else encode_action_state(state)), state


def record_meta(
    request: Request, skey: str, value: bytes | None, secret: bytes | None, known: int | None
) -> RecordMeta:
    """The metadata of a PUT's record (``value`` None: a DELETE's tombstone) from the
    request's headers.

    With the sidecar's ``secret`` (the caller is authenticated: a secret requires a token),
    an unsigned record is signed here with the next write version after ``known`` (the
    key's current one), a signed one must verify, and a version not above ``known`` is
    refused: the journal's versions only rise.
    """
    headers = request.headers
    codec = None if value is None else _codec(headers.get(HTTP_HEADER_CODEC))
    schema = None if value is None else _number(headers.get(HTTP_HEADER_SCHEMA), HTTP_HEADER_SCHEMA)
    version = _number(headers.get(HTTP_HEADER_VERSION), HTTP_HEADER_VERSION)
    writer = headers.get(HTTP_HEADER_WRITER)
    if writer is not None and _WRITER_RE.fullmatch(writer) is None:
        detail = f"{HTTP_HEADER_WRITER}: 1 to 200 printable ASCII characters"
        raise ApiError(422, "invalid_header", detail)
    signature = headers.get(HTTP_HEADER_SIGNATURE)
    if signature is not None and _SIGNATURE_RE.fullmatch(signature) is None:
        detail = f"{HTTP_HEADER_SIGNATURE}: expected 64 lowercase hex digits"
        raise ApiError(422, "invalid_header", detail)
    # Without a secret the sidecar passes signatures on; the readers holding it judge them.
    if secret is not None:
        if signature is None:
            version = next_version(known) if version is None else version
            signature = sign_record(skey, value, secret, codec=codec, version=version)
        elif version is None:
            detail = f"{HTTP_HEADER_SIGNATURE} needs {HTTP_HEADER_VERSION}: the signature covers it"
            raise ApiError(422, "missing_version", detail)
        elif not verify_record(skey, value, signature, secret, codec=codec, version=version):
            detail = f"{HTTP_HEADER_SIGNATURE} does not verify with the sidecar's secret"
            raise ApiError(422, "bad_signature", detail)
        if known is not None and version is not None and version <= known:
            detail = (
                f"{HTTP_HEADER_VERSION} {version} is not above the key's current version {known}: "
                "rebuild, then write again"
            )
            raise ApiError(409, "stale_version", detail)
    if value is not None and schema is None:
        schema = SCHEMA_VERSION
    return RecordMeta(
        codec=codec, writer=writer or WRITER, schema=schema, version=version, signature=signature
    )


def _codec(name: str | None) -> str | None:
    if name is not None:
        try:
            get_codec(name)
        except SerdeError as exc:
            raise ApiError(422, "unknown_codec", f"{HTTP_HEADER_CODEC}: {exc}") from None
    return name


def _number(text: str | None, header: str) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        detail = f"{header}: expected a non-negative integer of at most 18 digits"
        raise ApiError(422, "invalid_header", detail)
    return int(text)


async def snapshot_lines(
    records_read: int,
    partitions: list[int],
    bad: Iterable[BadSample],
    entries: Iterable[LiveState],
    tombs: Iterable[Tombstone],
) -> AsyncIterator[bytes]:
    """The JSON lines of ``GET /v1/snapshot``: a header, then states and tombstones."""
    header = {
        "kind": "header",
        "records_read": records_read,
        "partitions": partitions,
        "bad": [
            {"partition": b.partition, "offset": b.offset, "reason": b.reason, "detail": b.detail}
            for b in bad
        ],
    }
    yield orjson.dumps(header) + b"\n"
    chunk: list[bytes] = []
    for e in entries:
        meta = e.meta
        line = {
            "kind": "state",
            "key": e.key,
            "partition": e.partition,
            "offset": e.offset,
            "value": base64.b64encode(e.value).decode(),
            "codec": meta.codec,
            "writer": meta.writer,
            "schema": meta.schema,
            "version": meta.version,
            "signature": meta.signature,
        }
        chunk.append(orjson.dumps(line))
        if len(chunk) >= _SNAPSHOT_CHUNK:
            yield b"\n".join(chunk) + b"\n"
            chunk.clear()
    for t in tombs:
        line = {
            "kind": "tombstone",
            "key": t.key,
            "partition": t.partition,
            "offset": t.offset,
            "writer": t.meta.writer,
            "version": t.meta.version,
            "signature": t.meta.signature,
        }
        chunk.append(orjson.dumps(line))
    if chunk:
        yield b"\n".join(chunk) + b"\n"
