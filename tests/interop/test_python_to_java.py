"""Records, keys and partitions made by Python, checked by Flink Agents 0.3.0's own classes.

Every state our encoder writes (hypothesis-generated, all in one JVM) must be read by the
real ``ActionStateKafkaSeder`` without error and hold, field by field, what we wrote; Java
must write it back into bytes we read as the same state. Keys built by ``state_key`` must
be what ``ActionStateUtil.generateKey`` builds for the same event and action, and
``partition_for`` must pick the partition ``ActionStateKeyPartitioner`` picks.
"""

from __future__ import annotations

import base64
import json
import string
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionstate.serde import (
    ActionState,
    CallResult,
    CallStatus,
    Event,
    MemoryUpdate,
    action_uuid,
    decode_action_state,
    encode_action_state,
    event_uuid,
    parse_state_key,
    partition_for,
    state_key,
)
from actionstate.serde._jackson import jackson_sorted_json
from tests.interop._compare import assert_same_json, python_dump
from tests.interop._jvm import Checker, event_spec
from tests.interop._vectors import JDK_DEPENDENT_DOUBLES

pytestmark = pytest.mark.java

INPUT = "org.apache.flink.agents.api.InputEvent"
OUTPUT = "org.apache.flink.agents.api.OutputEvent"
PLAIN = "org.apache.flink.agents.api.Event"

# Python strings Java can hold and UTF-8 can carry: no lone surrogates.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)


def _json_values(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | floats | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )


json_values = _json_values(st.floats(allow_nan=False, allow_infinity=False))
# Below 1e15 every double prints the same on every JDK; above, JDK <= 18 sometimes prints
# more digits than JDK 19+, which changes the event UUID (see the test at the end).
key_json_values = _json_values(st.floats(min_value=-1e15, max_value=1e15))
uuids = st.uuids().map(str)


@st.composite
def events(draw: st.DrawFn, values: st.SearchStrategy[Any] = json_values) -> Event:
    cls = draw(st.sampled_from([INPUT, OUTPUT, PLAIN]))
    # Java's InputEvent and OutputEvent fix their type; only a plain Event carries its own.
    etype = {INPUT: "_input_event", OUTPUT: "_output_event"}.get(cls, draw(text.filter(bool)))
    attributes = draw(st.dictionaries(text, values, max_size=5))
    return Event(class_name=cls, id=draw(uuids), type=etype, attributes=attributes)


payloads = st.none() | st.binary(max_size=64)


@st.composite
def call_results(draw: st.DrawFn) -> CallResult:
    return CallResult(
        function_id=draw(text),
        args_digest=draw(st.text(string.hexdigits.lower(), min_size=0, max_size=16)),
        result_payload=draw(payloads),
        exception_payload=draw(payloads),
        # None is a legacy record: the field is left out of the JSON
        status=draw(st.none() | st.sampled_from(list(CallStatus))),
    )


memory_updates = st.builds(MemoryUpdate, path=text, value=json_values)


@st.composite
def action_states(draw: st.DrawFn) -> ActionState:
    return ActionState(
        task_event=draw(st.none() | events()),
        sensory_memory_updates=draw(st.lists(memory_updates, max_size=3)),
        short_term_memory_updates=draw(st.lists(memory_updates, max_size=3)),
        output_events=draw(st.lists(events(), max_size=3)),
        call_results=draw(st.lists(call_results(), max_size=4)),
        completed=draw(st.booleans()),
    )


def _java_reads(checker: Checker, state: ActionState) -> dict[str, Any]:
    ours = encode_action_state(state)
    reply = checker.decode(ours)
    assert reply["ok"], f"Java rejects our record {ours[:300]!r}: {reply.get('error')}"
    assert_same_json(python_dump(state), reply["dump"])
    return reply


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=action_states())
def test_java_reads_every_state_we_write(checker: Checker, state: ActionState) -> None:
    reply = _java_reads(checker, state)
    back = decode_action_state(base64.b64decode(reply["reserialized"]))
    assert_same_json(python_dump(back), python_dump(state))


def test_java_reads_our_client_shapes(checker: Checker) -> None:
    """What the client itself writes: factories, pending then terminal, completed."""
    event = Event.input({"order": "o-42", "amount": 12.5, "items": [1, 2]})
    state = ActionState(task_event=event)
    state.call_results.append(CallResult.pending("shop.charge", "0123456789abcdef"))
    _java_reads(checker, state)
    state.call_results[0] = CallResult.succeeded("shop.charge", "0123456789abcdef", b"\x80\x05.")
    state.call_results.append(CallResult.failed("shop.mail", "fedcba9876543210", b"\x80\x05N."))
    state.output_events.append(Event.output("done ✓"))
    state.short_term_memory_updates.append(MemoryUpdate(path="stm.total", value=12.5))
    _java_reads(checker, state)
    state.mark_completed()
    reply = _java_reads(checker, state)
    assert reply["dump"]["completed"] is True
    assert reply["dump"]["callResults"] == []


