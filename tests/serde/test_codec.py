"""The wire format of DESIGN §3: field order, unknown fields, legacy status, base64, and a
SerdeError with a path for every kind of bad input."""

from __future__ import annotations

import base64
import copy
import json
import pickle
from typing import Any

import orjson
import pytest

from actionstate.serde import (
    ActionState,
    ActionStateError,
    CallResult,
    CallStatus,
    Event,
    MemoryUpdate,
    SerdeError,
    decode_action_state,
    encode_action_state,
)

EVENT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
INPUT_CLASS = "org.apache.flink.agents.api.InputEvent"
OUTPUT_CLASS = "org.apache.flink.agents.api.OutputEvent"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(**overrides: Any) -> dict[str, Any]:
    """A record shaped exactly as Java's ActionStateSerde writes it."""
    rec: dict[str, Any] = {
        "taskEvent": {
            "@class": INPUT_CLASS,
            "id": EVENT_ID,
            "attributes": {"input": "test input"},
            "type": "_input_event",
        },
        "sensoryMemoryUpdates": [{"path": "sm.test.path", "value": "sm test value"}],
        "shortTermMemoryUpdates": [{"path": "stm.test.path", "value": {"n": 1}}],
        "outputEvents": [
            {
                "@class": OUTPUT_CLASS,
                "id": "1f8fad5b-d9cb-469f-a165-70867728950e",
                "attributes": {"output": "test output", "outputAttr": 123},
                "type": "_output_event",
            }
        ],
        "callResults": [
            {
                "functionId": "module.func1",
                "argsDigest": "digest1",
                "resultPayload": b64(b"result1"),
                "exceptionPayload": None,
                "status": "SUCCEEDED",
            }
        ],
        "completed": False,
    }
    rec.update(overrides)
    return rec


def raw(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec)


# --- seed cases ---------------------------------------------------------------------------


def test_legacy_record_without_status_is_succeeded_or_failed_never_pending() -> None:
    # The legacy sample of Flink Agents' own serde test: no ``status`` at all.
    data = (
        b'{"taskEvent":null,"sensoryMemoryUpdates":[],"shortTermMemoryUpdates":[],'
        b'"outputEvents":[],"callResults":['
        b'{"functionId":"legacy.success","argsDigest":"digest-success",'
        b'"resultPayload":"' + b64(b"result").encode() + b'","exceptionPayload":null},'
        b'{"functionId":"legacy.failure","argsDigest":"digest-failure",'
        b'"resultPayload":null,"exceptionPayload":"' + b64(b"exception").encode() + b'"}'
        b'],"completed":false}'
    )
    state = decode_action_state(data)
    ok, failed = state.call_results
    assert ok.status is None
    assert failed.status is None
    assert ok.effective_status is CallStatus.SUCCEEDED
    assert ok.result_payload == b"result"
    assert failed.effective_status is CallStatus.FAILED
    assert failed.exception_payload == b"exception"
    # absent stays absent: the rewrite is byte-identical
    assert encode_action_state(state) == data
    state.call_results  # noqa: B018 - built, then written from the models
    assert encode_action_state(state.model_copy(deep=True)) == data


@pytest.mark.parametrize("exception", [None, b"boom"])
def test_legacy_status_is_inferred_for_models_built_in_python(exception: bytes | None) -> None:
    c = CallResult(function_id="f", args_digest="d", exception_payload=exception)
    assert c.status is None
    assert c.effective_status is (CallStatus.FAILED if exception else CallStatus.SUCCEEDED)
    assert c.effective_status is not CallStatus.PENDING


def test_pending_record_round_trip() -> None:
    state = ActionState(
        task_event=Event.input("test input"),
        call_results=[CallResult.pending("module.func", "digest")],
    )
    data = encode_action_state(state)
    wire = orjson.loads(data)["callResults"][0]
    assert wire == {
        "functionId": "module.func",
        "argsDigest": "digest",
        "resultPayload": None,
        "exceptionPayload": None,
        "status": "PENDING",
    }
    back = decode_action_state(data)
    assert back == state
    assert back.call_results[0].effective_status is CallStatus.PENDING
    assert encode_action_state(back) == data


