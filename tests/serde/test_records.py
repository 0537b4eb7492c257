"""The record rules: one checker names every bad record with a BadReason."""

from __future__ import annotations

import re
import uuid

import pytest

from actionstate.serde import (
    CODEC_NAMES,
    DEFAULT_CODEC,
    MAX_SEQ,
    STATE_KEY_PATTERN,
    ActionState,
    BadReason,
    Checked,
    InvalidStateKeyError,
    RecordMeta,
    StateKeyParts,
    check_key,
    check_record,
    encode_record,
    next_version,
    split_state_key,
    state_key,
    tombstone_meta,
    validate_seq,
)

SKEY = state_key("k", 7, uuid.uuid4(), uuid.uuid4())
SECRET = b"s3cret"


def _state() -> ActionState:
    return ActionState(completed=True)


def test_the_reasons_are_the_strings_reports_show() -> None:
    assert [r.value for r in BadReason] == ["key", "headers", "signature", "version", "value"]
    assert BadReason.KEY == "key"


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (None, "record has no key"),
        (b"\xff\xfe", "key is not UTF-8"),
        (b"k_7_x_y", "event UUID"),
        (f"k_{MAX_SEQ + 1}_{uuid.uuid4()}_{uuid.uuid4()}".encode(), "sequence number"),
    ],
)
def test_a_bad_key_is_named_key(raw: bytes | None, detail: str) -> None:
    checked = check_key(raw)
    assert isinstance(checked, Checked)
    assert checked.reason is BadReason.KEY
    assert detail in checked.detail


def test_a_good_key_gives_its_parts() -> None:
    assert check_key(SKEY.encode()) == StateKeyParts(SKEY, "k", 7)
    assert split_state_key(SKEY) == ("k", 7)
    assert re.fullmatch(STATE_KEY_PATTERN, SKEY)


def test_bad_headers_signature_and_value() -> None:
    value, headers = encode_record(SKEY, _state(), codec=DEFAULT_CODEC, secret=None, version=None)
    assert check_record(SKEY, value, headers, None).reason is None
    bad_headers = [("actionstate.version", b"x")]
    assert check_record(SKEY, value, bad_headers, SECRET).reason is BadReason.HEADERS
    assert check_record(SKEY, value, headers, SECRET).reason is BadReason.SIGNATURE
    assert check_record(SKEY, b"{not json", headers, None).reason is BadReason.VALUE


def test_a_tombstone_needs_a_signature_with_a_secret() -> None:
    assert check_record(SKEY, None, [], None).reason is None
    unsigned = check_record(SKEY, None, [], SECRET)
    assert (unsigned.reason, unsigned.detail) == (BadReason.SIGNATURE, "unsigned tombstone")
    meta = tombstone_meta(SKEY, secret=SECRET, version=next_version(None))
    signed = check_record(SKEY, None, meta.to_headers(), SECRET)
    assert signed.reason is None
    assert signed.version == meta.version


def test_decode_gives_the_state_and_the_headers_once() -> None:
    version = next_version(None)
    value, headers = encode_record(SKEY, _state(), codec="json", secret=SECRET, version=version)
    checked = check_record(SKEY, value, headers, SECRET, decode=True)
    assert checked.reason is None
    assert checked.state == _state()
    assert isinstance(checked.meta, RecordMeta)
    assert (checked.codec, checked.version, checked.meta.version) == ("json", version, version)
    assert check_record(SKEY, value, headers, SECRET).state is None


def test_one_seq_validator() -> None:
    assert validate_seq(MAX_SEQ) == MAX_SEQ
    with pytest.raises(TypeError, match="up_to_seq must be an int"):
        validate_seq(True, "up_to_seq")
    with pytest.raises(InvalidStateKeyError, match="seq must be between"):
        validate_seq(-1)
    with pytest.raises(InvalidStateKeyError):
        validate_seq("1")


def test_codec_names() -> None:
    assert DEFAULT_CODEC == "cloudpickle"
    assert CODEC_NAMES == ("cloudpickle", "json")
