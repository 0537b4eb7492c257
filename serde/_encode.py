"""Validated :class:`ActionState` -> record bytes: compact UTF-8 JSON, Java's field order.

Known fields come first in the order Jackson writes them, then unknown fields in the order
they were read; a decoded event keeps the field order it was read in. A part of a decoded
state that was never accessed is written back exactly as it was read (it was validated
then and cannot have changed).

Values inside attributes and memory updates must be JSON: dicts with str keys, lists,
tuples, str, int, float, bool, None (enums are written by value). NaN and infinities are
written as null (orjson); integers beyond 64 bits are written exactly, and lone surrogates
escaped as Jackson escapes them (``\\uD800``), by a slower path.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any

import orjson
import pybase64

from ._decode import kind_of
from ._errors import SerdeError
from ._models import (
    INPUT_EVENT_CLASS,
    OUTPUT_EVENT_CLASS,
    PENDING,
    READ,
    STATE_WIRE,
    WIRE,
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
)

__all__ = ["encode_action_state"]

_MISSING: Any = object()
_NONE: dict[str, Any] = {}

# Dataclasses, datetimes and subclasses of str/int/dict/list go to ``_default`` instead of
# being written by orjson's own rules, so only JSON values (and enums, by value) get out.
_DUMPS_OPTS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _b64(v: bytes | None) -> str | None:
    return None if v is None else pybase64.b64encode_as_string(v)


def _call_wire(c: CallResult) -> dict[str, Any]:
    d = c.__dict__
    extra = c.__pydantic_extra__
    if not extra:
        cached = d.get(WIRE)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
    out: dict[str, Any] = {
        "functionId": d["function_id"],
        "argsDigest": d["args_digest"],
        "resultPayload": _b64(d["result_payload"]),
        "exceptionPayload": _b64(d["exception_payload"]),
    }
    status = d["status"]
    if status is not None:
        out["status"] = status.value
    elif "status" in c.__pydantic_fields_set__:
        out["status"] = None  # an explicit null stays null; an absent one stays absent
    if extra:
        out.update(extra)
    else:
        d[WIRE] = out
    return out


# Jackson writes the properties of a ``@JsonCreator`` constructor first, in its parameter
# order: ``Event(id, type, attributes)``, but ``InputEvent(id, attributes)`` and
# ``OutputEvent(id, attributes)``, whose ``type`` (a getter) comes after.
_ATTRIBUTES_BEFORE_TYPE = frozenset((INPUT_EVENT_CLASS, OUTPUT_EVENT_CLASS))


def _event_wire(e: Event) -> dict[str, Any]:
    d = e.__dict__
    extra = e.__pydantic_extra__
    if not extra:
        cached = d.get(WIRE)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
    cls = d["class_name"]
    etype = d["type"]
    # ``attributes`` goes by reference: in-place changes stay visible.
    read = d.get(READ)
    if read is None:  # built in Python: the order Java writes for the class
        if etype is None:  # a 0.2.x event: no type; subclass fields follow (extra)
            out = {"@class": cls, "id": d["id"], "attributes": d["attributes"]}
        elif cls in _ATTRIBUTES_BEFORE_TYPE:
            out = {"@class": cls, "id": d["id"], "attributes": d["attributes"], "type": etype}
        else:
            out = {"@class": cls, "id": d["id"], "type": etype, "attributes": d["attributes"]}
        if extra:
            out.update(extra)
    else:  # decoded: the order it was read in (what the Java class wrote)
        fields = {"@class": cls, "id": d["id"], "type": etype, "attributes": d["attributes"]}
        if etype is None:
            del fields["type"]
        if extra:
            fields.update(extra)
        out = {k: fields.pop(k) for k in read if k in fields}
        out.update(fields)  # fields absent when read, or added since
    if not extra:
        d[WIRE] = out
    return out


def _memory_wire(m: MemoryUpdate) -> dict[str, Any]:
    d = m.__dict__
    extra = m.__pydantic_extra__
    if not extra:
        cached = d.get(WIRE)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        out = d[WIRE] = {"path": d["path"], "value": d["value"]}
        return out
    return {"path": d["path"], "value": d["value"], **extra}


def _state_wire(s: ActionState) -> dict[str, Any]:
    d = s.__dict__
    private = s.__pydantic_private__
    if not private:
        pending = _NONE
    else:
        wire = private.get(STATE_WIRE)
        if wire is not None and not s.__pydantic_extra__:
            return wire  # type: ignore[no-any-return]  # decoded, nothing built or set since
        # Fields never built since decoding are written as they were read (``pending``).
        pending = private.get(PENDING, _NONE)

    task = d.get("task_event", _MISSING)
    if task is _MISSING:
        task = pending["task_event"][2]
    elif task is not None:
        task = _event_wire(task)
    v = d.get("sensory_memory_updates", _MISSING)
    sensory = pending["sensory_memory_updates"][2] if v is _MISSING else list(map(_memory_wire, v))
    v = d.get("short_term_memory_updates", _MISSING)
    short = pending["short_term_memory_updates"][2] if v is _MISSING else list(map(_memory_wire, v))
    v = d.get("output_events", _MISSING)
    outputs = pending["output_events"][2] if v is _MISSING else list(map(_event_wire, v))
    v = d.get("call_results", _MISSING)
    calls = pending["call_results"][2] if v is _MISSING else list(map(_call_wire, v))
    out = {
        "taskEvent": task,
        "sensoryMemoryUpdates": sensory,
        "shortTermMemoryUpdates": short,
        "outputEvents": outputs,
        "callResults": calls,
        "completed": d["completed"],
    }
    extra = s.__pydantic_extra__
    if extra:
        out.update(extra)
    return out


def _default(v: object) -> Any:
    if isinstance(v, Enum):
        return v.value
    # Subclasses of JSON types are written as their base value, whatever they override.
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        return int.__index__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, list | tuple):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not a JSON value")


# Only inside strings can a lone surrogate occur: it is escaped as Jackson escapes it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04X}"


def encode_action_state(state: ActionState) -> bytes:
    """Write one record value: compact UTF-8 JSON in Java's field order, unknown fields
    kept; raises :class:`SerdeError` when something in it is not JSON."""
    if not isinstance(state, ActionState):
        raise SerdeError(f"expected an ActionState, got {kind_of(state)}")
    try:
        wire = _state_wire(state)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, SerdeError):
            raise
        raise SerdeError(f"malformed ActionState: {type(e).__name__}: {e}") from None
    try:
        return orjson.dumps(wire, default=_default, option=_DUMPS_OPTS)
    except orjson.JSONEncodeError as e:
        message = str(e)
        if "64-bit" not in message and "surrogates" not in message:
            raise SerdeError(f"cannot encode as JSON: {e}") from None
    # Integers beyond 64 bits (Java BigInteger) and lone surrogates (a Java string can
    # hold one) are valid JSON, but not for orjson.
    try:
        text = json.dumps(
            wire, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise SerdeError(f"cannot encode as JSON: {e}") from None
    return _LONE_SURROGATE.sub(_escape_surrogate, text).encode("utf-8")