def test_failed_record() -> None:
    state = ActionState(call_results=[CallResult.failed("m.f", "d", b"\x80pickled-exc")])
    data = encode_action_state(state)
    wire = orjson.loads(data)["callResults"][0]
    assert wire["status"] == "FAILED"
    assert wire["resultPayload"] is None
    assert wire["exceptionPayload"] == b64(b"\x80pickled-exc")
    back = decode_action_state(data).call_results[0]
    assert back.effective_status is CallStatus.FAILED
    assert back.exception_payload == b"\x80pickled-exc"


def test_call_result_helpers() -> None:
    c = CallResult.succeeded("m.f", "abc", b"x")
    assert c.matches("m.f", "abc")
    assert not c.matches("m.f", "abd")
    assert not c.matches("m.g", "abc")
    assert (c.status, c.result_payload, c.exception_payload) == (CallStatus.SUCCEEDED, b"x", None)
    assert CallStatus.PENDING == "PENDING"
    assert isinstance(CallStatus.FAILED, str)


def test_mark_completed_clears_call_results() -> None:
    state = decode_action_state(raw(record()))
    state.mark_completed()
    assert state.completed is True
    assert state.call_results == []
    wire = orjson.loads(encode_action_state(state))
    assert wire["completed"] is True
    assert wire["callResults"] == []


# --- field order and unknown fields ---------------------------------------------------------


def test_field_order_is_javas() -> None:
    state = ActionState(
        task_event=Event.input({"b": 1, "a": 2}),
        sensory_memory_updates=[MemoryUpdate(path="p", value=1)],
        output_events=[
            Event.output("x"),
            Event(class_name="org.apache.flink.agents.api.Event", id=EVENT_ID, type="t"),
            Event(**{"@class": "com.example.Sub", "id": EVENT_ID, "type": "t", "extra": 1}),
        ],
        call_results=[CallResult.succeeded("f", "d", b"r")],
        completed=True,
    )
    wire = orjson.loads(encode_action_state(state))
    assert list(wire) == [
        "taskEvent",
        "sensoryMemoryUpdates",
        "shortTermMemoryUpdates",
        "outputEvents",
        "callResults",
        "completed",
    ]
    # Jackson writes @JsonCreator parameters first: InputEvent/OutputEvent(id, attributes)
    # then the ``type`` getter, but Event(id, type, attributes); unknown fields last.
    assert list(wire["taskEvent"]) == ["@class", "id", "attributes", "type"]
    assert wire["taskEvent"]["@class"] == INPUT_CLASS
    assert wire["taskEvent"]["type"] == "_input_event"
    assert wire["taskEvent"]["attributes"] == {"input": {"b": 1, "a": 2}}
    output, generic, subclass = wire["outputEvents"]
    assert list(output) == ["@class", "id", "attributes", "type"]
    assert output["attributes"] == {"output": "x"}
    assert list(generic) == ["@class", "id", "type", "attributes"]
    assert list(subclass) == ["@class", "id", "type", "attributes", "extra"]
    assert list(wire["sensoryMemoryUpdates"][0]) == ["path", "value"]
    assert list(wire["callResults"][0]) == [
        "functionId",
        "argsDigest",
        "resultPayload",
        "exceptionPayload",
        "status",
    ]


def test_java_written_record_is_rewritten_byte_for_byte() -> None:
    data = raw(record())
    state = decode_action_state(data)
    assert encode_action_state(state) == data
    state._build_all()  # every nested model built: written from the models now
    assert encode_action_state(state) == data
    assert encode_action_state(state.model_copy(deep=True)) == data


def _with_unknown_fields() -> dict[str, Any]:
    rec = record(newTopLevel={"x": [1, 2]})
    rec["taskEvent"]["sourceTimestamp"] = 1700000000000
    rec["taskEvent"]["subclassField"] = "kept"
    rec["sensoryMemoryUpdates"][0]["ttl"] = 30
    rec["outputEvents"][0]["model"] = "gpt"
    rec["callResults"][0]["retries"] = 2
    rec["callResults"][0]["note"] = None
    return rec


