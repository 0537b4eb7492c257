"""The golden records again, now with Flink Agents 0.3.0's own ``ActionStateKafkaSeder`` in
a JVM (the harness): our re-encoding of every record must read back in Java into an
``ActionState`` equal to the one Java wrote, and Java's reading of the large record (too
large for ``index.json`` to carry) must be what we decode.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from actionstate.serde import decode_action_state, encode_action_state
from tests.interop._compare import assert_same_json, python_dump
from tests.interop._jvm import Checker
from tests.interop._vectors import RECORDS, ids, record_bytes

pytestmark = pytest.mark.java

UNDUMPED = [r for r in RECORDS if r["dump"] is None]


@pytest.mark.parametrize("record", RECORDS, ids=ids(RECORDS, "name"))
def test_golden_record_reencoded_reads_back_equal_in_java(
    record: dict[str, Any], checker: Checker
) -> None:
    golden = record_bytes(record)
    ours = encode_action_state(decode_action_state(golden))
    reply = checker.decode(ours, compare=golden)
    assert reply["ok"], f"Java cannot read our re-encoding: {reply.get('error')}"
    assert reply["equal"], "Java reads our re-encoding into a different ActionState"
    # and what Java writes back from our bytes is again the golden state for Python
    again = decode_action_state(base64.b64decode(reply["reserialized"]))
    assert_same_json(python_dump(again), python_dump(decode_action_state(golden)))


@pytest.mark.parametrize("record", UNDUMPED, ids=ids(UNDUMPED, "name"))
def test_large_golden_record_decodes_to_what_java_holds(
    record: dict[str, Any], checker: Checker
) -> None:
    data = record_bytes(record)
    reply = checker.decode(data)
    assert reply["ok"], reply.get("error")
    assert_same_json(python_dump(decode_action_state(data)), reply["dump"])


def test_java_rejects_fields_it_does_not_know(checker: Checker) -> None:
    """Why project metadata lives in Kafka headers, never in the value (DESIGN §3)."""
    record = json.loads(record_bytes(RECORDS[0]))
    record["actionstateCodec"] = "cloudpickle"
    reply = checker.decode(json.dumps(record).encode())
    assert not reply["ok"]
    assert "actionstateCodec" in reply["error"]
