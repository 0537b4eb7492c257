"""One topic, two implementations: Flink Agents 0.3.0's ``KafkaActionStateStore`` and ours.

On a real broker, the Java store rebuilds a topic our ``KafkaStore`` wrote and finds every
state under the same key, in the partition its own partitioner would have chosen; our
store rebuilds a topic the Java store wrote and finds every state Java put. A record the
Java seder cannot read stops the Java rebuild; ours skips and counts it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Producer

from actionstate.client import KafkaStore
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
    action_uuid,
    encode_action_state,
    event_uuid,
    parse_state_key,
    partition_for,
    state_key,
)
from tests.interop._compare import assert_same_json, python_dump
from tests.interop._jvm import HarnessError, put_spec, run

pytestmark = [pytest.mark.java, pytest.mark.usefixtures("harness_jar")]

PARTITIONS = 8
AGENTS = ["user-1", "order-42", "ünïcode-ключ", "😀", "tenant:acme/7", "42"]

Record = tuple[str, int, str, Event, ActionState]


def _corpus(count: int) -> list[Record]:
    out: list[Record] = []
    for i in range(count):
        agent = AGENTS[i % len(AGENTS)]
        seq = i // len(AGENTS)
        action = ("process", "charge_payment", "notify ✓")[i % 3]
        event = Event.input({"i": i, "amount": 12.5 + i, "note": "héllo 😀", "tags": ["a", i]})
        state = ActionState(task_event=event)
        state.call_results.append(
            CallResult.succeeded("shop.charge", f"{i:016x}", bytes([i % 256]))
        )
        if i % 4 == 1:
            state.call_results.append(CallResult.pending("shop.mail", "0" * 16))
        if i % 4 == 2:
            state.call_results.append(CallResult.failed("shop.mail", "1" * 16, b"err"))
        state.short_term_memory_updates.append(MemoryUpdate(path=f"stm.n{i}", value={"i": i}))
        if i % 5 == 0:
            state.output_events.append(Event.output(f"out-{i}"))
            state.mark_completed()
        out.append((agent, seq, action, event, state))
    return out


def _rebuild_in_java(bootstrap: str, topic: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        run(["store-rebuild", "--bootstrap", bootstrap, "--topic", topic])
    )
    return result


def _check_partitions(records: list[dict[str, Any]], partitions: int) -> None:
    assert records, "the topic scan found no records"
    for r in records:
        agent = parse_state_key(r["key"]).agent_key
        assert r["partition"] == r["expectedPartition"] == partition_for(agent, partitions), r


def test_java_store_rebuilds_a_topic_written_by_our_store(
    kafka_bootstrap: str, topic_name: str
) -> None:
    corpus = _corpus(36)
    expected: dict[str, ActionState] = {}
    with KafkaStore(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS
    ) as store:
        for agent, seq, action, event, state in corpus:
            store.put(agent, seq, action, event, state)
            key = state_key(agent, seq, event_uuid(event.attributes), action_uuid(action))
            expected[key] = state
        # tombstones: Java reads them as "no state" for the key
        pruned = store.prune(AGENTS[0], 1)
    assert pruned == 2

    result = _rebuild_in_java(kafka_bootstrap, topic_name)

    assert result["numPartitions"] == PARTITIONS
    held = {s["key"]: s for s in result["states"]}
    assert set(held) == set(expected)
    gone = {k for k in expected if k.startswith(f"{AGENTS[0]}_") and parse_state_key(k).seq <= 1}
    assert len(gone) == 2
    for key, state in expected.items():
        if key in gone:
            assert held[key]["dump"] is None, f"{key} was pruned but Java still holds a state"
        else:
            assert_same_json(python_dump(state), held[key]["dump"])
    _check_partitions(result["records"], PARTITIONS)
    assert sum(r["tombstone"] for r in result["records"]) == 2


def test_our_store_rebuilds_a_topic_written_by_the_java_store(
    kafka_bootstrap: str, topic_name: str
) -> None:
    corpus = _corpus(30)
    lines = [put_spec(a, s, act, e, encode_action_state(st)) for a, s, act, e, st in corpus]
    written = json.loads(
        run(
            [
                "store-write",
                *("--bootstrap", kafka_bootstrap, "--topic", topic_name),
                *("--partitions", str(PARTITIONS)),
            ],
            stdin="\n".join(lines) + "\n",
        )
    )["written"]
    assert len(written) == len(corpus)

    with KafkaStore(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS
    ) as store:
        report = store.rebuild()
        assert report.bad_records == 0, report.bad_samples
        assert report.records_read == len(corpus)
        assert {str(k) for k, _ in store.states()} == {w["key"] for w in written}
        for (agent, seq, _action, event, state), w in zip(corpus, written, strict=True):
            # Java names the action by String.valueOf(action.hashCode())
            java_action = str(w["actionHashCode"])
            key = state_key(agent, seq, event_uuid(event.attributes), action_uuid(java_action))
            assert key == w["key"]
            found = store.get(agent, seq, java_action, event)
            assert found is not None, f"our store does not find {key}"
            assert_same_json(python_dump(found), python_dump(state))

    _check_partitions(_rebuild_in_java(kafka_bootstrap, topic_name)["records"], PARTITIONS)


def test_a_bad_record_stops_the_java_rebuild_but_not_ours(
    kafka_bootstrap: str, topic_name: str
) -> None:
    """Upstream's rebuild dies on the first record its seder cannot read; ours skips and
    counts it (DESIGN §6). Pinned here because the README promises the difference."""
    event = Event.input("ok")
    with KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=2) as store:
        store.put("k", 0, "a", event, ActionState(task_event=event))
        bad_key = state_key("k", 1, event_uuid({}), action_uuid("a"))
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(
            topic_name, key=bad_key, value=b"not json", partition=partition_for("k", 2)
        )
        assert producer.flush(30) == 0

    with pytest.raises(HarnessError, match="RecordDeserializationException"):
        _rebuild_in_java(kafka_bootstrap, topic_name)

    with KafkaStore(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=2) as store:
        report = store.rebuild()
    assert (report.records_read, report.states_live, report.bad_records) == (2, 1, 1)