@pytest.mark.parametrize("build", [False, True])
def test_unknown_fields_at_every_level_survive_a_rewrite(build: bool) -> None:
    rec = _with_unknown_fields()
    state = decode_action_state(raw(rec))
    if build:
        state._build_all()
    assert state.model_extra == {"newTopLevel": {"x": [1, 2]}}
    assert state.task_event is not None
    assert state.task_event.model_extra == {
        "sourceTimestamp": 1700000000000,
        "subclassField": "kept",
    }
    assert state.call_results[0].model_extra == {"retries": 2, "note": None}
    assert orjson.loads(encode_action_state(state)) == rec
    # changing a known field keeps the unknown ones, written after the known ones
    state.call_results[0].status = CallStatus.FAILED
    wire = orjson.loads(encode_action_state(state))
    assert list(wire["callResults"][0])[-2:] == ["retries", "note"]
    assert wire["callResults"][0]["status"] == "FAILED"
    assert wire["newTopLevel"] == {"x": [1, 2]}
    assert wire["taskEvent"]["subclassField"] == "kept"


def test_decoded_event_is_rewritten_in_the_order_it_was_read() -> None:
    # A Java subclass whose @JsonCreator takes (id, priority, attributes) writes its own
    # field between the known ones; a rewrite from the model keeps that order.
    event = {
        "@class": "com.example.PriorityEvent",
        "id": EVENT_ID,
        "priority": 3,
        "attributes": {"k": "v"},
        "type": "prio",
    }
    old_python = {"@class": INPUT_CLASS, "id": EVENT_ID, "type": "t", "attributes": {}}
    state = decode_action_state(raw(record(taskEvent=event, outputEvents=[old_python])))
    assert state.task_event is not None
    state.task_event.type = "changed"  # the written form is dropped: rebuilt from the model
    state.output_events[0].attributes = {"a": 1}
    wire = orjson.loads(encode_action_state(state))
    assert list(wire["taskEvent"]) == ["@class", "id", "priority", "attributes", "type"]
    assert wire["taskEvent"]["type"] == "changed"
    assert list(wire["outputEvents"][0]) == ["@class", "id", "type", "attributes"]
    assert wire["outputEvents"][0]["attributes"] == {"a": 1}
    # fields added since the read come after the ones read
    state.task_event.__pydantic_extra__["added"] = True  # type: ignore[index]
    state.task_event.type = "again"
    keys = list(orjson.loads(encode_action_state(state))["taskEvent"])
    assert keys == ["@class", "id", "priority", "attributes", "type", "added"]


def test_event_without_id_round_trips_as_null() -> None:
    # Java writes ``"id":null`` for an event built without an id, and reads it back.
    event: dict[str, Any] = {"@class": "org.apache.flink.agents.api.Event", "id": None}
    event.update(type="t", attributes={"k": "v"})
    data = raw(record(taskEvent=event, outputEvents=[dict(event)]))
    state = decode_action_state(data)
    assert state.task_event is not None
    assert state.task_event.id is None
    assert state.output_events[0].id is None
    assert encode_action_state(state) == data
    state._build_all()
    assert encode_action_state(state.model_copy(deep=True)) == data
    built = ActionState(
        task_event=Event(class_name=INPUT_CLASS, id=None, type="_input_event", attributes={})
    )
    wire = orjson.loads(encode_action_state(built))["taskEvent"]
    assert wire == {"@class": INPUT_CLASS, "id": None, "attributes": {}, "type": "_input_event"}
    assert decode_action_state(encode_action_state(built)) == built


LONE = "a\ud800b\udfff"  # what Java holds for "a\uD800b\uDFFF": unpaired surrogates


def test_lone_surrogates_from_java_are_read_and_written_back_as_java_writes_them() -> None:
    # Jackson escapes an unpaired surrogate of a Java string as upper-case \uXXXX.
    escaped = b'"a\\uD800b\\uDFFF"'
    data = raw(record(sensoryMemoryUpdates=[{"path": "p", "value": "X"}])).replace(b'"X"', escaped)
    data = data.replace(b'"test input"', escaped).replace(b'"outputAttr"', escaped)
    state = decode_action_state(data)
    assert state.sensory_memory_updates[0].value == LONE
    assert state.task_event is not None
    assert state.task_event.attributes == {"input": LONE}
    assert state.output_events[0].attributes[LONE] == 123  # in a key too
    assert encode_action_state(state) == data  # untouched
    state._build_all()
    state.completed = True
    rewritten = encode_action_state(state)
    assert rewritten.count(escaped) == 3
    assert rewritten == data.replace(b'"completed":false', b'"completed":true')


