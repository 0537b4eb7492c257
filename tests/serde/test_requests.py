"""Request records: the format ``actionstate send`` writes and a worker reads back."""

from __future__ import annotations

import math
import pickle
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actionstate.serde import (
    HEADER_DEAD_LETTER_DETAIL,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTER_SOURCE,
    BadRequest,
    InvalidRequestError,
    InvalidStateKeyError,
    Request,
    RequestId,
    RequestProblem,
    SerdeError,
    dead_letter_headers,
    decode_request,
    encode_request,
    validate_agent_key,
)
from actionstate.serde._requests import _agent_key_problem
from tests.serde.test_properties import SETTINGS

MARK = "SECRET-7f3a"

# What orjson gives back exactly: 64-bit integers, finite floats, strings without lone
# surrogates (bigger integers come back as floats, so data keeps to these).
json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=12,
)
agent_keys = json_text.filter(lambda k: k != "" and "_" not in k)
actions = json_text.filter(bool)


# -- round trips ---------------------------------------------------------------------------


@SETTINGS
@given(agent_keys, actions, json_values)
def test_encode_then_decode_gives_the_request_back(agent_key: str, action: str, data: Any) -> None:
    key, value = encode_request(agent_key, action, data)
    assert key == agent_key.encode()
    assert decode_request(key, value) == Request(agent_key, action, data)


def test_the_value_is_compact_json_with_action_and_data() -> None:
    key, value = encode_request("order-42", "charge", {"order": 42, "items": [1, 2.5, None]})
    assert key == b"order-42"
    assert value == b'{"action":"charge","data":{"order":42,"items":[1,2.5,null]}}'
    assert encode_request("k", "a", None)[1] == b'{"action":"a","data":null}'


def test_unknown_fields_are_ignored_and_missing_data_is_null() -> None:
    newer = b'{"action":"charge","data":[1],"priority":3,"trace":{"id":"x"}}'
    assert decode_request(b"k", newer) == Request("k", "charge", [1])
    assert decode_request(b"k", b'{"action":"charge"}') == Request("k", "charge", None)
    assert decode_request(b"k", b' {"data": 7, "action": "a"} ') == Request("k", "a", 7)


def test_tuples_are_written_as_arrays() -> None:
    key, value = encode_request("k", "a", {"pair": (1, "x")})
    assert decode_request(key, value) == Request("k", "a", {"pair": [1, "x"]})


def test_request_and_verdict_are_frozen() -> None:
    request = Request("k", "a", None)
    with pytest.raises(FrozenInstanceError):
        request.action = "b"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        BadRequest(RequestProblem.KEY, "x").detail = "y"  # type: ignore[misc]


# -- bad records: every reason, never the contents -------------------------------------------

BAD: list[tuple[bytes | None, bytes | None, RequestProblem, str]] = [
    (None, b'{"action":"a"}', RequestProblem.KEY, "no key"),
    (b"\xff\xfe", b'{"action":"a"}', RequestProblem.KEY, "not UTF-8"),
    (b"", b'{"action":"a"}', RequestProblem.KEY, "must not be empty"),
    (f"a_{MARK}".encode(), b'{"action":"a"}', RequestProblem.KEY, "must not contain '_'"),
    (b"k", None, RequestProblem.VALUE, "no value"),
    (b"k", f"not json {MARK}".encode(), RequestProblem.VALUE, "not JSON"),
    (b"k", f'{{"action": "{MARK}"'.encode(), RequestProblem.VALUE, "not JSON"),
    (b"k", b"\xff" + MARK.encode(), RequestProblem.VALUE, "not JSON"),
    (b"k", f'["{MARK}"]'.encode(), RequestProblem.VALUE, "a JSON array, not an object"),
    (b"k", f'"{MARK}"'.encode(), RequestProblem.VALUE, "a JSON string, not an object"),
    (b"k", b"42", RequestProblem.VALUE, "a JSON number, not an object"),
    (b"k", b"null", RequestProblem.VALUE, "a JSON null, not an object"),
    (b"k", f'{{"data": "{MARK}"}}'.encode(), RequestProblem.VALUE, 'no "action"'),
    (b"k", f'{{"action": 7, "data": "{MARK}"}}'.encode(), RequestProblem.VALUE, "a JSON number"),
    (b"k", f'{{"action": ["{MARK}"]}}'.encode(), RequestProblem.VALUE, "a JSON array"),
    (b"k", b'{"action": null}', RequestProblem.VALUE, "a JSON null, not a string"),
    (b"k", f'{{"action": "", "data": "{MARK}"}}'.encode(), RequestProblem.VALUE, "empty"),
]


