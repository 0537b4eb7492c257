"""Payload codecs, record headers and the record HMAC (DESIGN §3, §8)."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    HEADER_CODEC,
    HEADER_SCHEMA,
    HEADER_SIGNATURE,
    HEADER_WRITER,
    JSON_CODEC,
    PayloadCodec,
    RecordMeta,
    SerdeError,
    get_codec,
    sign_record,
    verify_record,
)


class Boom(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code


def test_cloudpickle_round_trips_values_exceptions_and_lambdas() -> None:
    codec = get_codec("cloudpickle")
    assert codec is CLOUDPICKLE_CODEC
    assert isinstance(codec, PayloadCodec)
    for value in (None, 1, "x", {"a": [1, 2.5]}, b"\x00", (1, "t")):
        assert codec.decode(codec.encode(value)) == value
    exc = codec.decode(codec.encode(Boom(402, "payment required")))
    assert isinstance(exc, Boom)
    assert exc.code == 402
    double = codec.decode(codec.encode(lambda x: x * 2))
    assert double(21) == 42


def test_json_codec_round_trip_and_java_payloads() -> None:
    codec = get_codec("json")
    assert codec is JSON_CODEC
    assert codec.encode({"a": [1, "b"]}) == b'{"a":[1,"b"]}'
    assert codec.decode(b'{"amount": 12.5}') == {"amount": 12.5}


def test_codecs_raise_serde_error() -> None:
    with pytest.raises(SerdeError, match="cannot pickle"):
        CLOUDPICKLE_CODEC.encode(threading.Lock())
    with pytest.raises(SerdeError, match="cannot unpickle"):
        CLOUDPICKLE_CODEC.decode(b"not a pickle")
    with pytest.raises(SerdeError, match="cannot unpickle"):
        CLOUDPICKLE_CODEC.decode(pickle.dumps(1)[:-1])
    with pytest.raises(SerdeError, match="cannot encode a object as JSON"):
        JSON_CODEC.encode(object())
    with pytest.raises(SerdeError, match="not UTF-8 JSON"):
        JSON_CODEC.decode(b"\x80")


@pytest.mark.parametrize("name", ["pickle", "", "JSON", None, 3])
def test_get_codec_unknown_name(name: Any) -> None:
    with pytest.raises(
        SerdeError, match=r"unknown payload codec .*; known codecs: cloudpickle, json"
    ):
        get_codec(name)


def test_record_meta_headers_round_trip() -> None:
    meta = RecordMeta(codec="cloudpickle", writer="worker-1", schema=1, signature="ab" * 32)
    headers = meta.to_headers()
    assert headers == [
        (HEADER_CODEC, b"cloudpickle"),
        (HEADER_WRITER, b"worker-1"),
        (HEADER_SCHEMA, b"1"),
        (HEADER_SIGNATURE, ("ab" * 32).encode()),
    ]
    assert RecordMeta.from_headers(headers) == meta
    assert RecordMeta.from_headers(dict(headers)) == meta
    assert RecordMeta().to_headers() == []
    assert RecordMeta.from_headers(None) == RecordMeta()
    # foreign headers are ignored; the last of repeated headers wins; None means absent
    assert RecordMeta.from_headers(
        [
            ("traceparent", b"00-x"),
            (HEADER_CODEC, b"json"),
            (HEADER_CODEC, b"cloudpickle"),
            (HEADER_WRITER, None),
        ]
    ) == RecordMeta(codec="cloudpickle")


@pytest.mark.parametrize(
    "headers",
    [
        [(HEADER_SCHEMA, b"one")],
        [(HEADER_SCHEMA, b"-1")],
        [(HEADER_CODEC, b"\xff\xfe")],
        [("only-a-name",)],
        [42],
    ],
)
def test_unreadable_headers_raise_serde_error(headers: Any) -> None:
    with pytest.raises(SerdeError):
        RecordMeta.from_headers(headers)


def test_record_meta_is_frozen_and_keyword_only() -> None:
    meta = RecordMeta(codec="json")
    with pytest.raises(AttributeError):
        meta.codec = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RecordMeta("json")  # type: ignore[misc]


def test_sign_and_verify() -> None:
    secret = b"s3cret"
    sig = sign_record("k_1_a_b", b'{"completed":false}', secret)
    assert len(sig) == 64
    assert int(sig, 16) >= 0
    assert verify_record("k_1_a_b", b'{"completed":false}', sig, secret)
    assert verify_record("k_1_a_b", b'{"completed":false}', sig.upper(), secret)
    assert not verify_record("k_1_a_b", b'{"completed":true}', sig, secret)
    assert not verify_record("k_2_a_b", b'{"completed":false}', sig, secret)
    assert not verify_record("k_1_a_b", b'{"completed":false}', sig, b"other")
    assert not verify_record("k_1_a_b", b'{"completed":false}', None, secret)
    assert not verify_record("k_1_a_b", b'{"completed":false}', "zz", secret)
    assert not verify_record("k_1_a_b", b'{"completed":false}', "é" * 64, secret)
    # key and value are framed: moving bytes between them changes the signature
    assert sign_record("ab", b"c", secret) != sign_record("a", b"bc", secret)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(SerdeError, match="secret is empty"):
        sign_record("k", b"v", b"")