def test_lone_surrogates_built_in_python_are_escaped_not_refused() -> None:
    state = ActionState(
        task_event=Event.input(LONE),
        sensory_memory_updates=[MemoryUpdate(path=LONE, value={LONE: [LONE, 2**70]})],
        call_results=[CallResult.pending(LONE, "d")],
    )
    data = encode_action_state(state)
    assert b"\\uD800" in data
    assert b"\\uDFFF" in data
    data.decode("utf-8")  # valid UTF-8: the surrogates are escaped, never raw
    assert decode_action_state(data) == state
    # a surrogate pair held as two code points is written as the pair Java holds
    pair = ActionState(task_event=Event.input("\ud83d\ude00"))
    back = decode_action_state(encode_action_state(pair)).task_event
    assert back is not None
    assert back.attributes == {"input": "😀"}


@pytest.mark.parametrize(
    "data",
    [
        b'{"completed":false,"x":"\\uD800"',  # cut short
        b'{"completed":NaN,"x":"\\uD800"}',
        b'{"completed":"yes","x":"\\uD800"}',
        b'{"x":"\\uD800\xff"}',  # not UTF-8
    ],
)
def test_bad_records_with_lone_surrogates_still_raise_serde_error(data: bytes) -> None:
    with pytest.raises(SerdeError):
        decode_action_state(data)


def test_explicit_null_status_stays_null_and_absent_stays_absent() -> None:
    rec = record()
    rec["callResults"] = [
        {"functionId": "a", "argsDigest": "", "resultPayload": None, "exceptionPayload": None},
        {
            "functionId": "b",
            "argsDigest": "",
            "resultPayload": None,
            "exceptionPayload": None,
            "status": None,
        },
    ]
    state = decode_action_state(raw(rec))
    absent, null = state.call_results
    assert absent.status is None
    assert null.status is None
    assert "status" not in absent.model_fields_set
    assert "status" in null.model_fields_set
    wire = orjson.loads(encode_action_state(state.model_copy(deep=True)))["callResults"]
    assert "status" not in wire[0]
    assert wire[1]["status"] is None


def test_kryo_envelope_memory_values_are_opaque_and_byte_equivalent() -> None:
    envelope = {"serde": "kryo", "version": 1, "payload": b64(b"\x01\x02kryo-bytes\xff")}
    rec = record(shortTermMemoryUpdates=[{"path": "stm.x", "value": envelope}])
    data = raw(rec)
    state = decode_action_state(data)
    update = state.short_term_memory_updates[0]
    assert update.is_kryo_envelope
    assert update.value == envelope
    assert not MemoryUpdate(path="p", value={"serde": "json"}).is_kryo_envelope
    assert encode_action_state(state) == data
    assert data.count(orjson.dumps(envelope)) == 1


def test_java_null_attributes_and_missing_optional_fields() -> None:
    rec = {
        "taskEvent": {"@class": INPUT_CLASS, "id": EVENT_ID, "type": "t", "attributes": None},
        "callResults": [{"functionId": "f", "argsDigest": "d"}],
        "sensoryMemoryUpdates": [{"path": "p"}],
    }
    state = decode_action_state(raw(rec))
    assert state.task_event is not None
    assert state.task_event.attributes == {}
    assert state.sensory_memory_updates[0].value is None
    assert state.short_term_memory_updates == []
    assert state.completed is False
    c = state.call_results[0]
    assert (c.result_payload, c.exception_payload, c.status) == (None, None, None)
    assert decode_action_state(b"{}") == ActionState()


def test_base64_is_the_standard_alphabet_with_padding() -> None:
    payload = bytes(range(256)) + b"\xfb"
    data = encode_action_state(ActionState(call_results=[CallResult.succeeded("f", "d", payload)]))
    text = orjson.loads(data)["callResults"][0]["resultPayload"]
    assert text == base64.b64encode(payload).decode()
    assert "+" in text
    assert "/" in text
    assert text.endswith("=")
    assert decode_action_state(data).call_results[0].result_payload == payload


# --- bad input: always SerdeError, with a path ----------------------------------------------