@pytest.mark.parametrize(("key", "value", "reason", "says"), BAD)
def test_every_bad_record_gets_its_reason_and_a_content_free_detail(
    key: bytes | None, value: bytes | None, reason: RequestProblem, says: str
) -> None:
    verdict = decode_request(key, value)
    assert isinstance(verdict, BadRequest)
    assert verdict.reason is reason
    assert says in verdict.detail
    assert MARK not in verdict.detail


def test_the_reasons_are_the_dead_letter_values() -> None:
    assert [str(r) for r in RequestProblem] == ["key", "value"]


@SETTINGS
@given(st.binary(max_size=40), st.binary(max_size=40), st.integers(0, 40))
def test_details_never_repeat_the_payload(prefix: bytes, suffix: bytes, cut: int) -> None:
    # Whatever is around (or cuts through) a marked payload, the verdict never shows it.
    marked = f'{{"action": 1, "data": "{MARK}"}}'.encode()
    value = prefix + marked[:cut] + MARK.encode() + marked[cut:] + suffix
    for key, val in (
        (MARK.encode() + b"_x", marked),
        (b"k", value),
        (prefix + MARK.encode(), value),
    ):
        verdict = decode_request(key, val)
        if isinstance(verdict, BadRequest):
            assert MARK not in verdict.detail
            assert MARK.encode() not in verdict.detail.encode()


@SETTINGS
@given(st.binary(max_size=64) | st.none(), st.binary(max_size=64) | st.none())
def test_garbage_only_ever_gives_a_verdict(key: bytes | None, value: bytes | None) -> None:
    verdict = decode_request(key, value)
    assert isinstance(verdict, Request | BadRequest)


# -- argument errors name the argument -----------------------------------------------------

ARGUMENT_ERRORS: list[tuple[Any, Any, Any, str, str]] = [
    (42, "a", None, "agent_key", "must be a str, got int"),
    ("", "a", None, "agent_key", "must not be empty"),
    ("a_b", "a", None, "agent_key", "must not contain '_'"),
    ("a\ud800", "a", None, "agent_key", "lone surrogate"),
    ("k", "", None, "action", "got an empty str"),
    ("k", None, None, "action", "got NoneType"),
    ("k", b"charge", None, "action", "got bytes"),
    ("k", "a\udc00", None, "action", "lone surrogate"),
    ("k", "a", math.nan, "data", "data is a float JSON cannot hold"),
    ("k", "a", {"x": [1, math.inf]}, "data", "data['x'][1] is a float JSON cannot hold"),
    ("k", "a", {1: "x"}, "data", "data has a key of type int"),
    ("k", "a", {"when": object()}, "data", "data['when'] is of type object"),
    ("k", "a", {1, 2}, "data", "data is of type set"),
    ("k", "a", b"raw", "data", "data is of type bytes"),
    ("k", "a", 2**64, "data", "cannot be written as JSON"),
    ("k", "a", ["\ud800"], "data", "cannot be written as JSON"),
]


