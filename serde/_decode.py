"""Record bytes -> validated :class:`ActionState`, the fast path.

``model_validate_json`` costs about 3x a bare ``orjson.loads``. Here a bare parser runs, then
hand-written checks validate every field of every nested object up front (so a bad record
is refused at once, with the path of the fault), and the nested models are built only
when first accessed: most readers look at a few fields of a state, and a state that is
written back without being touched costs one ``orjson.dumps`` to encode.

A Java string may hold a lone surrogate, which Jackson writes as an escape (``"\\uD800"``);
such a record is read by the standard library's parser, as the fast one refuses it.
"""

from __future__ import annotations

import json
import re
from operator import itemgetter
from typing import Any, NoReturn, TypeVar

import pybase64
from pydantic import BaseModel
from pydantic_core import from_json

from ._errors import SerdeError
from ._keys import UUID_PATTERN_ANY_CASE
from ._models import (
    PENDING,
    READ,
    STATE_WIRE,
    WIRE,
    ActionState,
    CallResult,
    CallStatus,
    Event,
    MemoryUpdate,
)

__all__ = ["check_action_state", "decode_action_state", "kind_of"]

_M = TypeVar("_M", bound=BaseModel)
_MISSING: Any = object()


# A \uD800-\uDFFF escape: Jackson writes a Java string's lone surrogate that way.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_slow(data: bytes, error: ValueError) -> Any:
    # jiter refuses lone surrogates, which Jackson reads and writes: the standard library's
    # parser keeps them (and big integers) as Python holds them.
    if _SURROGATE_ESCAPE.search(data) is None:
        raise error
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


_new = object.__new__
# BaseModel's slot setters, called directly: a third faster than object.__setattr__.
_slots = vars(BaseModel)
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__

_STATUS = {s.value: s for s in CallStatus}
# Jackson's UUID deserializer wants the 36-character form.
_UUID_RE = re.compile(UUID_PATTERN_ANY_CASE)
_CALL_KEYS = frozenset(("functionId", "argsDigest", "resultPayload", "exceptionPayload", "status"))
_EVENT_KEYS = frozenset(("@class", "id", "type", "attributes"))
_MEMORY_KEYS = frozenset(("path", "value"))