def call(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "functionId": "f",
        "argsDigest": "d",
        "resultPayload": None,
        "exceptionPayload": None,
        "status": "PENDING",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


BAD: list[tuple[str, bytes, str]] = [
    ("not utf-8", b'{"completed":"\xff"}', "not UTF-8 JSON"),
    ("not json", b"{not json", "not UTF-8 JSON"),
    ("empty", b"", "not UTF-8 JSON"),
    ("trailing data", b"{} {}", "not UTF-8 JSON"),
    ("NaN literal", b'{"completed":NaN}', "not UTF-8 JSON"),
    ("not an object: array", b"[]", "expected a JSON object, got an array"),
    ("not an object: null", b"null", "expected a JSON object, got null"),
    ("not an object: string", b'"x"', "expected a JSON object, got a string"),
    ("completed wrong type", raw(record(completed="true")), "completed: expected a boolean"),
    ("list wrong type", raw(record(callResults={})), "callResults: expected an array"),
    ("list null", raw(record(outputEvents=None)), "outputEvents: expected an array, got null"),
    ("task event wrong type", raw(record(taskEvent=[])), "taskEvent: expected an object"),
    (
        "bad base64",
        raw(record(callResults=[call(), call(resultPayload="!!not base64!!")])),
        "callResults[1].resultPayload: invalid base64",
    ),
    (
        "base64 missing padding",
        raw(record(callResults=[call(exceptionPayload="QQ")])),
        "callResults[0].exceptionPayload: invalid base64",
    ),
    (
        "base64 url-safe alphabet",
        raw(record(callResults=[call(resultPayload="-_-_")])),
        "callResults[0].resultPayload: invalid base64",
    ),
    (
        "base64 non-ascii",
        raw(record(callResults=[call(resultPayload="é===")])),
        "callResults[0].resultPayload: invalid base64",
    ),
    (
        "payload wrong type",
        raw(record(callResults=[call(resultPayload=[1])])),
        "callResults[0].resultPayload: expected a base64 string or null, got an array",
    ),
    (
        "unknown status",
        raw(record(callResults=[call(status="DONE")])),
        "callResults[0].status: unknown status 'DONE'",
    ),
    (
        "status wrong type",
        raw(record(callResults=[call(status=1)])),
        "callResults[0].status: expected a status string or null, got a number",
    ),
    (
        "status lower case",
        raw(record(callResults=[call(status="pending")])),
        "callResults[0].status: unknown status",
    ),
    (
        "missing functionId",
        raw(record(callResults=[call(functionId=...)])),
        "callResults[0]: missing required field functionId",
    ),
    (
        "functionId wrong type",
        raw(record(callResults=[call(functionId=None)])),
        "callResults[0].functionId: expected a string, got null",
    ),
    (
        "missing argsDigest",
        raw(record(callResults=[call(argsDigest=...)])),
        "callResults[0]: missing required field argsDigest",
    ),
    (
        "call not an object",
        raw(record(callResults=[call(), 5])),
        "callResults[1]: expected an object",
    ),
    (
        "missing memory path",
        raw(record(sensoryMemoryUpdates=[{"value": 1}])),
        "sensoryMemoryUpdates[0]: missing required field path",
    ),
    (
        "memory path wrong type",
        raw(record(shortTermMemoryUpdates=[{"path": "a", "value": 1}, {"path": 2}])),
        "shortTermMemoryUpdates[1].path: expected a string, got a number",
    ),
    (
        "missing @class",
        raw(record(taskEvent={"id": EVENT_ID, "type": "t", "attributes": {}})),
        "taskEvent: missing required field @class",
    ),
    (
        "event id not a uuid",
        raw(record(taskEvent={"@class": "C", "id": "nope", "type": "t", "attributes": {}})),
        "taskEvent.id: not a UUID",
    ),
    (
        "event id not a string",
        raw(record(taskEvent={"@class": "C", "id": 5, "type": "t", "attributes": {}})),
        "taskEvent.id: expected a UUID string or null, got a number",
    ),
    (
        "missing event id",
        raw(record(outputEvents=[{"@class": "C", "type": "t", "attributes": {}}])),
        "outputEvents[0]: missing required field id",
    ),
    (
        "empty event type",
        raw(record(outputEvents=[{"@class": "C", "id": EVENT_ID, "type": "", "attributes": {}}])),
        "outputEvents[0].type: expected a non-empty string",
    ),
    (
        "attributes wrong type",
        raw(record(taskEvent={"@class": "C", "id": EVENT_ID, "type": "t", "attributes": [1]})),
        "taskEvent.attributes: expected an object, got an array",
    ),
]


@pytest.mark.parametrize(("data", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_serde_error_saying_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(SerdeError) as info:
        decode_action_state(data)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ActionStateError)


def test_serde_error_path_attribute_and_pickling() -> None:
    bad = raw(record(callResults=[call(), call(resultPayload="%%%%")]))
    with pytest.raises(SerdeError) as info:
        decode_action_state(bad)
    assert info.value.path == "callResults[1].resultPayload"
    again = pickle.loads(pickle.dumps(info.value))
    assert (str(again), again.path) == (str(info.value), info.value.path)


@pytest.mark.parametrize("value", [None, "text", {"a": 1}, 12])
def test_decode_wants_bytes(value: Any) -> None:
    with pytest.raises(SerdeError, match="as bytes"):
        decode_action_state(value)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = raw(record())
    assert decode_action_state(bytearray(data)) == decode_action_state(memoryview(data))


# --- encoding -------------------------------------------------------------------------------


def test_encode_rejects_non_json_values() -> None:
    state = ActionState(task_event=Event.input({"when": object()}))
    with pytest.raises(SerdeError, match="cannot encode as JSON"):
        encode_action_state(state)
    with pytest.raises(SerdeError, match="expected an ActionState"):
        encode_action_state({"completed": False})  # type: ignore[arg-type]


def test_java_big_integers_survive_a_rewrite_exactly() -> None:
    big = b"123456789012345678901234567890"
    data = raw(record()).replace(b'"outputAttr":123', b'"outputAttr":' + big)
    state = decode_action_state(data)
    assert state.output_events[0].attributes["outputAttr"] == int(big)
    assert encode_action_state(state) == data


def test_encode_writes_big_integers_and_json_subclasses() -> None:
    big = 2**80 + 1
    state = ActionState(sensory_memory_updates=[MemoryUpdate(path="p", value=[big, -big])])
    data = encode_action_state(state)
    assert json.loads(data)["sensoryMemoryUpdates"][0]["value"] == [big, -big]

    class Tag(str):
        def __str__(self) -> str:
            return "overridden"

    state = ActionState(task_event=Event.input({"tag": Tag("t"), "status": CallStatus.FAILED}))
    attrs = orjson.loads(encode_action_state(state))["taskEvent"]["attributes"]
    assert attrs == {"input": {"tag": "t", "status": "FAILED"}}


# --- lazily built nested models behave like built ones ---------------------------------------


def test_decoded_state_equals_built_state_and_prints_the_same() -> None:
    data = raw(record())
    a, b = decode_action_state(data), decode_action_state(data)
    assert a == b
    built = decode_action_state(data)
    built._build_all()
    assert a == built
    assert built == a
    assert repr(a) == repr(built)
    assert a.model_dump() == built.model_dump()
    assert dict(a) == dict(built)
    assert a != decode_action_state(raw(record(completed=True)))
    assert a != ActionState()


def test_decoded_state_copies_and_pickles() -> None:
    state = decode_action_state(raw(record()))
    for other in (
        copy.copy(state),
        copy.deepcopy(state),
        state.model_copy(),
        state.model_copy(deep=True),
        pickle.loads(pickle.dumps(state)),
    ):
        assert other == state
        assert encode_action_state(other) == encode_action_state(state)
    state = decode_action_state(raw(record()))
    shallow = state.model_copy()
    shallow.call_results.append(CallResult.pending("g", "d"))  # builds only the copy's list
    assert len(state.call_results) == 1
    assert len(shallow.call_results) == 2


def test_model_dump_json_of_decoded_state() -> None:
    state = decode_action_state(raw(record()))
    dumped = json.loads(state.model_dump_json())
    assert dumped["callResults"][0]["functionId"] == "module.func1"
    assert dumped["taskEvent"]["@class"] == INPUT_CLASS


def _set_completed(s: ActionState) -> ActionState:
    s.completed = True
    return s


def _append_memory(s: ActionState) -> ActionState:
    s.sensory_memory_updates.append(MemoryUpdate(path="added", value=1))  # was empty
    return s


def _append_call(s: ActionState) -> ActionState:
    s.call_results.append(CallResult.pending("added", "d"))
    return s


def _set_unknown(s: ActionState) -> ActionState:
    s.newField = [1]  # type: ignore[attr-defined]  # an unknown field, kept
    return s


def _replace_task(s: ActionState) -> ActionState:
    s.task_event = None
    return s


def _complete(s: ActionState) -> ActionState:
    s.mark_completed()
    return s


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set_completed, {"completed": True}),
        (_append_memory, {"sensoryMemoryUpdates": [{"path": "added", "value": 1}]}),
        (_replace_task, {"taskEvent": None}),
        (_complete, {"completed": True, "callResults": []}),
        (lambda s: s.model_copy(update={"completed": True}), {"completed": True}),
        (_set_unknown, {"newField": [1]}),
    ],
)
def test_an_untouched_decoded_state_is_written_as_read_until_something_changes(
    change: Any, expected: dict[str, Any]
) -> None:
    rec = record(sensoryMemoryUpdates=[])
    data = raw(rec)
    state = decode_action_state(data)
    assert encode_action_state(state) == data  # written from what was read
    changed = change(state)
    assert orjson.loads(encode_action_state(changed)) == {**rec, **expected}
    appended = _append_call(decode_action_state(data))
    assert orjson.loads(encode_action_state(appended))["callResults"][-1]["functionId"] == "added"


