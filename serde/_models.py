"""Pydantic models of the Flink Agents 0.3.x action-state record (DESIGN §3).

Python attributes are snake_case, JSON names are Java's camelCase (the field aliases).
The wire path is :func:`actionstate.serde.decode_action_state` /
:func:`actionstate.serde.encode_action_state`: it keeps unknown fields, Java's field order
and the difference between an absent and a null ``status``. ``model_dump_json`` is a
convenience view, not the wire format.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_serializer

__all__ = [
    "INPUT_EVENT_CLASS",
    "INPUT_EVENT_TYPE",
    "OUTPUT_EVENT_CLASS",
    "OUTPUT_EVENT_TYPE",
    "ActionState",
    "CallResult",
    "CallStatus",
    "Event",
    "MemoryUpdate",
]

INPUT_EVENT_CLASS = "org.apache.flink.agents.api.InputEvent"
INPUT_EVENT_TYPE = "_input_event"
OUTPUT_EVENT_CLASS = "org.apache.flink.agents.api.OutputEvent"
OUTPUT_EVENT_TYPE = "_output_event"


class _WireModel(BaseModel):
    # Unknown fields are kept (``extra="allow"``) so a Python rewrite never drops what a
    # newer Java writer put in a record; names are accepted as Python names and as aliases.
    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )


WIRE = "_wire"
# A decoded event also keeps, in ``__dict__[READ]``, the JSON object it was read from: a
# rewrite from the model writes its fields in that object's order (only the key order is
# used, so it never goes stale).
READ = "_read"


class _CachedWireModel(_WireModel):
    # The codec keeps the JSON object it read or wrote for this model in
    # ``__dict__[WIRE]`` and writes it again while it is valid. Field values are immutable
    # or shared by reference with that object, so only replacing a field (or copying with
    # ``update``) can make it stale: those drop it. Pydantic ignores non-field keys of
    # ``__dict__`` (as it does for cached properties).

    if not TYPE_CHECKING:

        def __setattr__(self, name: str, value: Any) -> None:
            self.__dict__.pop(WIRE, None)
            super().__setattr__(name, value)

        def __delattr__(self, name: str) -> None:
            self.__dict__.pop(WIRE, None)
            super().__delattr__(name)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy of the model; ``update`` replaces fields without validation."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied.__dict__.pop(WIRE, None)
        return copied


class CallStatus(StrEnum):
    """Outcome of one durable call: started but not finished, succeeded, or failed."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class CallResult(_CachedWireModel):
    """One journaled durable call: its identity, its outcome payload and its status.

    ``status`` is ``None`` for legacy records written before the field existed; use
    :attr:`effective_status` to read the outcome.
    """

    function_id: str = Field(alias="functionId")
    args_digest: str = Field(alias="argsDigest")
    result_payload: bytes | None = Field(default=None, alias="resultPayload")
    exception_payload: bytes | None = Field(default=None, alias="exceptionPayload")
    status: CallStatus | None = None

    @property
    def effective_status(self) -> CallStatus:
        """The status, inferred for legacy records: FAILED if an exception was kept, else
        SUCCEEDED. A legacy record is never PENDING."""
        if self.status is not None:
            return self.status
        return CallStatus.SUCCEEDED if self.exception_payload is None else CallStatus.FAILED

    def matches(self, function_id: str, args_digest: str) -> bool:
        """Whether this result belongs to a call of ``function_id`` with ``args_digest``."""
        return self.function_id == function_id and self.args_digest == args_digest

    @classmethod
    def pending(cls, function_id: str, args_digest: str) -> CallResult:
        """A call that has started and whose outcome is not known yet."""
        return cls(function_id=function_id, args_digest=args_digest, status=CallStatus.PENDING)

    @classmethod
    def succeeded(cls, function_id: str, args_digest: str, payload: bytes) -> CallResult:
        """A call that returned; ``payload`` is its encoded return value."""
        return cls(
            function_id=function_id,
            args_digest=args_digest,
            result_payload=payload,
            status=CallStatus.SUCCEEDED,
        )

    @classmethod
    def failed(cls, function_id: str, args_digest: str, payload: bytes) -> CallResult:
        """A call that raised; ``payload`` is its encoded exception."""
        return cls(
            function_id=function_id,
            args_digest=args_digest,
            exception_payload=payload,
            status=CallStatus.FAILED,
        )


class MemoryUpdate(_CachedWireModel):
    """One memory write of an action: a dotted path and any JSON value.

    Values written by Flink Agents 0.3.1+ are Kryo envelopes
    (``{"serde": "kryo", "version": 1, "payload": ...}``), kept opaque and unchanged.
    """

    path: str
    value: Any = None

    @property
    def is_kryo_envelope(self) -> bool:
        """Whether the value is a Java Kryo envelope that Python cannot interpret."""
        v = self.value
        return (
            isinstance(v, dict)
            and v.get("serde") == "kryo"
            and "version" in v
            and isinstance(v.get("payload"), str)
        )


