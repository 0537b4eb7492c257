"""Encoded action states survive a round trip through a real broker's compacted topic.

Each record goes to the partition Flink's key-group routing picks for its agent key
(``partition_for``), and comes back from that partition with the same key, the same
bytes and an equal decoded state.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    ActionState,
    CallResult,
    Event,
    MemoryUpdate,
    RecordMeta,
    action_uuid,
    decode_action_state,
    encode_action_state,
    event_uuid,
    parse_state_key,
    partition_for,
    state_key,
)
from tests._support import assert_eventually

PARTITIONS = 6
AGENT_KEYS = ["order-1", "order-2", "customer-42", "ünïcødé-key", "a", "payments.eu-west"]


def _state(agent_key: str, seq: int) -> tuple[Event, ActionState]:
    event = Event.input({"order": agent_key, "seq": seq})
    calls = [
        CallResult.succeeded("shop.charge", f"digest-{seq}", CLOUDPICKLE_CODEC.encode({"ok": 1})),
        CallResult.failed("shop.ship", "d2", CLOUDPICKLE_CODEC.encode(RuntimeError("no truck"))),
        CallResult.pending("shop.notify", "d3"),
    ]
    state = ActionState(
        task_event=event,
        sensory_memory_updates=[MemoryUpdate(path="seen", value=[seq, agent_key])],
        short_term_memory_updates=[MemoryUpdate(path="cart.total", value=12.5 * seq)],
        output_events=[Event.output({"done": agent_key})],
        call_results=calls,
    )
    if seq % 2:
        state.mark_completed()
    return event, state


def _create_compacted_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, PARTITIONS, 1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new]).values():
        future.result(timeout=30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)

    def compacted() -> None:
        # A just-created topic may be unknown to the broker's metadata for a moment.
        try:
            configs = admin.describe_configs([resource])[resource].result(timeout=30)
        except KafkaException as exc:
            raise AssertionError(f"topic {topic} not described yet: {exc}") from exc
        assert configs["cleanup.policy"].value == "compact"

    assert_eventually(compacted)


def _consume(bootstrap: str, topic: str, expected: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"roundtrip-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[Message] = []
    at_end: set[int] = set()
    try:
        # Bounded by polls, not wall time: every partition reports EOF once drained.
        for _ in range(3000):
            if len(records) >= expected and len(at_end) == PARTITIONS:
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                at_end.add(msg.partition())
                continue
            records.append(msg)
    finally:
        consumer.close()
    return records


def test_states_round_trip_through_a_compacted_topic(kafka_bootstrap: str, topic_name: str) -> None:
    _create_compacted_topic(kafka_bootstrap, topic_name)
    sent: dict[str, tuple[int, bytes, ActionState]] = {}
    delivered: dict[str, int] = {}

    def on_delivery(err: Any, msg: Message) -> None:
        assert err is None, err
        delivered[msg.key().decode()] = msg.partition()

    meta = RecordMeta(codec=CLOUDPICKLE_CODEC.name, writer="tests", schema=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for agent_key in AGENT_KEYS:
        for seq in range(3):
            event, state = _state(agent_key, seq)
            key = state_key(agent_key, seq, event_uuid(event.attributes), action_uuid("charge"))
            value = encode_action_state(state)
            partition = partition_for(agent_key, PARTITIONS)
            sent[key] = (partition, value, state)
            producer.produce(
                topic_name,
                key=key.encode(),
                value=value,
                partition=partition,
                headers=meta.to_headers(),
                on_delivery=on_delivery,
            )
    assert producer.flush(30) == 0
    assert delivered == {key: partition for key, (partition, _, _) in sent.items()}
    # The keys spread over more than one partition, so routing is really exercised.
    assert len({partition for partition, _, _ in sent.values()}) > 1

    records = _consume(kafka_bootstrap, topic_name, expected=len(sent))
    assert len(records) == len(sent)
    for msg in records:
        key = msg.key().decode()
        partition, value, state = sent[key]
        assert msg.partition() == partition
        assert msg.partition() == partition_for(parse_state_key(key).agent_key, PARTITIONS)
        assert msg.value() == value
        decoded = decode_action_state(msg.value())
        assert decoded == state
        assert encode_action_state(decoded) == value
        assert RecordMeta.from_headers(msg.headers()) == meta
    assert {msg.key().decode() for msg in records} == set(sent)
    # Journaled payloads come back as the values that were stored.
    decoded_states = [decode_action_state(m.value()) for m in records]
    journaled = [s.call_results for s in decoded_states if s.call_results]
    assert journaled
    for calls in journaled:
        assert calls[0].result_payload is not None
        assert CLOUDPICKLE_CODEC.decode(calls[0].result_payload) == {"ok": 1}
