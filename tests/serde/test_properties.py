"""Hypothesis properties: round trips keep everything, and garbage only ever raises
SerdeError."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionstate.serde import (
    ActionState,
    CallResult,
    CallStatus,
    Event,
    InvalidStateKeyError,
    MemoryUpdate,
    SerdeError,
    decode_action_state,
    encode_action_state,
    event_uuid,
    java_string_hash,
    parse_state_key,
    partition_for,
    state_key,
)

SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# Integers of any size (Java BigInteger) round-trip, and so do lone surrogates (a Java
# string can hold one; Jackson writes it as an escape).
text = st.text(st.characters(exclude_categories=[]), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
payloads = st.none() | st.binary(max_size=64)
statuses = st.sampled_from([None, *CallStatus])
uuids = st.uuids().map(str)
event_classes = st.sampled_from(
    ["org.apache.flink.agents.api.InputEvent", "org.apache.flink.agents.api.OutputEvent"]
)


# Pydantic refuses a keyword argument named with a lone surrogate: unknown fields of models
# built in Python are named without (decoded ones may have any name).
names = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


def extras(known: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(names.filter(lambda k: k not in known), json_values, max_size=2)


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        class_name=draw(event_classes | text.filter(bool)),
        id=draw(uuids | st.none()),
        type=draw(text.filter(bool)),
        attributes=draw(st.dictionaries(text, json_values, max_size=4)),
        **draw(extras({"@class", "id", "type", "attributes", "class_name"})),
    )


@st.composite
def memory_updates(draw: st.DrawFn) -> MemoryUpdate:
    return MemoryUpdate(path=draw(text), value=draw(json_values), **draw(extras({"path", "value"})))


@st.composite
def call_results(draw: st.DrawFn) -> CallResult:
    known = {"functionId", "argsDigest", "resultPayload", "exceptionPayload", "status"}
    snake = {"function_id", "args_digest", "result_payload", "exception_payload"}
    fields: dict[str, Any] = {
        "function_id": draw(text),
        "args_digest": draw(text),
        "result_payload": draw(payloads),
        "exception_payload": draw(payloads),
    }
    status = draw(st.sampled_from(["absent", None, *CallStatus]))
    if status != "absent":
        fields["status"] = status
    return CallResult(**fields, **draw(extras(known | snake)))


@st.composite
def action_states(draw: st.DrawFn) -> ActionState:
    known = {
        "taskEvent",
        "sensoryMemoryUpdates",
        "shortTermMemoryUpdates",
        "outputEvents",
        "callResults",
        "completed",
    }
    return ActionState(
        task_event=draw(st.none() | events()),
        sensory_memory_updates=draw(st.lists(memory_updates(), max_size=3)),
        short_term_memory_updates=draw(st.lists(memory_updates(), max_size=3)),
        output_events=draw(st.lists(events(), max_size=2)),
        call_results=draw(st.lists(call_results(), max_size=4)),
        completed=draw(st.booleans()),
        **draw(extras(known | {"task_event", "call_results", "output_events"})),
    )


@SETTINGS
@given(action_states())
def test_decode_of_encode_is_identity(state: ActionState) -> None:
    data = encode_action_state(state)
    back = decode_action_state(data)
    assert back == state
    assert encode_action_state(back) == data  # untouched
    back._build_all()
    assert encode_action_state(back) == data  # every nested model built
    for c, original in zip(back.call_results, state.call_results, strict=True):
        assert c.model_fields_set == original.model_fields_set  # absent status stays absent


@SETTINGS
@given(action_states(), st.data())
def test_encode_of_decode_keeps_unknown_fields_of_any_record(
    state: ActionState, data: st.DataObject
) -> None:
    # Shuffle key order and drop optional fields: what another writer might produce.
    # (The standard library's JSON: orjson refuses lone surrogates.)
    wire = json.loads(encode_action_state(state))
    for obj in _objects(wire):
        keys = data.draw(st.permutations(list(obj)))
        items = [(k, obj[k]) for k in keys]
        obj.clear()
        obj.update(items)
    for key in data.draw(st.lists(st.sampled_from(sorted(wire)), unique=True, max_size=3)):
        del wire[key]
    decoded = decode_action_state(json.dumps(wire).encode())
    untouched = json.loads(encode_action_state(decoded))
    assert _contains(untouched, wire)
    assert untouched.keys() - wire.keys() <= KNOWN_STATE_FIELDS
    decoded._build_all()
    for event in decoded.output_events:
        event.type = event.type  # written from the model, not as read
    rewritten = json.loads(encode_action_state(decoded))
    assert _contains(rewritten, wire)
    assert rewritten.keys() - wire.keys() <= KNOWN_STATE_FIELDS
    for ours, theirs in zip(rewritten["outputEvents"], wire.get("outputEvents", []), strict=True):
        assert list(ours) == list(theirs)  # an event keeps the field order it was read in


KNOWN_STATE_FIELDS = {
    "taskEvent",
    "sensoryMemoryUpdates",
    "shortTermMemoryUpdates",
    "outputEvents",
    "callResults",
    "completed",
}


def _objects(wire: dict[str, Any]) -> list[dict[str, Any]]:
    out = [wire]
    if wire["taskEvent"] is not None:
        out.append(wire["taskEvent"])
    for key in ("sensoryMemoryUpdates", "shortTermMemoryUpdates", "outputEvents", "callResults"):
        out.extend(wire[key])
    return out


def _contains(big: Any, small: Any) -> bool:
    """Every key of ``small`` is in ``big`` with an equal value (recursively for records);
    ``big`` may add the known fields a Java writer always writes."""
    if isinstance(small, dict) and isinstance(big, dict):
        return all(k in big and _contains(big[k], v) for k, v in small.items())
    if isinstance(small, list) and isinstance(big, list):
        return len(big) == len(small) and all(map(_contains, big, small))
    return bool(big == small) or (big == [] and small is None)


# --- garbage ----------------------------------------------------------------------------------


def _decode_only_raises_serde_error(data: bytes) -> None:
    try:
        state = decode_action_state(data)
    except SerdeError as e:
        error = str(e)
    else:
        # whatever was accepted is a complete state that writes back and reads again
        assert decode_action_state(encode_action_state(state)) == state
        return
    assert "invalid item" not in error  # the fast and the detailed checks agree


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_serde_error(data: bytes) -> None:
    _decode_only_raises_serde_error(data)


@SETTINGS
@given(st.recursive(json_scalars, lambda i: st.lists(i) | st.dictionaries(text, i), max_leaves=20))
def test_random_json_raises_only_serde_error(value: Any) -> None:
    _decode_only_raises_serde_error(json.dumps(value).encode())


junk = json_values | st.sampled_from(["", "!!", "QQ", "QQ==", "PENDING", "x" * 37, {}, []])


@SETTINGS
@given(action_states(), st.data())
def test_mutated_records_raise_only_serde_error(state: ActionState, data: st.DataObject) -> None:
    wire: Any = json.loads(encode_action_state(state))
    for _ in range(data.draw(st.integers(1, 3))):
        wire = _mutate(wire, data)
    _decode_only_raises_serde_error(json.dumps(wire).encode())


def _mutate(node: Any, data: st.DataObject) -> Any:
    """Replace one node of the tree (possibly the root), or delete one key."""
    if not isinstance(node, dict | list) or not node or data.draw(st.integers(0, 4)) == 0:
        return data.draw(junk)
    if isinstance(node, dict):
        key = data.draw(st.sampled_from(sorted(node)))
        if data.draw(st.booleans()) and data.draw(st.booleans()):
            del node[key]
        else:
            node[key] = _mutate(node[key], data)
    else:
        i = data.draw(st.integers(0, len(node) - 1))
        node[i] = _mutate(node[i], data)
    return node


# --- keys -------------------------------------------------------------------------------------


def _reference_hash(s: str) -> int:
    units = struct.unpack(
        f"<{len(s.encode('utf-16-le', 'surrogatepass')) // 2}H",
        s.encode("utf-16-le", "surrogatepass"),
    )
    h = 0
    for u in units:
        h = (h * 31 + u) % 2**32
    return h - 2**32 if h >= 2**31 else h


@SETTINGS
@given(st.text())
def test_java_string_hash_matches_the_definition(s: str) -> None:
    assert java_string_hash(s) == _reference_hash(s)


agent_keys = st.text(min_size=1).filter(lambda s: "_" not in s)


@SETTINGS
@given(agent_keys, st.integers(0, 2**63 - 1), st.uuids(), st.uuids(), st.integers(1, 10_000))
def test_state_key_round_trip_and_partition_range(
    agent: str, seq: int, ev: Any, act: Any, n: int
) -> None:
    key = state_key(agent, seq, ev, act)
    parsed = parse_state_key(key)
    assert (parsed.agent_key, parsed.seq, parsed.event_uuid, parsed.action_uuid) == (
        agent,
        seq,
        ev,
        act,
    )
    assert 0 <= partition_for(agent, n) < n


@SETTINGS
@given(st.text())
def test_parse_state_key_raises_only_invalid_state_key_error(s: str) -> None:
    try:
        parsed = parse_state_key(s)
    except InvalidStateKeyError:
        return
    assert str(parsed) == s


@SETTINGS
@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_event_uuid_depends_only_on_content(attributes: dict[str, Any]) -> None:
    shuffled = dict(reversed(list(attributes.items())))
    assert event_uuid(attributes) == event_uuid(shuffled)
    assert event_uuid(attributes) == event_uuid(json.loads(json.dumps(attributes)))
    assert event_uuid(attributes).version == 3


@SETTINGS
@given(st.binary())
def test_payload_base64_round_trip(payload: bytes) -> None:
    state = ActionState(call_results=[CallResult.succeeded("f", "d", payload)])
    wire = orjson.loads(encode_action_state(state))
    assert wire["callResults"][0]["resultPayload"] == base64.b64encode(payload).decode()
    assert decode_action_state(encode_action_state(state)).call_results[0].result_payload == payload
