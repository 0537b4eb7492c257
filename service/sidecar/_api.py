"""The sidecar's HTTP shapes: response models, the record's JSON schema, error answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictStr, field_validator

from actionstate.serde import UUID_PATTERN_ANY_CASE, BadReason

__all__ = [
    "AGENT_KEY_PATTERN",
    "RECORD_SCHEMAS",
    "ApiError",
    "DeleteOut",
    "ErrorOut",
    "PruneIn",
    "PruneOut",
    "RecoveryMarkerOut",
    "StateListOut",
    "StateOut",
    "StatusOut",
    "WriteOut",
]

AGENT_KEY_PATTERN = "^[^_]+$"


class ApiError(Exception):
    """An answer other than 2xx, with a machine-readable code and a message for people."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class ErrorOut(BaseModel):
    """Every error answer: ``error`` is a stable code, ``detail`` says what to do."""

    error: str
    detail: str


class StateOut(BaseModel):
    """One live state: where its record sits, its metadata, and the record itself."""

    state_key: str
    agent_key: str
    seq: int
    partition: int
    offset: int
    codec: str | None = Field(description="payload codec header (None: not named, e.g. Java)")
    writer: str | None
    schema_version: int | None
    version: int | None = Field(description="the key's write version (signed records)")
    signature: str | None
    completed: bool
    pending_calls: int
    record: dict[str, Any] = Field(
        description="the record as stored: Flink Agents' JSON, payloads base64"
    )


class StateListOut(BaseModel):
    """One page of states; pass ``next_cursor`` as ``cursor`` for the next (None: done)."""

    items: list[StateOut]
    next_cursor: str | None


class WriteOut(BaseModel):
    """Where an acknowledged record landed."""

    state_key: str
    partition: int
    offset: int


class DeleteOut(WriteOut):
    """Where an acknowledged tombstone landed, and whether the view held the key."""

    existed: bool


class PruneIn(BaseModel):
    """Delete the states of ``agent_key`` with seq ≤ ``up_to_seq``."""

    agent_key: StrictStr = Field(min_length=1, json_schema_extra={"pattern": AGENT_KEY_PATTERN})
    up_to_seq: int = Field(ge=0, description="any seq above 2**63-1 means every seq")

    @field_validator("up_to_seq", mode="before")
    @classmethod
    def _a_json_integer(cls, value: object) -> object:
        # JSON Schema counts 3.0 as an integer; true and "3" are not numbers at all.
        if isinstance(value, bool | str):
            raise ValueError("must be a JSON integer")
        return value


class PruneOut(BaseModel):
    """How many states were deleted (tombstones acknowledged)."""

    agent_key: str
    up_to_seq: int
    pruned: int


class RecoveryMarkerOut(BaseModel):
    """The topic's end offset per partition (keys are partition numbers)."""

    topic: str
    offsets: dict[str, int]


class BadOut(BaseModel):
    """A record the view skipped: where, and why (never its contents)."""

    partition: int
    offset: int
    key: str | None
    reason: BadReason
    detail: str


class StatusOut(BaseModel):
    """What the view holds and how far it has read."""

    topic: str
    partitions: int
    ready: bool
    lag: int
    records_read: int
    states_live: int
    states_pending: int
    states_incomplete: int
    tombstones: int
    bad_records: int
    bad_samples: list[BadOut]
    caught_up_seconds: float | None
    timeout_s: float = Field(
        description="seconds a write may wait for the broker before it fails with a 503"
    )
    signing: bool = Field(description="whether the sidecar signs and verifies records")


_B64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_NULLABLE_B64 = {"anyOf": [{"type": "string", "pattern": _B64}, {"type": "null"}]}

RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ActionStateRecord": {
        "type": "object",
        "description": "Flink Agents' ActionState record JSON (release 0.3.x).",
        "properties": {
            "taskEvent": {
                "anyOf": [{"$ref": "#/components/schemas/RecordEvent"}, {"type": "null"}]
            },
            "sensoryMemoryUpdates": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/RecordMemoryUpdate"},
            },
            "shortTermMemoryUpdates": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/RecordMemoryUpdate"},
            },
            "outputEvents": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/RecordEvent"},
            },
            "callResults": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/RecordCallResult"},
            },
            "completed": {"type": "boolean"},
        },
    },
    "RecordEvent": {
        "type": "object",
        "required": ["@class", "id", "type"],
        "properties": {
            "@class": {"type": "string", "minLength": 1},
            "id": {"type": "string", "pattern": f"^{UUID_PATTERN_ANY_CASE}$"},
            "type": {"type": "string", "minLength": 1},
            "attributes": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        },
    },
    "RecordMemoryUpdate": {
        "type": "object",
        "required": ["path"],
        "properties": {"path": {"type": "string"}, "value": {}},
    },
    "RecordCallResult": {
        "type": "object",
        "required": ["functionId", "argsDigest"],
        "properties": {
            "functionId": {"type": "string"},
            "argsDigest": {"type": "string"},
            "resultPayload": _NULLABLE_B64,
            "exceptionPayload": _NULLABLE_B64,
            "status": {
                "anyOf": [
                    {"type": "string", "enum": ["PENDING", "SUCCEEDED", "FAILED"]},
                    {"type": "null"},
                ]
            },
        },
    },
}
