"""The public names of actionstate.serde (issue 2 and the shared brief)."""

from __future__ import annotations

import actionstate.serde as serde
from tests._support import check_exports

PUBLIC = {
    "ActionState", "CallResult", "MemoryUpdate", "Event", "CallStatus",
    "decode_action_state", "encode_action_state",
    "java_string_hash", "flink_murmur_hash", "partition_for", "name_uuid_from_bytes",
    "event_uuid", "action_uuid", "state_key", "parse_state_key", "StateKey",
    "validate_agent_key",
    "ActionStateError", "SerdeError", "InvalidStateKeyError",
    "PayloadCodec", "CLOUDPICKLE_CODEC", "JSON_CODEC", "get_codec",
    "HEADER_CODEC", "HEADER_WRITER", "HEADER_SCHEMA", "HEADER_SIGNATURE", "HEADER_VERSION",
    "RecordMeta", "sign_record", "verify_record",
    "HTTP_HEADER_CODEC", "HTTP_HEADER_WRITER", "HTTP_HEADER_SCHEMA", "HTTP_HEADER_SIGNATURE",
    "HTTP_HEADER_VERSION", "HeaderValue", "Headers", "HeaderList",
    "MAX_SEQ", "UUID_PATTERN", "UUID_PATTERN_ANY_CASE", "STATE_KEY_PATTERN",
    "split_state_key", "validate_seq", "DEFAULT_CODEC", "CODEC_NAMES",
    "WRITER", "SCHEMA_VERSION", "RawRecord", "LogRecord", "BadReason", "Checked",
    "StateKeyParts", "check_key", "check_record", "signature_problem", "encode_record",
    "tombstone_meta", "next_version", "VersionWatch",
    "InvalidRequestError", "Request", "BadRequest", "RequestProblem", "RequestId",
    "encode_request", "decode_request", "dead_letter_headers", "json_problem",
    "HEADER_DEAD_LETTER_REASON", "HEADER_DEAD_LETTER_SOURCE", "HEADER_DEAD_LETTER_DETAIL",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(serde, PUBLIC)


def test_header_names() -> None:
    assert serde.HEADER_CODEC == "actionstate.codec"
    assert serde.HEADER_WRITER == "actionstate.writer"
    assert serde.HEADER_SCHEMA == "actionstate.schema"
    assert serde.HEADER_SIGNATURE == "actionstate.hmac-sha256"


def test_serde_imports_no_kafka_code() -> None:
    import subprocess
    import sys

    code = "import sys, actionstate.serde; print(any('kafka' in m for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
