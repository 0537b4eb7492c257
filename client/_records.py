"""Turning store arguments into records and checking records read back.

Shared by every backend so the argument errors, the headers and the checks applied on
rebuild are the same whichever store is used.
"""

from __future__ import annotations

import functools
import pickle
import re
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import NamedTuple, Protocol

from actionstate.serde import (
    HEADER_CODEC,
    HEADER_VERSION,
    ActionState,
    Event,
    RecordMeta,
    SerdeError,
    action_uuid,
    decode_action_state,
    encode_action_state,
    event_uuid,
    partition_for,
    sign_record,
    validate_agent_key,
    verify_record,
)

from ._call_id import is_plain_data

__all__ = [
    "DEFAULT_CODEC",
    "SCHEMA_VERSION",
    "WRITER",
    "Checked",
    "Headers",
    "Located",
    "LogRecord",
    "RawRecord",
    "VersionWatch",
    "action_part_of",
    "check_record",
    "encode_record",
    "event_part_of",
    "locate",
    "next_version",
    "partition_of",
    "split_state_key",
    "tombstone_meta",
    "validate_seq",
]

DEFAULT_CODEC = "cloudpickle"
SCHEMA_VERSION = 1


def _writer() -> str:
    try:
        return f"kafka-actionstate/{metadata.version('kafka-actionstate')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "kafka-actionstate"


WRITER = _writer()

HeaderValue = str | bytes | None
Headers = list[tuple[str, HeaderValue]]


class RawRecord(Protocol):
    """The part of confluent-kafka's ``Message`` that rebuild reads."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | dict[str, HeaderValue] | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


class LogRecord:
    """A record of the in-memory log, shaped like a confluent-kafka ``Message``."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_value")

    def __init__(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int,
        offset: int,
    ) -> None:
        self._key = key
        self._value = value
        self._headers = headers
        self._partition = partition
        self._offset = offset

    def key(self) -> bytes | None:
        """The record key."""
        return self._key

    def value(self) -> bytes | None:
        """The record value; None for a tombstone."""
        return self._value

    def headers(self) -> Headers | None:
        """The record headers."""
        return self._headers

    def partition(self) -> int:
        """The partition the record is in."""
        return self._partition

    def offset(self) -> int:
        """The record's offset in its partition."""
        return self._offset


@dataclass(frozen=True, slots=True)
class Located:
    """Where a state lives: agent key, sequence number and state key."""

    agent_key: str
    seq: int
    state_key: str