def test_a_state_with_fields_out_of_javas_order_is_written_in_javas_order() -> None:
    rec = record()
    shuffled = dict(reversed(list(rec.items())))
    state = decode_action_state(raw(shuffled))
    assert encode_action_state(state) == raw(rec)


def test_changes_to_decoded_models_are_written() -> None:
    state = decode_action_state(raw(record()))
    assert state.task_event is not None
    state.task_event.attributes["added"] = [1]  # in place
    state.output_events[0].type = "_changed"  # replaced field
    state.sensory_memory_updates[0].value = {"new": True}
    state.short_term_memory_updates.append(MemoryUpdate(path="x", value=None))
    state.call_results[0] = state.call_results[0].model_copy(
        update={"status": CallStatus.FAILED, "exception_payload": b"e"}
    )
    wire = orjson.loads(encode_action_state(state))
    assert wire["taskEvent"]["attributes"] == {"input": "test input", "added": [1]}
    assert wire["outputEvents"][0]["type"] == "_changed"
    assert wire["sensoryMemoryUpdates"][0]["value"] == {"new": True}
    assert wire["shortTermMemoryUpdates"][-1] == {"path": "x", "value": None}
    assert wire["callResults"][0]["status"] == "FAILED"
    assert wire["callResults"][0]["exceptionPayload"] == b64(b"e")


