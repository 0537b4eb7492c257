"""Comparing what Python holds with what Flink Agents' Java classes hold, without a JVM.

The harness (and ``index.json``) describe a Java ``ActionState`` as a field dump read
through its getters; :func:`python_dump` gives the same view of ours, and
:func:`state_from_dump` builds a fresh Python state from a Java one. :func:`document`
reads a record as an ordered JSON document so two records can be compared field for field,
in order, number spelling aside.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from actionstate.serde import ActionState, CallResult, CallStatus, Event, MemoryUpdate

__all__ = [
    "assert_same_document",
    "assert_same_json",
    "document",
    "dump_from_record",
    "python_dump",
    "state_from_dump",
    "tagged",
]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def _event_dump(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "class": event.class_name,
        "id": event.id,
        "type": event.type,
        "attributes": event.attributes,
    }


def _memory_dump(updates: list[MemoryUpdate]) -> list[dict[str, Any]]:
    return [{"path": u.path, "value": u.value} for u in updates]


def _call_dump(call: CallResult) -> dict[str, Any]:
    return {
        "functionId": call.function_id,
        "argsDigest": call.args_digest,
        "resultPayload": _b64(call.result_payload),
        "exceptionPayload": _b64(call.exception_payload),
        "status": None if call.status is None else call.status.value,
        "effectiveStatus": call.effective_status.value,
    }


def python_dump(state: ActionState) -> dict[str, Any]:
    """The same field-by-field view the harness prints for a Java ``ActionState``."""
    return {
        "taskEvent": _event_dump(state.task_event),
        "sensoryMemoryUpdates": _memory_dump(state.sensory_memory_updates),
        "shortTermMemoryUpdates": _memory_dump(state.short_term_memory_updates),
        "outputEvents": [_event_dump(e) for e in state.output_events],
        "callResults": [_call_dump(c) for c in state.call_results],
        "completed": state.completed,
    }


def _event_from_dump(dump: dict[str, Any] | None) -> Event | None:
    if dump is None:
        return None
    return Event(
        class_name=dump["class"], id=dump["id"], type=dump["type"], attributes=dump["attributes"]
    )


def state_from_dump(dump: dict[str, Any]) -> ActionState:
    """A new Python state (never decoded, so nothing of a written form is kept) holding
    what a Java field dump holds."""
    return ActionState(
        task_event=_event_from_dump(dump["taskEvent"]),
        sensory_memory_updates=[
            MemoryUpdate(path=u["path"], value=u["value"]) for u in dump["sensoryMemoryUpdates"]
        ],
        short_term_memory_updates=[
            MemoryUpdate(path=u["path"], value=u["value"]) for u in dump["shortTermMemoryUpdates"]
        ],
        output_events=[_event_from_dump(e) for e in dump["outputEvents"]],
        call_results=[
            CallResult(
                function_id=c["functionId"],
                args_digest=c["argsDigest"],
                result_payload=_unb64(c["resultPayload"]),
                exception_payload=_unb64(c["exceptionPayload"]),
                status=None if c["status"] is None else CallStatus(c["status"]),
            )
            for c in dump["callResults"]
        ],
        completed=dump["completed"],
    )


def _event_from_record(event: dict[str, Any] | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "class": event["@class"],
        "id": event["id"],
        "type": event["type"],
        "attributes": event["attributes"],
    }


def _effective(call: dict[str, Any]) -> str:
    if call.get("status") is not None:
        return str(call["status"])
    # DESIGN §3: a legacy call is FAILED with an exception payload, else SUCCEEDED
    return "FAILED" if call["exceptionPayload"] is not None else "SUCCEEDED"


def dump_from_record(data: bytes) -> dict[str, Any]:
    """The field dump of a record read with the standard library's JSON parser: for
    records too large for ``index.json`` to carry Java's dump of them."""
    record = json.loads(data)
    return {
        "taskEvent": _event_from_record(record["taskEvent"]),
        "sensoryMemoryUpdates": record["sensoryMemoryUpdates"],
        "shortTermMemoryUpdates": record["shortTermMemoryUpdates"],
        "outputEvents": [_event_from_record(e) for e in record["outputEvents"]],
        "callResults": [
            {
                "functionId": c["functionId"],
                "argsDigest": c["argsDigest"],
                "resultPayload": c["resultPayload"],
                "exceptionPayload": c["exceptionPayload"],
                "status": c.get("status"),
                "effectiveStatus": _effective(c),
            }
            for c in record["callResults"]
        ],
        "completed": record["completed"],
    }


def tagged(value: Any) -> Any:
    """``value`` with every scalar tagged by its JSON kind, so ``1``, ``1.0`` and ``True``
    compare unequal (Python's ``==`` would call them equal)."""
    if isinstance(value, dict):
        return {"{}": {k: tagged(v) for k, v in value.items()}}
    if isinstance(value, list):
        return ["[]", *(tagged(v) for v in value)]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'python' if k in a else 'java'}")
            else:
                _diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif tagged(a) != tagged(b):
        out.append(f"{path}: python {a!r:.200} != java {b!r:.200}")


def assert_same_json(python: Any, java: Any) -> None:
    """Assert two JSON values are equal kind for kind (``1 != 1.0``), listing every path
    where they differ."""
    out: list[str] = []
    _diff(python, java, "$", out)
    assert not out, "python and java differ:\n  " + "\n  ".join(sorted(out)[:20])


class _Object(list[tuple[str, Any]]):
    """A JSON object as its fields in written order."""


def document(data: bytes) -> Any:
    """A record as an ordered JSON document: objects keep their field order, numbers are
    values (``1.0E-9`` and ``1e-09`` are the same double)."""
    return json.loads(data, object_pairs_hook=_Object)


def _doc_diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, _Object) and isinstance(b, _Object):
        a_keys, b_keys = [k for k, _ in a], [k for k, _ in b]
        if a_keys != b_keys:
            out.append(f"{path}: fields {a_keys} != {b_keys}")
            return
        for (k, x), (_, y) in zip(a, b, strict=True):
            _doc_diff(x, y, f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and not isinstance(a, _Object):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _doc_diff(x, y, f"{path}[{i}]", out)
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: {a!r:.200} != {b!r:.200}")


def assert_same_document(ours: Any, theirs: Any, what: str = "ours and java's") -> None:
    """Assert two :func:`document` values are the same, field order included, listing
    every path where they differ."""
    out: list[str] = []
    _doc_diff(ours, theirs, "$", out)
    assert not out, f"{what} records differ:\n  " + "\n  ".join(out[:20])