def validate_seq(seq: object, name: str = "seq") -> int:
    """``seq`` as an int; bools and other types are refused with a TypeError."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError(f"{name} must be an int, got {type(seq).__name__}: {seq!r}")
    if not 0 <= seq <= _MAX_SEQ:
        raise ValueError(f"{name} must be between 0 and 2**63-1 (a Java long), got {seq}")
    return seq


def locate(
    key: object, seq: object, action: object, event: object, *, event_part: str | None = None
) -> Located:
    """Validate the arguments shared by ``put`` and ``get`` and compute the state key.

    ``event_part`` is ``str(event_uuid(event.attributes))`` when the caller already has it:
    that UUID is most of the cost, and it does not change during an action run.
    """
    agent_key = validate_agent_key(key)
    checked_seq = validate_seq(seq)
    if not isinstance(action, str) or not action:
        raise TypeError(f"action must be a non-empty str (the action's name), got {action!r}")
    if not isinstance(event, Event):
        raise TypeError(f"event must be an actionstate.serde.Event, got {type(event).__name__}")
    # The parts are validated above, so joining them is what serde's state_key would do.
    if event_part is None:
        event_part = event_part_of(event)
    skey = f"{agent_key}_{checked_seq}_{event_part}_{action_part_of(action)}"
    return Located(agent_key, checked_seq, skey)


_EVENT_PARTS: dict[bytes, str] = {}
_EVENT_PARTS_MAX = 4096
_EVENT_MEMO_MAX_BYTES = 2048


def event_part_of(event: Event) -> str:
    """``str(event_uuid(event.attributes))``, remembered for the attributes seen lately.

    The memo is keyed by the attributes' pickle, not by equality: ``1``, ``1.0`` and
    ``True`` are equal in Python but pickle (and are written by Jackson) differently.
    """
    attributes = event.attributes
    if not is_plain_data(attributes):
        return str(event_uuid(attributes))
    memo_key = pickle.dumps(attributes, protocol=pickle.HIGHEST_PROTOCOL)
    if len(memo_key) > _EVENT_MEMO_MAX_BYTES:
        return str(event_uuid(attributes))
    part = _EVENT_PARTS.get(memo_key)
    if part is None:
        part = str(event_uuid(attributes))
        if len(_EVENT_PARTS) >= _EVENT_PARTS_MAX:
            _EVENT_PARTS.clear()
        _EVENT_PARTS[memo_key] = part
    return part


@functools.lru_cache(maxsize=1024)
def action_part_of(action: str) -> str:
    """``str(action_uuid(action))``, remembered for the action names seen lately."""
    return str(action_uuid(action))


@functools.lru_cache(maxsize=4096)
def partition_of(agent_key: str, num_partitions: int) -> int:
    """``partition_for``, remembered for the agent keys seen lately."""
    return partition_for(agent_key, num_partitions)


def next_version(known: int | None) -> int:
    """The write version of a key's next record: above the last one known for the key, and
    at least the writer's clock in microseconds, so a writer that never saw the key's
    latest record (it was pruned, or written before this process rebuilt) still writes a
    newer version than it in practice."""
    floor = 0 if known is None else known + 1
    return max(floor, time.time_ns() // 1000)


def encode_record(
    skey: str, state: object, *, codec: str, secret: bytes | None, version: int | None
) -> tuple[bytes, Headers]:
    """The record value and headers for ``state`` under ``skey``; signed records carry
    ``version`` (:func:`next_version`), unsigned ones carry none."""
    if not isinstance(state, ActionState):
        raise TypeError(
            f"state must be an actionstate.serde.ActionState, got {type(state).__name__}"
        )
    value = encode_action_state(state)
    if secret is None:
        return value, _unsigned_headers(codec)
    meta = _signed_meta(skey, value, secret, codec=codec, version=version)
    headers: Headers = [*meta.to_headers()]
    return value, headers


def _signed_meta(
    skey: str, value: bytes | None, secret: bytes, *, codec: str | None, version: int | None
) -> RecordMeta:
    if version is None:
        raise ValueError("a signed record needs its write version: pass next_version(...)")
    signature = sign_record(skey, value, secret, codec=codec, version=version)
    schema = None if value is None else SCHEMA_VERSION
    return RecordMeta(
        codec=codec, writer=WRITER, schema=schema, version=version, signature=signature
    )


@functools.lru_cache(maxsize=16)
def _unsigned_headers(codec: str) -> Headers:
    # Shared between records: librdkafka copies headers, and nothing here mutates them.
    headers: Headers = [*RecordMeta(codec=codec, writer=WRITER, schema=SCHEMA_VERSION).to_headers()]
    return headers


_UNSIGNED_TOMBSTONE = RecordMeta(writer=WRITER)


def tombstone_meta(skey: str, *, secret: bytes | None, version: int | None) -> RecordMeta:
    """The metadata of a tombstone: who wrote it and, with a secret, its write version and
    signature (a tombstone deletes a state, so it is verified like a value)."""
    if secret is None:
        return _UNSIGNED_TOMBSTONE
    return _signed_meta(skey, None, secret, codec=None, version=version)


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# What serde's parse_state_key accepts, in one match: it is run on every live record.
_STATE_KEY_RE = re.compile(rf"([^_]+)_(0|[1-9][0-9]{{0,18}})_{_UUID}_{_UUID}")
_MAX_SEQ = 2**63 - 1


def split_state_key(skey: str) -> tuple[str, int]:
    """Agent key and seq of a state key Java's parser accepts; ValueError otherwise."""
    match = _STATE_KEY_RE.fullmatch(skey)
    if match is None or int(match.group(2)) > _MAX_SEQ:
        raise ValueError("not <agentKey>_<seq>_<eventUUID>_<actionUUID>")
    return match.group(1), int(match.group(2))


