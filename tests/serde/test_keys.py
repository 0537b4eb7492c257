"""State keys, agent-key rules, UUIDs and the partitioner (DESIGN §4). The values are
checked against a real JVM in test_jvm_vectors.py; this file checks the rules."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from actionstate.serde import (
    InvalidStateKeyError,
    SerdeError,
    StateKey,
    action_uuid,
    event_uuid,
    flink_murmur_hash,
    java_string_hash,
    name_uuid_from_bytes,
    parse_state_key,
    partition_for,
    state_key,
    validate_agent_key,
)
from actionstate.serde._jackson import jackson_sorted_json, java_double_to_string

EV = uuid.UUID("0f8fad5b-d9cb-369f-a165-70867728950e")
ACT = uuid.UUID("1f8fad5b-d9cb-369f-a165-70867728950e")


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (1, "must be a str, got int"),
        (None, "must be a str, got NoneType"),
        (b"user", "must be a str, got bytes"),
        ("", "must not be empty"),
        ("user_1", "contains '_'"),
        ("_", "contains '_'"),
    ],
)
def test_agent_keys_java_cannot_parse_back_are_rejected(key: Any, why: str) -> None:
    with pytest.raises(InvalidStateKeyError, match=why) as info:
        validate_agent_key(key)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidStateKeyError):
        state_key(key, 1, EV, ACT)
    with pytest.raises(InvalidStateKeyError):
        partition_for(key, 3)


def test_valid_agent_keys() -> None:
    for key in ("user-1", "1", "é😀", "a b", "a.b:c"):
        assert validate_agent_key(key) == key


def test_state_key_format_and_round_trip() -> None:
    key = state_key("order-42", 7, EV, ACT)
    assert key == f"order-42_7_{EV}_{ACT}"
    parsed = parse_state_key(key)
    assert parsed == StateKey("order-42", 7, EV, ACT)
    assert str(parsed) == key
    # UUIDs may be given as strings in any form uuid.UUID reads; the key is canonical
    assert state_key("k", 0, str(EV).upper(), "{" + str(ACT) + "}") == f"k_0_{EV}_{ACT}"
    assert parse_state_key(state_key("k", 2**63 - 1, EV, ACT)).seq == 2**63 - 1
    with pytest.raises(AttributeError):
        parsed.seq = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("seq", "event", "why"),
    [
        (-1, EV, "sequence number"),
        (2**63, EV, "sequence number"),
        (True, EV, "sequence number must be an int"),
        ("1", EV, "sequence number must be an int"),
        (1, "not-a-uuid", "event UUID"),
        (1, 42, "event UUID"),
    ],
)
def test_state_key_rejects_bad_parts(seq: Any, event: Any, why: str) -> None:
    with pytest.raises(InvalidStateKeyError, match=why):
        state_key("k", seq, event, ACT)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a_1_x", "3 '_'-separated parts"),
        (f"a_b_1_{EV}_{ACT}", "5 '_'-separated parts"),
        (f"_1_{EV}_{ACT}", "empty agent key"),
        (f"a_01_{EV}_{ACT}", "sequence number '01'"),
        (f"a_-1_{EV}_{ACT}", "sequence number '-1'"),
        (f"a_+1_{EV}_{ACT}", "sequence number"),
        (f"a_{2**63}_{EV}_{ACT}", "sequence number"),
        (f"a_1_{str(EV).upper()}_{ACT}", "event UUID"),
        (f"a_1_{EV}_xyz", "action UUID"),
    ],
)
def test_parse_state_key_rejects_what_java_did_not_write(key: str, why: str) -> None:
    with pytest.raises(InvalidStateKeyError, match=why):
        parse_state_key(key)


def test_parse_state_key_wants_a_str() -> None:
    with pytest.raises(InvalidStateKeyError, match="must be a str"):
        parse_state_key(b"a_1_x_y")  # type: ignore[arg-type]


def test_partition_is_stable_per_agent_key_and_in_range() -> None:
    for n in (1, 3, 16):
        parts = {partition_for(f"user-{i}", n) for i in range(200)}
        assert parts <= set(range(n))
        assert len(parts) == n  # 200 keys reach every partition
    assert partition_for("user-1", 12) == partition_for("user-1", 12)
    assert partition_for("user-1", 12) == flink_murmur_hash(java_string_hash("user-1")) % 12


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3"])
def test_partition_count_must_be_a_positive_int(n: Any) -> None:
    with pytest.raises(ValueError, match="num_partitions"):
        partition_for("user", n)


def test_java_string_hash_known_values() -> None:
    # From the String.hashCode contract: s[0]*31^(n-1) + ... + s[n-1], 32-bit wrap.
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -(2**31)
    # astral characters count as two UTF-16 code units
    assert java_string_hash("😀") == 0xD83D * 31 + 0xDE00


def test_murmur_is_never_negative() -> None:
    for code in (-(2**31), -1, 0, 1, 2**31 - 1, 123456789):
        assert 0 <= flink_murmur_hash(code) < 2**31


def test_name_uuid_from_bytes_is_md5_with_version_3() -> None:
    u = name_uuid_from_bytes(b"hello")
    assert u.version == 3
    assert u.variant == uuid.RFC_4122
    digest = bytearray(hashlib.md5(b"hello").digest())
    assert u.bytes[:6] == digest[:6]
    assert u.bytes[9:] == digest[9:]
    assert name_uuid_from_bytes(bytearray(b"hello")) == u


def test_action_uuid_is_the_name_uuid_of_the_utf8_name() -> None:
    assert action_uuid("process_order") == name_uuid_from_bytes(b"process_order")
    assert action_uuid("é") == name_uuid_from_bytes("é".encode())
    for bad in ("", None, 3, "\ud800"):
        with pytest.raises(InvalidStateKeyError):
            action_uuid(bad)  # type: ignore[arg-type]


def test_event_uuid_ignores_attribute_order_and_sorts_nested_maps() -> None:
    a = {"b": {"y": 1, "x": [{"d": 1, "c": 2}]}, "a": 1.5}
    b = {"a": 1.5, "b": {"x": [{"c": 2, "d": 1}], "y": 1}}
    assert event_uuid(a) == event_uuid(b)
    assert jackson_sorted_json(a) == b'{"a":1.5,"b":{"x":[{"c":2,"d":1}],"y":1}}'
    assert event_uuid({"a": 1}) != event_uuid({"a": 1.0})  # Java writes 1 and 1.0
    assert event_uuid({"t": (1, 2)}) == event_uuid({"t": [1, 2]})


def test_attribute_json_escapes_like_jackson() -> None:
    assert jackson_sorted_json({"s": '"\\\x00\x1f\t\n/\x7f é'}) == (
        b'{"s":"\\"\\\\\\u0000\\u001F\\t\\n/\x7f \xc3\xa9"}'
    )
    # beyond the BMP: Jackson's UTF-8 writer escapes the surrogate pair
    assert jackson_sorted_json({"e": "😀"}) == b'{"e":"\\uD83D\\uDE00"}'
    # keys sort by UTF-16 code unit: U+1F600 (0xD83D...) before U+FFFD
    assert list(jackson_sorted_json({"\ufffd": 1, "😀": 2}).decode())[2:4] == ["\\", "u"]


@pytest.mark.parametrize(
    "bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {1: "a"}, {"x": {2: 1}}]
)
def test_event_uuid_rejects_what_is_not_json(bad: Any) -> None:
    with pytest.raises(SerdeError):
        event_uuid(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (-2.5e-5, "-2.5E-5"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (5e-324, "4.9E-324"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_java_double_to_string(value: float, text: str) -> None:
    assert java_double_to_string(value) == text