def test_models_built_in_python_reflect_changes_between_writes() -> None:
    event = Event.input({"a": 1})
    call_result = CallResult.pending("f", "d")
    state = ActionState(task_event=event, call_results=[call_result])
    first = orjson.loads(encode_action_state(state))
    event.attributes["b"] = 2
    call_result.status = CallStatus.SUCCEEDED
    call_result.result_payload = b"r"
    second = orjson.loads(encode_action_state(state))
    assert first["taskEvent"]["attributes"] == {"input": {"a": 1}}
    assert second["taskEvent"]["attributes"] == {"input": {"a": 1}, "b": 2}
    assert second["callResults"][0]["status"] == "SUCCEEDED"
    assert second["callResults"][0]["resultPayload"] == b64(b"r")


def test_input_and_output_events() -> None:
    e = Event.input({"order": 42})
    assert (e.class_name, e.type, e.attributes) == (
        INPUT_CLASS,
        "_input_event",
        {"input": {"order": 42}},
    )
    o = Event.output("done")
    assert o.class_name == "org.apache.flink.agents.api.OutputEvent"
    assert (o.type, o.attributes) == ("_output_event", {"output": "done"})
    assert e.id != Event.input({"order": 42}).id
    assert Event(**{"@class": "C", "id": EVENT_ID, "type": "t"}).attributes == {}


def test_decoded_state_inside_other_pydantic_types() -> None:
    from pydantic import BaseModel, TypeAdapter

    class Envelope(BaseModel):
        key: str
        state: ActionState

    state = decode_action_state(raw(record()))
    dumped = Envelope(key="k", state=state).model_dump(by_alias=True)
    assert dumped["state"]["callResults"][0]["resultPayload"] == b"result1"
    listed = TypeAdapter(list[ActionState]).dump_json([decode_action_state(raw(record()))])
    assert json.loads(listed)[0]["taskEvent"]["id"] == EVENT_ID
    # the serialization schema still describes the record (OpenAPI of the sidecar)
    schema = ActionState.model_json_schema(mode="serialization")
    assert "callResults" in schema["properties"]