class Event(_CachedWireModel):
    """An event as Java's Jackson writes it: ``@class`` first, then id, type, attributes
    and any subclass fields (kept as unknown fields) in the order of the Java class.

    ``id`` is a UUID string, or None for a Java event built without one (Java writes
    ``"id":null``). ``type`` is None for a Flink Agents 0.2.x event, which has no such
    field (it is then left out of the JSON) and keeps its value in subclass fields
    (``input``, ``output``, ``sourceTimestamp``).
    """

    class_name: str = Field(alias="@class")
    id: str | None
    type: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def input(cls, value: Any) -> Event:
        """A Flink Agents ``InputEvent`` carrying ``value`` under a fresh random id."""
        return cls(
            class_name=INPUT_EVENT_CLASS,
            id=str(uuid.uuid4()),
            type=INPUT_EVENT_TYPE,
            attributes={"input": value},
        )

    @classmethod
    def output(cls, value: Any) -> Event:
        """A Flink Agents ``OutputEvent`` carrying ``value`` under a fresh random id."""
        return cls(
            class_name=OUTPUT_EVENT_CLASS,
            id=str(uuid.uuid4()),
            type=OUTPUT_EVENT_TYPE,
            attributes={"output": value},
        )


class ActionState(_WireModel):
    """The journal of one action run for one event: its task event, memory updates, output
    events, durable call results, and whether the action completed.

    A decoded state is validated in full when decoded but builds its nested models on first
    access (``decode_action_state`` is the fast path); this is invisible to callers.
    """

    task_event: Event | None = Field(default=None, alias="taskEvent")
    sensory_memory_updates: list[MemoryUpdate] = Field(
        default_factory=list, alias="sensoryMemoryUpdates"
    )
    short_term_memory_updates: list[MemoryUpdate] = Field(
        default_factory=list, alias="shortTermMemoryUpdates"
    )
    output_events: list[Event] = Field(default_factory=list, alias="outputEvents")
    call_results: list[CallResult] = Field(default_factory=list, alias="callResults")
    completed: bool = False

    def mark_completed(self) -> None:
        """Mark the action done; its call results are no longer needed and are cleared."""
        self.completed = True
        self.call_results.clear()

    # --- lazily built fields -------------------------------------------------------------
    # The codec leaves a validated field out of ``__dict__`` and keeps, in
    # ``__pydantic_private__[PENDING]``, a (builder, raw, wire JSON) triple per such field:
    # the field is built on first access, and written back as ``wire`` if it never was.
    # The pending map is never mutated, so copies sharing it stay correct. Everything that
    # reads ``__dict__`` wholesale builds all fields first.
    # While nothing was built or set, ``__pydantic_private__[STATE_WIRE]`` may hold the
    # JSON object the state was read from, to be written again as it is: building a field,
    # setting or deleting an attribute, and copying with ``update`` drop it.

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            pending = pending_fields(self)
            if pending is not None and name in pending:
                self.__pydantic_private__.pop(STATE_WIRE, None)
                build, raw, _wire = pending[name]
                value = build(raw)
                self.__dict__[name] = value
                return value
            return super().__getattr__(name)

        def __setattr__(self, name: str, value: Any) -> None:
            _drop_state_wire(self)
            super().__setattr__(name, value)

        def __delattr__(self, name: str) -> None:
            _drop_state_wire(self)
            super().__delattr__(name)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy of the model; ``update`` replaces fields without validation."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            _drop_state_wire(copied)
        return copied

    def _build_all(self) -> None:
        pending = pending_fields(self)
        if pending is not None:
            d = self.__dict__
            for name in pending:
                if name not in d:
                    getattr(self, name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(other) is not type(self):
            return False
        self._build_all()
        other._build_all()
        return self.__dict__ == other.__dict__ and (self.__pydantic_extra__ or {}) == (
            other.__pydantic_extra__ or {}
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like every BaseModel

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Field order, not ``__dict__`` order: lazily built fields join ``__dict__`` late.
        for name in type(self).__pydantic_fields__:
            yield name, getattr(self, name)
        if self.__pydantic_extra__:
            yield from self.__pydantic_extra__.items()

    def __iter__(self) -> Generator[tuple[str, Any], None, None]:
        self._build_all()
        return super().__iter__()

    def __getstate__(self) -> dict[Any, Any]:
        self._build_all()
        state = super().__getstate__()
        state["__pydantic_private__"] = None
        return state

    if not TYPE_CHECKING:
        # Unannotated on purpose: pydantic then keeps the model's own serialization schema.
        @model_serializer(mode="wrap")
        def _serialize_built(self, handler):
            self._build_all()
            return handler(self)


PENDING = "actionstate.pending"
STATE_WIRE = "actionstate.wire"


Pending = dict[str, tuple[Callable[[Any], Any], Any, Any]]


def _private(m: ActionState) -> dict[str, Any] | None:
    try:
        private: dict[str, Any] | None = object.__getattribute__(m, "__pydantic_private__")
    except AttributeError:  # not fully initialised yet
        return None
    return private


def pending_fields(m: ActionState) -> Pending | None:
    """The fields of a decoded state that were not built yet, or None."""
    private = _private(m)
    if private is None:
        return None
    pending: Pending | None = private.get(PENDING)
    return pending


def _drop_state_wire(m: ActionState) -> None:
    private = _private(m)
    if private:
        private.pop(STATE_WIRE, None)
