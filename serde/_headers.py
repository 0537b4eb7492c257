"""Kafka record headers carrying the project's metadata, and the record HMAC.

The Java reader rejects unknown JSON properties, so everything the project adds (payload
codec, writer id, schema version, per-key write version, signature) lives in headers,
which Java ignores.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._errors import SerdeError

__all__ = [
    "HEADER_CODEC",
    "HEADER_SCHEMA",
    "HEADER_SIGNATURE",
    "HEADER_VERSION",
    "HEADER_WRITER",
    "HTTP_HEADER_CODEC",
    "HTTP_HEADER_SCHEMA",
    "HTTP_HEADER_SIGNATURE",
    "HTTP_HEADER_VERSION",
    "HTTP_HEADER_WRITER",
    "HeaderList",
    "HeaderValue",
    "Headers",
    "RecordMeta",
    "sign_record",
    "verify_record",
]

HEADER_CODEC = "actionstate.codec"
HEADER_WRITER = "actionstate.writer"
HEADER_SCHEMA = "actionstate.schema"
HEADER_SIGNATURE = "actionstate.hmac-sha256"
HEADER_VERSION = "actionstate.version"

# The same metadata as HTTP headers, on the sidecar's API (client/_sidecar_store.py).
HTTP_HEADER_CODEC = "ActionState-Codec"
HTTP_HEADER_WRITER = "ActionState-Writer"
HTTP_HEADER_SCHEMA = "ActionState-Schema"
HTTP_HEADER_SIGNATURE = "ActionState-Signature"
HTTP_HEADER_VERSION = "ActionState-Version"

HeaderValue = str | bytes | None
"""One Kafka header value as confluent-kafka gives or takes it."""
Headers = Iterable[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None
"""A record's headers as read: pairs, a mapping, or none."""
HeaderList = list[tuple[str, HeaderValue]]
"""A record's headers as written: a list of (name, value) pairs."""


def _text(name: str, raw: HeaderValue) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise SerdeError("header value is not UTF-8 text", path=f"header {name}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMeta:
    """The project's metadata of one record, read from and written to Kafka headers."""

    codec: str | None = None
    writer: str | None = None
    schema: int | None = None
    version: int | None = None
    """The key's write version: each record of a key carries a larger one than the last."""
    signature: str | None = None

    def to_headers(self) -> list[tuple[str, bytes]]:
        """Headers for the fields that are set, as confluent-kafka takes them."""
        out: list[tuple[str, bytes]] = []
        if self.codec is not None:
            out.append((HEADER_CODEC, self.codec.encode("utf-8")))
        if self.writer is not None:
            out.append((HEADER_WRITER, self.writer.encode("utf-8")))
        if self.schema is not None:
            out.append((HEADER_SCHEMA, str(self.schema).encode("ascii")))
        if self.version is not None:
            out.append((HEADER_VERSION, str(self.version).encode("ascii")))
        if self.signature is not None:
            out.append((HEADER_SIGNATURE, self.signature.encode("ascii")))
        return out

    @classmethod
    def from_headers(cls, headers: Headers) -> RecordMeta:
        """Read the metadata from a record's headers (a list of pairs, a mapping or None);
        other headers are ignored, the last of repeated ones wins. Raises
        :class:`SerdeError` for a header of ours that cannot be read."""
        if headers is None:
            return cls()
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        found: dict[str, str | None] = {}
        try:
            for name, raw in pairs:
                if name in _FIELDS:
                    found[_FIELDS[name]] = _text(name, raw)
        except (TypeError, ValueError) as e:
            if isinstance(e, SerdeError):
                raise
            raise SerdeError(f"record headers are not (name, value) pairs: {e}") from None
        schema = _count(HEADER_SCHEMA, found.pop("schema", None))
        version = _count(HEADER_VERSION, found.pop("version", None))
        return cls(schema=schema, version=version, **found)


def _count(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_DIGITS:
        raise SerdeError(
            f"expected a non-negative integer of at most {_MAX_DIGITS} digits, got {text[:40]!r}",
            path=f"header {name}",
        )
    return int(text)


_MAX_DIGITS = 19  # what fits a Java long, so any reader can hold it


_FIELDS = {
    HEADER_CODEC: "codec",
    HEADER_WRITER: "writer",
    HEADER_SCHEMA: "schema",
    HEADER_VERSION: "version",
    HEADER_SIGNATURE: "signature",
}


# Names the MAC's layout, so a signature made under another layout can never verify.
_LAYOUT = b"actionstate-record-hmac/2"


def _field(mac: hmac.HMAC, data: bytes | None) -> None:
    # Each field is marked present or absent and length-prefixed, so no two different
    # (key, codec, version, value) tuples feed the MAC the same bytes: "a"+"bc" != "ab"+"c",
    # no codec != an empty codec, a tombstone != an empty value.
    if data is None:
        mac.update(b"\x00")
        return
    mac.update(b"\x01")
    mac.update(len(data).to_bytes(8, "big"))
    mac.update(data)


def _mac(
    key: str, value: bytes | None, secret: bytes, codec: str | None, version: int | None
) -> hmac.HMAC:
    if not secret:
        raise SerdeError("the record signing secret is empty: configure a non-empty key")
    mac = hmac.new(secret, _LAYOUT, hashlib.sha256)
    _field(mac, key.encode("utf-8"))
    _field(mac, None if codec is None else codec.encode("utf-8"))
    _field(mac, None if version is None else str(version).encode("ascii"))
    _field(mac, value)
    return mac


def sign_record(
    key: str,
    value: bytes | None,
    secret: bytes,
    *,
    codec: str | None = None,
    version: int | None = None,
) -> str:
    """Hex HMAC-SHA256 under ``secret`` of a record's state key, value (None: a
    tombstone), codec header and write version header."""
    return _mac(key, value, secret, codec, version).hexdigest()


def verify_record(
    key: str,
    value: bytes | None,
    signature: str | None,
    secret: bytes,
    *,
    codec: str | None = None,
    version: int | None = None,
) -> bool:
    """Whether ``signature`` is :func:`sign_record` of this key, value, codec and version;
    False when it is missing or malformed. Compares in constant time."""
    if not isinstance(signature, str):
        return False
    expected = _mac(key, value, secret, codec, version).hexdigest()
    return hmac.compare_digest(expected, signature.lower()) if signature.isascii() else False
