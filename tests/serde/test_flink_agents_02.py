"""Flink Agents 0.2.x records: events without ``type``, with subclass fields instead.

0.2.0's ``InputEvent`` / ``OutputEvent`` hold their value in a field (``input`` /
``output``) and every event writes ``sourceTimestamp``; there is no ``type``, and call
results have no ``status``. The record below is what the real 0.2.0
``ActionStateKafkaSeder`` writes (checked against it in ``tests/interop``).
"""

from __future__ import annotations

import orjson
import pytest

from actionstate.serde import (
    ActionState,
    CallStatus,
    Event,
    SerdeError,
    decode_action_state,
    encode_action_state,
)

INPUT = "org.apache.flink.agents.api.InputEvent"
OUTPUT = "org.apache.flink.agents.api.OutputEvent"

RECORD_020 = (
    b'{"taskEvent":{"@class":"org.apache.flink.agents.api.InputEvent",'
    b'"id":"00000000-0000-0000-0000-000000000001","attributes":{"k":1},'
    b'"input":{"x":1.5},"sourceTimestamp":null},"sensoryMemoryUpdates":[],'
    b'"shortTermMemoryUpdates":[{"path":"a.b","value":[1,"x"]}],'
    b'"outputEvents":[{"@class":"org.apache.flink.agents.api.OutputEvent",'
    b'"id":"00000000-0000-0000-0000-000000000002","attributes":{},"output":"done",'
    b'"sourceTimestamp":42}],"callResults":[{"functionId":"f","argsDigest":"d",'
    b'"resultPayload":"AQI=","exceptionPayload":null},{"functionId":"g","argsDigest":"",'
    b'"resultPayload":null,"exceptionPayload":"Aw=="}],"completed":false}'
)


def test_a_020_record_decodes_with_its_subclass_fields() -> None:
    state = decode_action_state(RECORD_020)
    task = state.task_event
    assert task is not None
    assert (task.class_name, task.type, task.attributes) == (INPUT, None, {"k": 1})
    assert task.model_extra == {"input": {"x": 1.5}, "sourceTimestamp": None}
    (out,) = state.output_events
    assert (out.class_name, out.type) == (OUTPUT, None)
    assert out.model_extra == {"output": "done", "sourceTimestamp": 42}
    statuses = [c.effective_status for c in state.call_results]
    assert statuses == [CallStatus.SUCCEEDED, CallStatus.FAILED]
    assert [c.status for c in state.call_results] == [None, None]


@pytest.mark.parametrize("touch", [False, True])
def test_a_020_record_is_rewritten_byte_for_byte(touch: bool) -> None:
    state = decode_action_state(RECORD_020)
    if touch:  # build every nested model, so the rewrite goes through the models
        assert state.task_event is not None
        assert state.output_events[0].type is None
        assert state.call_results[0].status is None
    assert encode_action_state(state) == RECORD_020


def test_a_changed_020_event_keeps_its_fields_in_javas_order_and_no_type() -> None:
    state = decode_action_state(RECORD_020)
    assert state.task_event is not None
    state.task_event.attributes = {"k": 2}
    state.output_events.append(state.output_events[0].model_copy(update={"id": None}))
    written = orjson.loads(encode_action_state(state))
    assert list(written["taskEvent"]) == ["@class", "id", "attributes", "input", "sourceTimestamp"]
    assert written["taskEvent"]["attributes"] == {"k": 2}
    for event in written["outputEvents"]:
        assert list(event) == ["@class", "id", "attributes", "output", "sourceTimestamp"]


def test_an_event_built_in_python_without_type_is_written_without_it() -> None:
    event = Event.model_validate(
        {"@class": INPUT, "id": None, "attributes": {}, "input": "hi", "sourceTimestamp": None}
    )
    written = encode_action_state(ActionState(task_event=event))
    assert written.startswith(
        b'{"taskEvent":{"@class":"org.apache.flink.agents.api.InputEvent","id":null,'
        b'"attributes":{},"input":"hi","sourceTimestamp":null},'
    )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (b'{"@class":"C","id":null,"type":null}', "taskEvent.type: expected a non-empty string"),
        (b'{"@class":"C","id":null,"type":""}', "taskEvent.type: expected a non-empty string"),
        (b'{"@class":"C","id":null,"type":7}', "taskEvent.type: expected a non-empty string"),
    ],
)
def test_a_present_type_must_still_be_a_non_empty_string(event: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        decode_action_state(b'{"taskEvent":' + event + b"}")
