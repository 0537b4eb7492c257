"""Our key, UUID and partition functions against what Flink Agents 0.3.0's own classes gave
for the vectors in ``tests/vectors/seder/index.json`` (no JVM: these run on every machine).

``ActionStateUtil.generateKey`` made the keys, ``ActionStateKeyPartitioner`` the partitions
and ``UUID.nameUUIDFromBytes`` the UUIDs; ``test_python_to_java.py`` asks the JVM
about generated inputs as well.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from actionstate.serde import (
    action_uuid,
    event_uuid,
    flink_murmur_hash,
    java_string_hash,
    name_uuid_from_bytes,
    parse_state_key,
    partition_for,
    state_key,
)
from tests.interop._vectors import JDK_DEPENDENT_DOUBLES, KEYS, PARTITIONS, UUIDS, ids


@pytest.mark.parametrize("vector", KEYS, ids=ids(KEYS, "attributesJson"))
def test_event_uuid_matches_java(vector: dict[str, Any]) -> None:
    attributes = json.loads(vector["attributesJson"])
    assert str(event_uuid(attributes)) == vector["eventUuid"], (
        f"Java hashed {vector['canonicalAttributesJson']!r}"
    )


@pytest.mark.parametrize("vector", KEYS, ids=ids(KEYS, "attributesJson"))
def test_state_key_matches_java(vector: dict[str, Any]) -> None:
    # Java names an action by String.valueOf(action.hashCode()); the same text through our
    # action_uuid gives Java's action UUID.
    act = action_uuid(str(vector["actionHashCode"]))
    assert str(act) == vector["actionUuid"]
    attributes = json.loads(vector["attributesJson"])
    key = state_key(vector["agentKey"], vector["seq"], event_uuid(attributes), act)
    assert key == vector["key"]
    parsed = parse_state_key(vector["key"])
    assert (parsed.agent_key, parsed.seq) == (vector["agentKey"], vector["seq"])
    assert (str(parsed.event_uuid), str(parsed.action_uuid)) == (
        vector["eventUuid"],
        vector["actionUuid"],
    )


@pytest.mark.parametrize("vector", PARTITIONS, ids=[str(i) for i in range(len(PARTITIONS))])
def test_partition_matches_java(vector: dict[str, Any]) -> None:
    agent = vector["agentKey"]
    assert java_string_hash(agent) == vector["hashCode"]
    assert flink_murmur_hash(vector["hashCode"]) == vector["murmurHash"]
    got = {n: partition_for(agent, int(n)) for n in vector["partitions"]}
    assert got == vector["partitions"]
    assert parse_state_key(vector["stateKey"]).agent_key == agent


def test_partition_corner_murmur_min_value_is_covered() -> None:
    assert any(v["murmurHash"] == 0 and v["hashCode"] != 0 for v in PARTITIONS)


@pytest.mark.parametrize("vector", UUIDS, ids=ids(UUIDS, "text"))
def test_name_uuid_matches_java(vector: dict[str, Any]) -> None:
    assert str(name_uuid_from_bytes(vector["text"].encode("utf-8"))) == vector["uuid"]


@pytest.mark.parametrize("value", sorted(JDK_DEPENDENT_DOUBLES))
def test_event_uuid_of_large_doubles_follows_jdk19(value: float) -> None:
    """We hash the spelling JDK 19+ gives these doubles; a Flink Agents job on JDK <= 18
    names such events differently (a documented difference, pinned in the JVM by
    ``test_python_to_java.py``)."""
    new, old = JDK_DEPENDENT_DOUBLES[value]
    ours = event_uuid({"x": value})
    assert ours == name_uuid_from_bytes(f'{{"x":{new}}}'.encode())
    assert ours != name_uuid_from_bytes(f'{{"x":{old}}}'.encode())
