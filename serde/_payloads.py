"""Payload codecs for call results and the registry that finds one by its header name.

A record names the codec of its payloads in a Kafka header (``actionstate.codec``), so a
reader knows whether ``resultPayload`` holds a pickle or JSON; a record without that header
(Java, or Flink Agents' Python runtime through the Java store) is read by content
(DESIGN §3, :func:`codec_of_payload`). Unpickling runs code: only
decode cloudpickle payloads from a trusted topic (DESIGN §8).
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol, runtime_checkable

import cloudpickle
import orjson

from ._errors import SerdeError

__all__ = [
    "CLOUDPICKLE_CODEC",
    "CODEC_NAMES",
    "DEFAULT_CODEC",
    "JSON_CODEC",
    "PayloadCodec",
    "codec_of_payload",
    "get_codec",
]


@runtime_checkable
class PayloadCodec(Protocol):
    """Turns a Python value into payload bytes and back; ``name`` goes into the header."""

    name: str

    def encode(self, value: Any) -> bytes:
        """Encode ``value``; raises :class:`SerdeError` when it cannot be encoded."""
        ...

    def decode(self, data: bytes) -> Any:
        """Decode ``data``; raises :class:`SerdeError` when it is not this codec's format."""
        ...


class _CloudpickleCodec:
    """cloudpickle, the default for Python values (as Flink Agents' Python runtime does)."""

    name = "cloudpickle"

    def encode(self, value: Any) -> bytes:
        try:
            return bytes(cloudpickle.dumps(value, protocol=pickle.DEFAULT_PROTOCOL))
        except Exception as e:
            raise SerdeError(f"cannot pickle a {type(value).__name__} with cloudpickle: {e}") from e

    def decode(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as e:
            # Any error while loading (unknown module, truncated data, a failing
            # __reduce__) means these bytes are not a value this process can rebuild.
            raise SerdeError(f"cannot unpickle payload: {type(e).__name__}: {e}") from e

    def __repr__(self) -> str:
        return "CLOUDPICKLE_CODEC"


class _JsonCodec:
    """UTF-8 JSON (what Java's Jackson writes for its payloads)."""

    name = "json"

    def encode(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError as e:
            raise SerdeError(f"cannot encode a {type(value).__name__} as JSON: {e}") from e

    def decode(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError) as e:
            raise SerdeError(f"payload is not UTF-8 JSON: {e}") from e

    def __repr__(self) -> str:
        return "JSON_CODEC"


CLOUDPICKLE_CODEC: PayloadCodec = _CloudpickleCodec()
JSON_CODEC: PayloadCodec = _JsonCodec()

_REGISTRY: dict[str, PayloadCodec] = {c.name: c for c in (CLOUDPICKLE_CODEC, JSON_CODEC)}

DEFAULT_CODEC: str = CLOUDPICKLE_CODEC.name
"""The payload codec a store writes with unless told otherwise."""
CODEC_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""The names of the registered payload codecs, as a record's codec header holds them."""


def get_codec(name: str) -> PayloadCodec:
    """The codec registered under ``name``; raises :class:`SerdeError` for an unknown one."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        raise SerdeError(f"unknown payload codec {name!r}; known codecs: {known}") from None


def codec_of_payload(name: str | None, data: bytes) -> PayloadCodec:
    """The codec a payload is decoded with: the one its record's header names, else by content.

    Without a header, a payload whose first byte is 0x80 (pickle protocol 2 or later; no JSON
    text starts with it) is cloudpickle, anything else JSON (what Java's Jackson writes).
    """
    if name is not None:
        return get_codec(name)
    return CLOUDPICKLE_CODEC if data[:1] == b"\x80" else JSON_CODEC
