"""Wire-compatible Flink Agents action-state records: models, codec, keys, payloads."""

from ._decode import decode_action_state
from ._encode import encode_action_state
from ._errors import ActionStateError, InvalidStateKeyError, SerdeError
from ._headers import (
    HEADER_CODEC,
    HEADER_SCHEMA,
    HEADER_SIGNATURE,
    HEADER_VERSION,
    HEADER_WRITER,
    RecordMeta,
    sign_record,
    verify_record,
)
from ._keys import (
    StateKey,
    action_uuid,
    event_uuid,
    flink_murmur_hash,
    java_string_hash,
    name_uuid_from_bytes,
    parse_state_key,
    partition_for,
    state_key,
    validate_agent_key,
)
from ._models import ActionState, CallResult, CallStatus, Event, MemoryUpdate
from ._payloads import CLOUDPICKLE_CODEC, JSON_CODEC, PayloadCodec, get_codec

__all__ = [
    "CLOUDPICKLE_CODEC",
    "HEADER_CODEC",
    "HEADER_SCHEMA",
    "HEADER_SIGNATURE",
    "HEADER_VERSION",
    "HEADER_WRITER",
    "JSON_CODEC",
    "ActionState",
    "ActionStateError",
    "CallResult",
    "CallStatus",
    "Event",
    "InvalidStateKeyError",
    "MemoryUpdate",
    "PayloadCodec",
    "RecordMeta",
    "SerdeError",
    "StateKey",
    "action_uuid",
    "decode_action_state",
    "encode_action_state",
    "event_uuid",
    "flink_murmur_hash",
    "get_codec",
    "java_string_hash",
    "name_uuid_from_bytes",
    "parse_state_key",
    "partition_for",
    "sign_record",
    "state_key",
    "validate_agent_key",
    "verify_record",
]