@pytest.mark.parametrize(("agent_key", "action", "data", "argument", "says"), ARGUMENT_ERRORS)
def test_bad_arguments_raise_naming_the_argument(
    agent_key: Any, action: Any, data: Any, argument: str, says: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        encode_request(agent_key, action, data)
    err = caught.value
    assert isinstance(err, SerdeError)
    assert isinstance(err, ValueError)
    assert err.path == argument
    assert str(err).startswith(f"{argument}: ")
    assert says in str(err)
    assert says in err.problem or argument == "data"


def test_argument_errors_do_not_repeat_the_agent_key() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        encode_request(f"x_{MARK}", "a", None)
    assert MARK not in str(caught.value)


def test_the_argument_error_survives_pickling() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        encode_request("k", "", None)
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is InvalidRequestError
    assert (str(again), again.path, again.problem) == (
        str(caught.value),
        "action",
        caught.value.problem,
    )


@SETTINGS
@given(st.text(st.characters(exclude_categories=[]), max_size=8) | st.integers() | st.none())
def test_the_key_rule_is_validate_agent_key_plus_utf8(agent_key: Any) -> None:
    try:
        validate_agent_key(agent_key)
        java_ok = True
    except InvalidStateKeyError:
        java_ok = False
    utf8_ok = not isinstance(agent_key, str) or not any(
        0xD800 <= ord(c) <= 0xDFFF for c in agent_key
    )
    assert (_agent_key_problem(agent_key) is None) == (java_ok and utf8_ok)


# -- request ids ---------------------------------------------------------------------------


def test_request_id_text_and_order() -> None:
    rid = RequestId(3, 1042)
    assert str(rid) == "3:1042"
    assert RequestId.parse("3:1042") == rid
    assert RequestId.parse(str(RequestId(0, 0))) == RequestId(0, 0)
    assert sorted([RequestId(1, 5), RequestId(0, 9), RequestId(1, 2)]) == [
        RequestId(0, 9),
        RequestId(1, 2),
        RequestId(1, 5),
    ]
    assert len({RequestId(1, 2), RequestId(1, 2)}) == 1


@pytest.mark.parametrize(
    "text", ["", "3", "3:", ":5", "3:x", "-1:4", "3:4:5", " 3:4", "3:4 ", "³:4"]
)
def test_request_id_parse_names_the_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="bad request id") as caught:
        RequestId.parse(text)
    assert repr(text) in str(caught.value)


def test_request_id_refuses_impossible_parts() -> None:
    with pytest.raises(ValueError, match="offset must be an int >= 0"):
        RequestId(0, -1)
    with pytest.raises(ValueError, match="partition must be an int >= 0"):
        RequestId(True, 1)


@SETTINGS
@given(st.integers(0, 2**31), st.integers(0, 2**63 - 1))
def test_request_id_round_trips(partition: int, offset: int) -> None:
    rid = RequestId(partition, offset)
    assert RequestId.parse(str(rid)) == rid


# -- dead letters --------------------------------------------------------------------------


def test_dead_letter_headers() -> None:
    assert HEADER_DEAD_LETTER_REASON == "actionstate.dead-letter.reason"
    assert HEADER_DEAD_LETTER_SOURCE == "actionstate.dead-letter.source"
    assert HEADER_DEAD_LETTER_DETAIL == "actionstate.dead-letter.detail"
    headers = dead_letter_headers("value", "the value is not JSON", "orders-requests", 3, 1042)
    assert headers == [
        ("actionstate.dead-letter.reason", b"value"),
        ("actionstate.dead-letter.source", b"orders-requests:3:1042"),
        ("actionstate.dead-letter.detail", b"the value is not JSON"),
    ]


def test_dead_letter_detail_is_cut_to_500_characters() -> None:
    [_, _, (_, detail)] = dead_letter_headers("key", "é" * 600, "t", 0, 0)
    assert isinstance(detail, bytes)
    assert detail.decode() == "é" * 500


def test_a_verdict_fits_the_dead_letter_headers() -> None:
    verdict = decode_request(b"k", b"[]")
    assert isinstance(verdict, BadRequest)
    headers = dict(dead_letter_headers(verdict.reason, verdict.detail, "t", 1, 2))
    assert headers[HEADER_DEAD_LETTER_REASON] == b"value"
    detail = headers[HEADER_DEAD_LETTER_DETAIL]
    assert isinstance(detail, bytes)
    assert detail.decode() == verdict.detail
