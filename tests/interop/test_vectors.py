"""Golden records written by Flink Agents 0.3.0's own ``ActionStateKafkaSeder``, checked in
Python alone (no JVM: these run on every machine).

Each record must decode to what the Java objects held (the field dump Java wrote next to
it), re-encode to the same JSON document, keep fields it does not know, and a state built
fresh in Python from Java's dump must encode to the document Java wrote, field order
included. Regenerate the vectors with ``interop/regen-vectors.sh``; the JVM-side checks of
the same records are in ``test_java_vectors.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from actionstate.serde import decode_action_state, encode_action_state
from tests.interop._compare import (
    assert_same_document,
    assert_same_json,
    document,
    dump_from_record,
    python_dump,
    state_from_dump,
)
from tests.interop._vectors import INDEX, RECORDS, ids, record_bytes

DUMPED = [r for r in RECORDS if r["dump"] is not None]
UNDUMPED = [r for r in RECORDS if r["dump"] is None]


def _java_dump(record: dict[str, Any]) -> dict[str, Any]:
    dump: dict[str, Any] | None = record["dump"]
    # index.json leaves out the dump of large records; their JSON says the same
    return dump if dump is not None else dump_from_record(record_bytes(record))


def test_corpus_covers_what_the_issue_lists() -> None:
    names = {r["name"] for r in RECORDS}
    assert {
        "empty",
        "legacy_succeeded",
        "legacy_failed",
        "pending",
        "succeeded",
        "failed",
        "events_every_type",
        "memory_updates",
        "unicode",
        "large_payload",
    } <= names
    statuses = {c["status"] for r in DUMPED for c in r["dump"]["callResults"]}
    assert statuses == {None, "PENDING", "SUCCEEDED", "FAILED"}
    assert max(r["size"] for r in RECORDS) > 256 * 1024
    assert UNDUMPED, "the large record is expected without a dump in the index"
    assert len(INDEX["keys"]) >= 20
    assert len(INDEX["partitions"]) >= 50
    assert INDEX["generator"]["flinkAgents"] == "0.3.0"


@pytest.mark.parametrize("record", RECORDS, ids=ids(RECORDS, "name"))
def test_record_file_is_what_java_wrote(record: dict[str, Any]) -> None:
    data = record_bytes(record)
    assert len(data) == record["size"]
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert record["javaRoundTripEqual"], "upstream's own seder does not round-trip this state"


@pytest.mark.parametrize("record", DUMPED, ids=ids(DUMPED, "name"))
def test_golden_record_decodes_to_what_java_holds(record: dict[str, Any]) -> None:
    state = decode_action_state(record_bytes(record))
    assert_same_json(python_dump(state), record["dump"])


@pytest.mark.parametrize("record", UNDUMPED, ids=ids(UNDUMPED, "name"))
def test_large_golden_record_decodes_to_what_its_json_holds(record: dict[str, Any]) -> None:
    data = record_bytes(record)
    state = decode_action_state(data)
    assert_same_json(python_dump(state), dump_from_record(data))


@pytest.mark.parametrize("record", RECORDS, ids=ids(RECORDS, "name"))
def test_golden_record_reencodes_to_the_same_document(record: dict[str, Any]) -> None:
    golden = record_bytes(record)
    state = decode_action_state(golden)
    ours = encode_action_state(state)
    assert_same_document(document(ours), document(golden))
    assert_same_json(python_dump(decode_action_state(ours)), python_dump(state))


@pytest.mark.parametrize("record", RECORDS, ids=ids(RECORDS, "name"))
def test_state_built_in_python_encodes_to_what_java_wrote(record: dict[str, Any]) -> None:
    """A state that never went through our decoder (so no written form is kept) encodes
    to the document Java wrote for the same objects: same fields, same order, same values."""
    state = state_from_dump(_java_dump(record))
    ours = document(encode_action_state(state))
    assert_same_document(ours, document(record_bytes(record)))


def _with_unknown_fields(golden: bytes) -> bytes:
    """``golden`` with fields a newer writer (or an Event subclass) might add, at every
    level, after the known ones."""
    rec = json.loads(golden)
    rec["writerNote"] = {"from": "a newer writer", "n": [1, 2.5, None, True]}
    if rec["taskEvent"] is not None:
        rec["taskEvent"]["subclassField"] = ["kept", 1]
    for event in rec["outputEvents"]:
        event["priority"] = 7
    for update in rec["sensoryMemoryUpdates"] + rec["shortTermMemoryUpdates"]:
        update["expires"] = None
    for call in rec["callResults"]:
        call["attempt"] = 2
    # ASCII escapes carry any Java string, lone surrogates included
    return json.dumps(rec, separators=(",", ":")).encode("ascii")


@pytest.mark.parametrize("record", RECORDS, ids=ids(RECORDS, "name"))
def test_unknown_fields_survive_a_python_rewrite(record: dict[str, Any]) -> None:
    golden = record_bytes(record)
    extended = _with_unknown_fields(golden)
    state = decode_action_state(extended)
    assert_same_json(python_dump(state), python_dump(decode_action_state(golden)))
    assert_same_document(document(encode_action_state(state)), document(extended))

    # changing known fields keeps the unknown ones that are still there
    state.mark_completed()
    again = json.loads(encode_action_state(state))
    assert again["completed"] is True
    assert again["callResults"] == []
    assert_same_json(again["writerNote"], {"from": "a newer writer", "n": [1, 2.5, None, True]})
    if again["taskEvent"] is not None:
        assert_same_json(again["taskEvent"]["subclassField"], ["kept", 1])
    assert [e["priority"] for e in again["outputEvents"]] == [7] * len(again["outputEvents"])
    updates = again["sensoryMemoryUpdates"] + again["shortTermMemoryUpdates"]
    assert all("expires" in u and u["expires"] is None for u in updates)