def _check_value(value: bytes) -> str | None:
    # Only the latest record of each key is checked, so a full decode costs little here,
    # and it guarantees that every state in the view decodes when it is read.
    try:
        decode_action_state(value)
    except SerdeError as exc:
        return str(exc)
    return None


class Checked(NamedTuple):
    """The verdict on a record read back: ``reason`` is None when it may enter the view."""

    reason: str | None
    detail: str
    codec: str | None
    version: int | None = None


_TOMBSTONE_OK = Checked(None, "", None)


def check_record(
    skey: str,
    value: bytes | None,
    headers: Headers | dict[str, HeaderValue] | None,
    secret: bytes | None,
) -> Checked:
    """Check a record's headers, signature (when a secret is set: over the key, value,
    codec and write version, which must be present) and value shape. ``value`` None is a
    tombstone: with a secret it must be signed too."""
    version = None
    try:
        if secret is None:
            if value is None:
                return _TOMBSTONE_OK
            codec = _codec_of(headers)
        else:
            meta = RecordMeta.from_headers(headers)
            codec, version = _intern(meta.codec), meta.version
            problem = _signature_problem(skey, value, meta, secret)
            if problem is not None:
                return Checked("signature", problem, codec, version)
    except SerdeError as exc:
        return Checked("headers", str(exc), None)
    if value is None:
        return Checked(None, "", None, version)
    problem = _check_value(value)
    if problem is not None:
        return Checked("value", problem, codec, version)
    return Checked(None, "", codec, version)


def _signature_problem(
    skey: str, value: bytes | None, meta: RecordMeta, secret: bytes
) -> str | None:
    kind = "tombstone" if value is None else "record"
    if meta.signature is None:
        return f"unsigned {kind}"
    if meta.version is None:
        return f"signed {kind} without a write version header ({HEADER_VERSION})"
    if not verify_record(
        skey, value, meta.signature, secret, codec=meta.codec, version=meta.version
    ):
        return "signature does not verify"
    return None


class VersionWatch:
    """The write versions a scan met per key, and the keys whose versions did not rise.

    Used only with a signing secret. Versions are read before anything is verified, so a
    key listed in ``regressed`` is one to re-check record by record, not a verdict.
    """

    __slots__ = ("_peaks", "regressed")

    def __init__(self) -> None:
        self._peaks: dict[bytes, int] = {}
        self.regressed: set[bytes] = set()

    def see(self, key: bytes, headers: Headers | dict[str, HeaderValue] | None) -> None:
        """Note one record of ``key``, in log order."""
        try:
            version = RecordMeta.from_headers(headers).version
        except SerdeError:
            return  # refused by check_record wherever it matters
        if version is None:
            return
        peak = self._peaks.get(key)
        if peak is not None and version <= peak:
            self.regressed.add(key)
        else:
            self._peaks[key] = version


def _intern(codec: str | None) -> str | None:
    return None if codec is None else sys.intern(codec)


_CODECS: dict[bytes, str] = {}


def _codec_of(headers: Headers | dict[str, HeaderValue] | None) -> str | None:
    # Without a secret only the codec header matters; reading just that one (and naming
    # each distinct value once) keeps rebuild's per-state cost low.
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    raw: HeaderValue = None
    for name, header in pairs:
        if name == HEADER_CODEC:
            raw = header
    if raw is None or isinstance(raw, str):
        return _intern(raw)
    codec = _CODECS.get(raw)
    if codec is None:
        codec = _intern(RecordMeta.from_headers([(HEADER_CODEC, raw)]).codec)
        if codec is not None and len(_CODECS) < 64:
            _CODECS[raw] = codec
    return codec