def kind_of(v: object) -> str:
    """How an error message names the JSON kind of ``v``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


# Paths are built only when something is wrong: (key, index) -> "callResults[1]".
def _path(key: str, index: int | None, field: str = "") -> str:
    base = key if index is None else f"{key}[{index}]"
    return f"{base}.{field}" if field else base


def _fail(path: str, message: str) -> NoReturn:
    raise SerdeError(message, path=path)


def _expected(path: str, what: str, got: object) -> NoReturn:
    _fail(path, f"expected {what}, got {kind_of(got)}")


def _missing(key: str, index: int | None, field: str) -> NoReturn:
    _fail(_path(key, index), f"missing required field {field}")


def _new_model(
    cls: type[_M], fields: dict[str, Any], fields_set: set[str], extra: dict[str, Any]
) -> _M:
    # The attributes ``BaseModel.model_construct`` sets, without its per-field loop: the
    # values were validated by the checks of this module.
    m = _new(cls)
    if extra:
        fields_set.update(extra)  # as pydantic counts them
    _set_dict(m, fields)
    _set_fields_set(m, fields_set)
    _set_extra(m, extra)
    _set_private(m, None)
    return m


def _extra(obj: dict[str, Any], known: frozenset[str], found: int) -> dict[str, Any]:
    if len(obj) == found:
        return {}
    return {k: v for k, v in obj.items() if k not in known}


# --- events -------------------------------------------------------------------------------


def _check_event(obj: object, key: str, index: int | None) -> None:
    if type(obj) is not dict:
        _expected(_path(key, index), "an object", obj)
    v = obj.get("@class", _MISSING)
    if type(v) is not str or not v:
        if v is _MISSING:
            _missing(key, index, "@class")
        _expected(_path(key, index, "@class"), "a non-empty class name", v)
    v = obj.get("id", _MISSING)
    if v is not None and (type(v) is not str or _UUID_RE.fullmatch(v) is None):
        if v is _MISSING:
            _missing(key, index, "id")
        if type(v) is str:
            _fail(_path(key, index, "id"), f"not a UUID: {v[:40]!r}")
        _expected(_path(key, index, "id"), "a UUID string or null", v)
    v = obj.get("type", _MISSING)  # absent in a Flink Agents 0.2.x event
    if v is not _MISSING and (type(v) is not str or not v):
        _expected(_path(key, index, "type"), "a non-empty string", v)
    v = obj.get("attributes")
    if v is not None and type(v) is not dict:
        _expected(_path(key, index, "attributes"), "an object", v)


def _build_event(obj: dict[str, Any]) -> Event:
    attrs = obj.get("attributes", _MISSING)
    etype = obj.get("type")  # None: a 0.2.x event, which has no type
    fields = {"class_name": obj["@class"], "id": obj["id"], "type": etype, READ: obj}
    fields_set = {"class_name", "id"}
    found = 2
    if etype is not None:
        fields_set.add("type")
        found = 3
    if attrs is _MISSING:
        fields["attributes"] = {}
    else:
        found += 1
        fields_set.add("attributes")
        if attrs is None:
            fields["attributes"] = {}  # Java reads a null map as an empty one
        else:
            fields["attributes"] = attrs
            if len(obj) == found:
                fields[WIRE] = obj  # shares ``attributes``: in-place changes show in both
    return _new_model(Event, fields, fields_set, _extra(obj, _EVENT_KEYS, found))


def _build_events(raw: list[dict[str, Any]]) -> list[Event]:
    return [_build_event(o) for o in raw]


# --- memory updates -----------------------------------------------------------------------


def _check_memory(obj: object, key: str, index: int | None) -> None:
    if type(obj) is not dict:
        _expected(_path(key, index), "an object", obj)
    v = obj.get("path", _MISSING)
    if type(v) is not str:
        if v is _MISSING:
            _missing(key, index, "path")
        _expected(_path(key, index, "path"), "a string", v)
    # ``value`` is any JSON, Kryo envelopes included: kept as parsed.


def _build_memories(raw: list[dict[str, Any]]) -> list[MemoryUpdate]:
    out = []
    for obj in raw:
        value = obj.get("value", _MISSING)
        if value is _MISSING:
            fields = {"path": obj["path"], "value": None}
            out.append(_new_model(MemoryUpdate, fields, {"path"}, _extra(obj, _MEMORY_KEYS, 1)))
        else:
            fields = {"path": obj["path"], "value": value}
            if len(obj) == 2:
                fields[WIRE] = obj
            extra = _extra(obj, _MEMORY_KEYS, 2)
            out.append(_new_model(MemoryUpdate, fields, {"path", "value"}, extra))
    return out


# --- call results -------------------------------------------------------------------------

_Prepared = tuple[dict[str, Any], bytes | None, bytes | None, CallStatus | None]


def _payload(v: object, key: str, index: int, field: str) -> bytes | None:
    if v is None:
        return None
    if type(v) is not str:
        _expected(_path(key, index, field), "a base64 string or null", v)
    try:
        return pybase64.b64decode(v, None, True)
    except ValueError:  # binascii.Error, and non-ASCII text
        _fail(_path(key, index, field), "invalid base64")


def _prepare_call(obj: object, key: str, index: int) -> _Prepared:
    if type(obj) is not dict:
        _expected(_path(key, index), "an object", obj)
    v = obj.get("functionId", _MISSING)
    if type(v) is not str:
        if v is _MISSING:
            _missing(key, index, "functionId")
        _expected(_path(key, index, "functionId"), "a string", v)
    v = obj.get("argsDigest", _MISSING)
    if type(v) is not str:
        if v is _MISSING:
            _missing(key, index, "argsDigest")
        _expected(_path(key, index, "argsDigest"), "a string", v)
    result = _payload(obj.get("resultPayload"), key, index, "resultPayload")
    exception = _payload(obj.get("exceptionPayload"), key, index, "exceptionPayload")
    v = obj.get("status")
    if v is None:
        status = None  # absent (a legacy record) or null: told apart when built
    else:
        status = _STATUS.get(v) if type(v) is str else None
        if status is None:
            if type(v) is str:
                _fail(
                    _path(key, index, "status"),
                    f"unknown status {v[:40]!r}, expected one of {', '.join(_STATUS)}",
                )
            _expected(_path(key, index, "status"), "a status string or null", v)
    return obj, result, exception, status


def _build_calls(prepared: list[_Prepared]) -> list[CallResult]:
    out = []
    for obj, result, exception, status in prepared:
        fields_set = {"function_id", "args_digest"}
        found = 2
        if "resultPayload" in obj:
            fields_set.add("result_payload")
            found += 1
        if "exceptionPayload" in obj:
            fields_set.add("exception_payload")
            found += 1
        if "status" in obj:  # an absent status stays absent when written back
            fields_set.add("status")
            found += 1
        fields = {
            "function_id": obj["functionId"],
            "args_digest": obj["argsDigest"],
            "result_payload": result,
            "exception_payload": exception,
            "status": status,
        }
        if len(obj) == found:
            fields[WIRE] = obj
        out.append(_new_model(CallResult, fields, fields_set, _extra(obj, _CALL_KEYS, found)))
    return out


# --- the state ----------------------------------------------------------------------------
# Each list is first checked by a tight loop that only answers "all valid?"; when it says
# no, the detailed checkers above run over the items and raise with the path of the fault.

_uuid_match = _UUID_RE.fullmatch
_b64decode = pybase64.b64decode  # positional arguments: its keyword parsing costs more


def _events_valid(items: list[Any] | tuple[Any, ...]) -> bool:
    for o in items:
        if type(o) is not dict:
            return False
        v = o.get("@class")
        if type(v) is not str or not v:
            return False
        v = o.get("id", _MISSING)  # null is Java's event without an id; absent is not
        if v is not None and (type(v) is not str or _uuid_match(v) is None):
            return False
        v = o.get("type", _MISSING)
        if v is not _MISSING and (type(v) is not str or not v):
            return False
        v = o.get("attributes")
        if v is not None and type(v) is not dict:
            return False
    return True


def _memories_valid(items: list[Any]) -> bool:
    for o in items:  # noqa: SIM110 - a plain loop is twice as fast as all(<genexpr>)
        if type(o) is not dict or type(o.get("path")) is not str:
            return False
    return True


_STATUS_OR_NULL: dict[str | None, CallStatus | None] = {None: None}
_STATUS_OR_NULL.update(_STATUS)
_call_fields = itemgetter("functionId", "argsDigest", "resultPayload", "exceptionPayload", "status")
_required_call_fields = itemgetter("functionId", "argsDigest")


def _prepare_calls(items: list[Any]) -> list[_Prepared] | None:
    out = []
    try:
        for o in items:
            # TypeError for anything but an object, KeyError for a missing field
            try:
                function_id, args_digest, result, exception, status = _call_fields(o)
            except KeyError:  # a payload or the status absent (a legacy record): null
                function_id, args_digest = _required_call_fields(o)
                result = o.get("resultPayload")
                exception = o.get("exceptionPayload")
                status = o.get("status")
            if type(function_id) is not str or type(args_digest) is not str:
                return None
            if result is not None:  # TypeError unless a string, ValueError unless base64
                result = _b64decode(result, None, True)
            if exception is not None:
                exception = _b64decode(exception, None, True)
            # KeyError for an unknown status, TypeError for an array or object
            out.append((o, result, exception, _STATUS_OR_NULL[status]))
    except (KeyError, TypeError, ValueError):
        return None
    return out


def _raise_first(check: Any, items: list[Any], key: str) -> NoReturn:
    for i, item in enumerate(items):
        check(item, key, i)
    raise SerdeError("invalid item", path=key)  # not reached: the checks agree


def _not_a_list(key: str, raw: object) -> NoReturn:
    _expected(key, "an array", raw)


# JSON name -> field name of the fields of a state
_STATE_FIELDS = {
    "taskEvent": "task_event",
    "sensoryMemoryUpdates": "sensory_memory_updates",
    "shortTermMemoryUpdates": "short_term_memory_updates",
    "outputEvents": "output_events",
    "callResults": "call_results",
    "completed": "completed",
}
_STATE_ORDER = tuple(_STATE_FIELDS)
_STATE_KEYS = frozenset(_STATE_FIELDS)
_ALL_STATE_FIELDS = frozenset(_STATE_FIELDS.values())
_ABSENT: Any = ()  # an absent list reads as an empty one


_Fields = tuple[bool, Any, Any, Any, Any, list[_Prepared], Any, bool]


def _validated(obj: dict[str, Any]) -> _Fields:
    # Written flat: this runs once per record. It is the whole of the value rule: a state
    # that passes it decodes, and ``check_action_state`` answers with it alone.
    canonical = tuple(obj) == _STATE_ORDER  # the common case: Java's fields, in its order
    if canonical:
        task, sensory, short_term, outputs, calls, completed = obj.values()
    else:
        get = obj.get
        task = get("taskEvent")
        sensory = get("sensoryMemoryUpdates", _ABSENT)
        short_term = get("shortTermMemoryUpdates", _ABSENT)
        outputs = get("outputEvents", _ABSENT)
        calls = get("callResults", _ABSENT)
        completed = get("completed", False)

    if task is not None and not _events_valid((task,)):
        _check_event(task, "taskEvent", None)

    if type(sensory) is not list and sensory is not _ABSENT:
        _not_a_list("sensoryMemoryUpdates", sensory)
    if not _memories_valid(sensory):
        _raise_first(_check_memory, sensory, "sensoryMemoryUpdates")

    if type(short_term) is not list and short_term is not _ABSENT:
        _not_a_list("shortTermMemoryUpdates", short_term)
    if not _memories_valid(short_term):
        _raise_first(_check_memory, short_term, "shortTermMemoryUpdates")

    if type(outputs) is not list and outputs is not _ABSENT:
        _not_a_list("outputEvents", outputs)
    if not _events_valid(outputs):
        _raise_first(_check_event, outputs, "outputEvents")

    if type(calls) is not list and calls is not _ABSENT:
        _not_a_list("callResults", calls)
    prepared = _prepare_calls(calls)
    if prepared is None:
        _raise_first(_prepare_call, calls, "callResults")

    if type(completed) is not bool:
        _expected("completed", "a boolean", completed)
    return canonical, task, sensory, short_term, outputs, prepared, calls, completed


def _action_state(obj: dict[str, Any]) -> ActionState:
    # Every field but ``completed`` and a null ``taskEvent`` is left pending (built on
    # first access), empty lists included, so that while nothing is built nothing can
    # have changed.
    canonical, task, sensory, short_term, outputs, prepared, calls, completed = _validated(obj)
    pending = {
        "sensory_memory_updates": (_build_memories, sensory, sensory),
        "short_term_memory_updates": (_build_memories, short_term, short_term),
        "output_events": (_build_events, outputs, outputs),
        "call_results": (_build_calls, prepared, calls),
    }
    if task is None:
        fields = {"task_event": None, "completed": completed}
    else:
        fields = {"completed": completed}
        pending["task_event"] = (_build_event, task, task)
    private = {PENDING: pending}
    if canonical:  # until something is built or set, ``obj`` is the state's written form
        private[STATE_WIRE] = obj
        fields_set = set(_ALL_STATE_FIELDS)
        extra = {}
    else:
        fields_set = {name for key, name in _STATE_FIELDS.items() if key in obj}
        extra = _extra(obj, _STATE_KEYS, -1)
        fields_set.update(extra)  # as pydantic counts them
    state: ActionState = _new(ActionState)
    _set_dict(state, fields)
    _set_fields_set(state, fields_set)
    _set_extra(state, extra)
    _set_private(state, private)
    return state


def _parse(data: bytes) -> dict[str, Any]:
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SerdeError(f"expected the record value as bytes, got {type(data).__name__}")
        data = bytes(data)
    try:
        # pydantic-core's parser (jiter) rather than orjson: orjson turns an integer beyond
        # 64 bits (a Java BigInteger) into a float, which a rewrite would then change; jiter
        # keeps it exact, and rejects NaN and infinities as Jackson's writer never writes them.
        try:
            obj = from_json(data, allow_inf_nan=False, cache_strings="keys")
        except ValueError as e:
            obj = _parse_slow(data, e)
    except ValueError as e:
        raise SerdeError(f"not UTF-8 JSON: {e}") from None
    if type(obj) is not dict:
        raise SerdeError(f"expected a JSON object, got {kind_of(obj)}")
    return obj


def decode_action_state(data: bytes) -> ActionState:
    """Parse and validate one record value; raises :class:`SerdeError` naming what is wrong
    and where (``callResults[1].resultPayload: invalid base64``)."""
    return _action_state(_parse(data))


def check_action_state(data: bytes) -> bool:
    """Whether the state in ``data`` is completed, after the checks of
    :func:`decode_action_state` (the same parser, the same rules), without building the
    state: it raises :class:`SerdeError` exactly when decoding would."""
    return _validated(_parse(data))[7]
