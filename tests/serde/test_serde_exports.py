"""The public names of actionstate.serde (issue 2 and the shared brief)."""

from __future__ import annotations

import actionstate.serde as serde

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
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    assert set(serde.__all__) == PUBLIC
    assert len(serde.__all__) == len(PUBLIC)

    # isort-style order (constants, classes, functions), as ruff's RUF022 keeps it
    def style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert serde.__all__ == sorted(serde.__all__, key=style)


def test_every_public_name_exists_and_is_documented() -> None:
    for name in PUBLIC:
        obj = getattr(serde, name)
        if callable(obj) and not isinstance(obj, str):
            assert obj.__doc__, name


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
