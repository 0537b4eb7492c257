"""Record rules: the Kafka record of a state (value and headers) and the check of one read back.

Every reader applies the same rules in the same order, key, headers, signature, value: a
store's rebuild, the sidecar's view and ``inspect``. A record that fails one is named by a
:class:`BadReason`, whichever reader met it.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import metadata
from typing import Any, NamedTuple, Protocol

from ._decode import check_action_state, decode_action_state
from ._encode import encode_action_state
from ._errors import SerdeError
from ._headers import (
    HEADER_CODEC,
    HEADER_SCHEMA,
    HEADER_SIGNATURE,
    HEADER_VERSION,
    HEADER_WRITER,
    HeaderList,
    Headers,
    HeaderValue,
    RecordMeta,
    sign_record,
    verify_record,
)
from ._keys import parse_state_key, split_state_key
from ._models import ActionState

__all__ = [
    "SCHEMA_VERSION",
    "WRITER",
    "BadReason",
    "Checked",
    "LogRecord",
    "RawRecord",
    "StateKeyParts",
    "VersionWatch",
    "check_key",
    "check_record",
    "codec_headers",
    "encode_record",
    "next_version",
    "signature_problem",
    "tombstone_meta",
]

SCHEMA_VERSION = 1
"""The ``actionstate.schema`` header of the records this version writes."""


def _writer() -> str:
    try:
        return f"kafka-actionstate/{metadata.version('kafka-actionstate')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "kafka-actionstate"


WRITER = _writer()
"""The ``actionstate.writer`` header of the records this process writes."""


class BadReason(StrEnum):
    """Why a record read back cannot be used (the values are what reports and JSON show)."""

    KEY = "key"  # no key, or not a state key
    HEADERS = "headers"  # a project header that cannot be read
    SIGNATURE = "signature"  # unsigned or tampered, while a signing secret is set
    VERSION = "version"  # signed, but its write version is not above its key's last good one
    VALUE = "value"  # not an ActionState


class RawRecord(Protocol):
    """A record as read: the part of confluent-kafka's ``Message`` the readers use."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...


class LogRecord:
    """A record of an in-memory log, shaped like a confluent-kafka ``Message``."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_value")

    def __init__(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: HeaderList | None,
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

    def headers(self) -> HeaderList | None:
        """The record headers."""
        return self._headers

    def partition(self) -> int:
        """The partition the record is in."""
        return self._partition

    def offset(self) -> int:
        """The record's offset in its partition."""
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        """Kafka's (timestamp type, milliseconds): type 0, none, for an in-memory record."""
        return 0, 0