def test_legacy_call_without_status_is_never_pending_in_java(checker: Checker) -> None:
    state = ActionState(
        call_results=[
            CallResult(
                function_id="f", args_digest="", result_payload=None, exception_payload=None
            ),
            CallResult(function_id="g", args_digest="", exception_payload=b"boom"),
        ]
    )
    assert b'"status"' not in encode_action_state(state)
    dump = _java_reads(checker, state)["dump"]
    assert [c["status"] for c in dump["callResults"]] == [None, None]
    assert [c["effectiveStatus"] for c in dump["callResults"]] == ["SUCCEEDED", "FAILED"]


agent_keys = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="_"), min_size=1, max_size=20
)
action_names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    agent=agent_keys,
    seq=st.integers(0, 2**63 - 1),
    action=action_names,
    event=events(key_json_values),
    partitions=st.sampled_from([1, 2, 3, 8, 16, 64, 100, 1000]),
)
def test_keys_and_partitions_agree_with_java(
    checker: Checker, agent: str, seq: int, action: str, event: Event, partitions: int
) -> None:
    key_reply = checker.ask(
        {"op": "key", "agentKey": agent, "seq": seq, "action": action, "event": event_spec(event)}
    )
    assert key_reply["ok"], key_reply.get("error")
    java_key = key_reply["key"]
    # Java names the action by String.valueOf(action.hashCode())
    act = action_uuid(str(key_reply["actionHashCode"]))
    ours = state_key(agent, seq, event_uuid(event.attributes), act)
    java_json = key_reply["canonicalAttributes"]
    if checker.ask({"op": "env"})["javaFeatureVersion"] <= 18 and java_json != (
        jackson_sorted_json(event.attributes).decode()
    ):
        # JDK <= 18 spells some doubles with more digits than the shortest round trip
        # (2**-24 as 5.9604644775390625E-8); only that difference is allowed.
        assert _same_but_double_spelling(java_json, event.attributes), java_json
        return
    assert ours == java_key, f"Java hashed {java_json!r}"
    assert str(parse_state_key(java_key)) == java_key
    part_reply = checker.ask({"op": "partition", "key": java_key, "numPartitions": partitions})
    assert part_reply["ok"], part_reply.get("error")
    assert partition_for(agent, partitions) == part_reply["partition"]


def _same_but_double_spelling(java_json: str, attributes: dict[str, Any]) -> bool:
    # Read Java's JSON back: equal values (floats parse to the same double) mean only the
    # spelling of some double differs.
    return bool(json.loads(java_json) == json.loads(jackson_sorted_json(attributes)))


def test_java_parses_our_keys_into_the_same_four_parts(checker: Checker) -> None:
    key = state_key("tenant-7", 42, uuid.uuid4(), action_uuid("charge"))
    reply = checker.ask({"op": "parseKey", "key": key})
    assert reply["ok"], reply.get("error")
    assert reply["parts"] == key.split("_")


# JDK 19 changed Double.toString for some doubles, which upstream hashes into the event
# UUID: on JDK 19+ Java names these events as we do, on JDK <= 18 it does not.
@pytest.mark.parametrize("value", sorted(JDK_DEPENDENT_DOUBLES))
def test_event_uuid_of_large_doubles_follows_jdk19(checker: Checker, value: float) -> None:
    feature = checker.ask({"op": "env"})["javaFeatureVersion"]
    event = Event(class_name=PLAIN, id=str(uuid.uuid4()), type="t", attributes={"x": value})
    reply = checker.ask(
        {"op": "key", "agentKey": "k", "seq": 0, "action": "a", "event": event_spec(event)}
    )
    java_event_uuid = parse_state_key(reply["key"]).event_uuid
    if feature >= 19:
        assert reply["canonicalAttributes"] == f'{{"x":{JDK_DEPENDENT_DOUBLES[value][0]}}}'
        assert java_event_uuid == event_uuid(event.attributes)
    else:
        assert reply["canonicalAttributes"] == f'{{"x":{JDK_DEPENDENT_DOUBLES[value][1]}}}'
        assert java_event_uuid != event_uuid(event.attributes)
