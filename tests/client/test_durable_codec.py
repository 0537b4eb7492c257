"""The payload codec: configured once (the store), replayed as each record names it.

Over the memory store and the real Kafka broker: a record whose header names ``json``
replays as JSON under a cloudpickle store, a record without a codec header is read by
content (DESIGN §3: first byte 0x80 is cloudpickle, anything else JSON), and unknown codec
names are refused with the known ones listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle
import orjson
import pytest
from confluent_kafka import Producer
from pydantic import ValidationError

from actionstate.client import (
    ActionStateStore,
    DurableContext,
    DurableExecutionError,
    KafkaStore,
    KafkaStoreSettings,
    MemoryLog,
    MemoryStore,
    Worker,
    compute_args_digest,
    compute_function_id,
)
from actionstate.serde import (
    HEADER_CODEC,
    ActionState,
    CallResult,
    Event,
    HeaderList,
    SerdeError,
    encode_action_state,
    partition_for,
    state_key,
)
from actionstate.serde import action_uuid as make_action_uuid
from actionstate.serde import event_uuid as make_event_uuid
from tests._support.kafka import delete_topics

PARTITIONS = 4  # what the kafka_settings fixture creates topics with
ACTION = "order"
AGENT = "customer-7"
KNOWN = "known codecs: cloudpickle, json"


class Backing:
    """Stores of one backend on one shared log/topic, and raw appends to it."""

    def __init__(
        self,
        open_store: Callable[[str], ActionStateStore],
        append: Callable[[int, bytes, bytes, HeaderList], None],
    ) -> None:
        self.open = open_store
        self.append = append


@pytest.fixture(params=["memory", "kafka"])
def backing(request: pytest.FixtureRequest) -> Iterator[Backing]:
    opened: list[ActionStateStore] = []
    if request.param == "memory":
        log = MemoryLog(PARTITIONS)

        def open_memory(codec: str) -> ActionStateStore:
            opened.append(MemoryStore(log, codec=codec))
            return opened[-1]

        def append_memory(
            p: int, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
        ) -> None:
            log.append(p, key, value, list(headers))

        yield Backing(open_memory, append_memory)
        for store in opened:
            store.close()
        return
    settings: KafkaStoreSettings = request.getfixturevalue("kafka_settings")
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})

    def open_kafka(codec: str) -> ActionStateStore:
        opened.append(KafkaStore(settings, payload_codec=codec))
        return opened[-1]

    def append_kafka(p: int, key: bytes, value: bytes, headers: HeaderList) -> None:
        producer.produce(settings.topic, value, key, partition=p, headers=headers)
        assert producer.flush(30) == 0

    try:
        yield Backing(open_kafka, append_kafka)
    finally:
        for store in opened:
            store.close()
        delete_topics(settings.bootstrap_servers, settings.topic)


class Crash(Exception):
    """Stands for the worker dying after a call."""


class Calls:
    def __init__(self) -> None:
        self.quotes = 0
        self.charges = 0
        self.crash_after: int | None = None


def quote(order: str) -> dict[str, Any]:
    return {"order": order, "amount": 3}


def charge(amount: int) -> str:
    return f"charged:{amount}"


def decline(order: str) -> str:
    raise ValueError(f"declined {order}")


def order_worker(store: ActionStateStore, calls: Calls) -> Worker:
    worker = Worker(store)

    def counted_quote(order: str) -> dict[str, Any]:
        calls.quotes += 1
        return quote(order)

    def counted_charge(amount: int) -> str:
        calls.charges += 1
        return charge(amount)

    @worker.action(ACTION)
    def order(data: Any, ctx: DurableContext) -> Any:
        q = ctx.durable_execute(counted_quote, data["order"])
        if calls.crash_after == 1:
            raise Crash
        c = ctx.durable_execute(counted_charge, q["amount"])
        if calls.crash_after == 2:
            raise Crash
        return {"quote": q, "charge": c}

    return worker


def only_state(store: ActionStateStore) -> tuple[ActionState, str | None]:
    [(_, stored)] = store.stored_states()
    return stored.state, stored.codec


def test_a_json_header_record_replays_as_json_under_a_cloudpickle_store(backing: Backing) -> None:
    calls = Calls()
    calls.crash_after = 1
    with pytest.raises(Crash):
        order_worker(backing.open("json"), calls).submit(AGENT, {"order": "o-1"}, seq=0)

    store = backing.open("cloudpickle")
    store.rebuild()
    [(_, journaled)] = store.states()
    assert journaled.call_results[0].result_payload == orjson.dumps(quote("o-1"))

    calls.crash_after = 2  # replays the JSON quote, charges, journals it, dies again
    report = order_worker(store, calls).recover()
    assert [type(f.error) for f in report.failures] == [Crash], report.failures
    assert (calls.quotes, calls.charges, report.calls_replayed) == (1, 1, 1)
    # The rewritten record names cloudpickle, so its older payload was re-encoded to match.
    state, codec = only_state(store)
    assert codec == "cloudpickle"
    results = [c.result_payload for c in state.call_results]
    assert [cloudpickle.loads(r) for r in results if r is not None] == [quote("o-1"), "charged:3"]

    calls.crash_after = None
    report = order_worker(store, calls).recover()
    assert report.ok
    assert report.actions_completed == 1
    assert (calls.quotes, calls.charges, report.calls_replayed) == (1, 1, 2)


@pytest.mark.parametrize(
    ("store_codec", "encode"),
    [("json", cloudpickle.dumps), ("cloudpickle", orjson.dumps)],
    ids=["pickle-payload", "json-payload"],
)
def test_a_record_without_codec_header_is_read_by_content(
    backing: Backing, store_codec: str, encode: Callable[[Any], bytes]
) -> None:
    # As Flink Agents writes through the Java store: no project headers at all.
    event = Event.input({"order": "o-2"})
    skey = state_key(AGENT, 0, make_event_uuid(event.attributes), make_action_uuid(ACTION))
    fid = f"{__name__}.quote"
    assert compute_function_id(quote) == fid
    journaled = CallResult.succeeded(fid, compute_args_digest(("o-2",), {}), encode(quote("o-2")))
    value = encode_action_state(ActionState(task_event=event, call_results=[journaled]))
    store = backing.open(store_codec)  # creates the topic, compacted
    backing.append(partition_for(AGENT, PARTITIONS), skey.encode(), value, [])
    store.rebuild()
    worker = Worker(store)

    @worker.action(ACTION)
    def order(data: Any, ctx: DurableContext) -> Any:
        return ctx.durable_execute(quote, data["order"])

    report = worker.recover()
    assert report.ok, report.failures
    assert (report.calls_replayed, report.calls_executed) == (1, 0)
    assert worker.submit(AGENT, {"order": "o-2"}, seq=0) == quote("o-2")


def test_unknown_codec_names_are_refused_with_the_known_ones_listed(backing: Backing) -> None:
    with pytest.raises(SerdeError, match=f"unknown payload codec 'pickle'; {KNOWN}"):
        MemoryStore(codec="pickle")
    with pytest.raises(ValidationError, match=KNOWN):
        KafkaStoreSettings(topic="t", payload_codec="pickle")
    with pytest.raises(ValidationError, match=KNOWN):
        KafkaStore(topic="t", payload_codec="pickle")

    # A record naming a codec this client does not know is refused at replay, not guessed.
    event = Event.input({"order": "o-3"})
    skey = state_key(AGENT, 0, make_event_uuid(event.attributes), make_action_uuid(ACTION))
    journaled = CallResult.succeeded(
        f"{__name__}.quote", compute_args_digest(("o-3",), {}), b"\x00avro"
    )
    value = encode_action_state(ActionState(task_event=event, call_results=[journaled]))
    store = backing.open("cloudpickle")
    backing.append(
        partition_for(AGENT, PARTITIONS), skey.encode(), value, [(HEADER_CODEC, b"avro")]
    )
    store.rebuild()
    worker = Worker(store)

    @worker.action(ACTION)
    def order(data: Any, ctx: DurableContext) -> Any:
        return ctx.durable_execute(quote, data["order"])

    [failure] = worker.recover().failures
    assert isinstance(failure.error, DurableExecutionError)
    assert f"unknown payload codec 'avro'; {KNOWN}" in str(failure.error)


def test_outcomes_are_written_with_the_store_codec(backing: Backing) -> None:
    store = backing.open("json")
    event = Event.input({"order": "o-4"})
    ctx = DurableContext(store, key=AGENT, seq=0, action=ACTION, event=event)

    assert ctx.durable_execute(quote, "o-4") == quote("o-4")
    with pytest.raises(DurableExecutionError, match="cannot encode its exception") as raised:
        ctx.durable_execute(decline, "o-4")
    assert isinstance(raised.value.__cause__, ValueError)

    state, codec = only_state(store)  # the failure could not be journaled
    assert codec == "json"
    assert [c.result_payload for c in state.call_results] == [orjson.dumps(quote("o-4"))]