def next_version(known: int | None) -> int:
    """The write version of a key's next record: above the last one known for the key, and
    at least the writer's clock in microseconds, so a writer that never saw the key's
    latest record (it was pruned, or written before this process rebuilt) still writes a
    newer version than it in practice."""
    floor = 0 if known is None else known + 1
    return max(floor, time.time_ns() // 1000)


def encode_record(
    skey: str, state: object, *, codec: str, secret: bytes | None, version: int | None
) -> tuple[bytes, HeaderList]:
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
    headers: HeaderList = [*meta.to_headers()]
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
def _unsigned_headers(codec: str) -> HeaderList:
    # Shared between records: librdkafka copies headers, and nothing here mutates them.
    headers: HeaderList = [
        *RecordMeta(codec=codec, writer=WRITER, schema=SCHEMA_VERSION).to_headers()
    ]
    return headers


_UNSIGNED_TOMBSTONE = RecordMeta(writer=WRITER)


def tombstone_meta(skey: str, *, secret: bytes | None, version: int | None) -> RecordMeta:
    """The metadata of a tombstone: who wrote it and, with a secret, its write version and
    signature (a tombstone deletes a state, so it is verified like a value)."""
    if secret is None:
        return _UNSIGNED_TOMBSTONE
    return _signed_meta(skey, None, secret, codec=None, version=version)


class Checked(NamedTuple):
    """The verdict on a record read back: ``reason`` is None when it may be used.

    ``meta`` is set when the headers were read in full (with a secret, or ``decode``),
    ``state`` when the value was decoded (``decode``, and not a tombstone), ``completed``
    for a good value: whether its state is completed, known without decoding it.
    """

    reason: BadReason | None
    detail: str
    codec: str | None
    version: int | None = None
    meta: RecordMeta | None = None
    state: ActionState | None = None
    completed: bool | None = None


class StateKeyParts(NamedTuple):
    """A record key that is a state key: as text, and its agent key and seq."""

    skey: str
    agent_key: str
    seq: int


_NO_KEY = Checked(BadReason.KEY, "record has no key", None)
_NOT_UTF8 = Checked(BadReason.KEY, "key is not UTF-8", None)
_TOMBSTONE_OK = Checked(None, "", None)


def check_key(raw: bytes | None) -> StateKeyParts | Checked:
    """The parts of a record key, or the ``BadReason.KEY`` verdict saying what is wrong."""
    if raw is None:
        return _NO_KEY
    try:
        skey = raw.decode()
    except UnicodeDecodeError:
        return _NOT_UTF8
    try:
        agent_key, seq = split_state_key(skey)
    except ValueError:
        # Only for a bad key: the full parser names the part at fault.
        try:
            parse_state_key(skey)
        except ValueError as exc:
            return Checked(BadReason.KEY, str(exc), None)
        raise  # pragma: no cover - the two parsers accept the same keys
    return StateKeyParts(skey, agent_key, seq)


def check_record(
    skey: str,
    value: bytes | None,
    headers: Headers,
    secret: bytes | None,
    *,
    decode: bool = False,
) -> Checked:
    """Check a record's headers, signature (when a secret is set: over the key, value,
    codec and write version, which must be present) and value shape. ``value`` None is a
    tombstone: with a secret it must be signed too. A good value's verdict says whether
    its state is ``completed``; with ``decode`` it also carries the headers read
    (``meta``) and the decoded ``state``, so a caller decodes once."""
    version = None
    meta = None
    try:
        if secret is None and not decode:
            if value is None:
                return _TOMBSTONE_OK
            codec = _codec_of(headers)
        else:
            meta = RecordMeta.from_headers(headers)
            codec, version = _intern(meta.codec), meta.version
            if secret is not None:
                problem = signature_problem(skey, value, meta, secret)
                if problem is not None:
                    return Checked(BadReason.SIGNATURE, problem, codec, version, meta)
    except SerdeError as exc:
        return Checked(BadReason.HEADERS, str(exc), None)
    if value is None:
        return Checked(None, "", None, version, meta)
    try:
        if decode:
            state = decode_action_state(value)
            return Checked(None, "", codec, version, meta, state, state.completed)
        # The decoder's parser and rules without building the state: a value that passes
        # here decodes, so every state in a view decodes when it is read.
        completed = check_action_state(value)
    except SerdeError as exc:
        return Checked(BadReason.VALUE, str(exc), codec, version, meta)
    return Checked(None, "", codec, version, None, None, completed)


def signature_problem(
    skey: str, value: bytes | None, meta: RecordMeta, secret: bytes
) -> str | None:
    """What is wrong with a record's signature under ``secret``; None when it verifies."""
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

    def see(self, key: bytes, headers: Headers) -> None:
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


def _pairs(headers: Headers) -> Iterable[tuple[str, HeaderValue]]:
    # ``type() is list`` first: an ABC isinstance check costs more than the rest of a read.
    if type(headers) is list or not isinstance(headers, Mapping):
        return headers or ()
    return headers.items()


_OURS = frozenset({HEADER_CODEC, HEADER_WRITER, HEADER_SCHEMA, HEADER_VERSION, HEADER_SIGNATURE})
_UNSEEN: Any = object()
# The codec named by each distinct set of our headers already read: a writer's records
# share them, so a rebuild reads each set once.
_VERDICTS: dict[tuple[tuple[str, HeaderValue], ...], str | None] = {}


def _codec_of(headers: Headers) -> str | None:
    # Without a secret only the codec matters, but every header of ours must still be
    # readable: the verdict of RecordMeta.from_headers, which the decode path uses.
    if not headers:
        return None
    ours = tuple(pair for pair in _pairs(headers) if pair[0] in _OURS)
    codec = _VERDICTS.get(ours, _UNSEEN)
    if codec is _UNSEEN:
        codec = _intern(RecordMeta.from_headers(ours).codec)
        if len(_VERDICTS) < 256:
            _VERDICTS[ours] = codec
    return codec  # type: ignore[no-any-return]


_CODEC_HEADERS: dict[str, HeaderList] = {}
_NO_HEADERS: HeaderList = []


def codec_headers(headers: Headers) -> HeaderList:
    """What :func:`check_record` needs of ``headers`` without a secret: the codec header
    alone, as a list shared by every record with the same codec (nothing mutates it), or
    the headers themselves when one of ours cannot be read (the check then refuses the
    record). A reader keeps this instead of a record's headers until the record is
    checked, for the same verdict at a fraction of the memory."""
    if not headers:
        return _NO_HEADERS
    try:
        codec = _codec_of(headers)
    except SerdeError:
        return list(_pairs(headers))
    if codec is None:
        return _NO_HEADERS
    shared = _CODEC_HEADERS.get(codec)
    if shared is None:
        shared = [(HEADER_CODEC, codec.encode())]
        if len(_CODEC_HEADERS) < 64:
            _CODEC_HEADERS[codec] = shared
    return shared
