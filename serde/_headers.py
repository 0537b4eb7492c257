"""Kafka record headers carrying the project's metadata, and the record HMAC.

The Java reader rejects unknown JSON properties, so everything the project adds (payload
codec, writer id, schema version, signature) lives in headers, which Java ignores.
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
    "HEADER_WRITER",
    "RecordMeta",
    "sign_record",
    "verify_record",
]

HEADER_CODEC = "actionstate.codec"
HEADER_WRITER = "actionstate.writer"
HEADER_SCHEMA = "actionstate.schema"
HEADER_SIGNATURE = "actionstate.hmac-sha256"

HeaderValue = str | bytes | None
Headers = Iterable[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None


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
        schema_text = found.pop("schema", None)
        schema = None
        if schema_text is not None:
            if not schema_text.isascii() or not schema_text.isdigit():
                raise SerdeError(
                    f"expected a non-negative integer, got {schema_text[:40]!r}",
                    path=f"header {HEADER_SCHEMA}",
                )
            schema = int(schema_text)
        return cls(schema=schema, **found)


_FIELDS = {
    HEADER_CODEC: "codec",
    HEADER_WRITER: "writer",
    HEADER_SCHEMA: "schema",
    HEADER_SIGNATURE: "signature",
}


def _mac(key: str, value: bytes, secret: bytes) -> hmac.HMAC:
    if not secret:
        raise SerdeError("the record signing secret is empty: configure a non-empty key")
    key_bytes = key.encode("utf-8")
    # Length-prefixing the key keeps (key, value) pairs unambiguous: "a"+"bc" != "ab"+"c".
    mac = hmac.new(secret, len(key_bytes).to_bytes(4, "big"), hashlib.sha256)
    mac.update(key_bytes)
    mac.update(value)
    return mac


def sign_record(key: str, value: bytes, secret: bytes) -> str:
    """Hex HMAC-SHA256 of a record's state key and value bytes under ``secret``."""
    return _mac(key, value, secret).hexdigest()


def verify_record(key: str, value: bytes, signature: str | None, secret: bytes) -> bool:
    """Whether ``signature`` is the HMAC of this key and value; False when it is missing or
    malformed. Compares in constant time."""
    if not isinstance(signature, str):
        return False
    expected = _mac(key, value, secret).hexdigest()
    return hmac.compare_digest(expected, signature.lower()) if signature.isascii() else False
