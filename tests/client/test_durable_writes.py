"""A journal write that fails leaves no trace in the context (DESIGN §5, issue 8).

The store refuses writes for real: the Kafka broker refuses records larger than the
topic's ``max.message.bytes`` (lowered for the test), and the memory store is given the
same size limit. Each change of the call list (PENDING slot, terminal outcome, dropping
another path's slots) must be undone when its write raises, sync and async.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from actionstate.client import (
    ActionStateStore,
    DurableContext,
    KafkaStore,
    KafkaStoreSettings,
    MemoryStore,
    StoreWriteError,
    compute_args_digest,
    compute_function_id,
)
from actionstate.serde import ActionState, CallResult, CallStatus, Event, HeaderList
from tests._support import Tracked, assert_eventually
from tests._support.kafka import delete_topics

KEY = "order-1"
SEQ = 0
ACTION = "charge"
LIMIT = 10_000
# Random text, so that producer compression cannot bring it under LIMIT.
BIG = base64.b64encode(random.Random(0).randbytes(3 * LIMIT)).decode()
MODES = ["sync", "async"]


class LimitedMemoryStore(MemoryStore):
    """A MemoryStore that refuses records over a size limit, as a broker does."""

    limit: int | None = None

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        if self.limit is not None and len(value) > self.limit:
            raise StoreWriteError(f"record of {len(value)} bytes refused", topic=self.topic)
        return super()._write(partition, skey, value, headers)


class Limiter:
    """The store under test and a way to make it refuse records over ``LIMIT`` bytes."""

    def __init__(self, store: ActionStateStore, refuse: Callable[[bool], None]) -> None:
        self.store = store
        self.refuse = refuse


def _refuse_big_records(bootstrap: str, topic: str, refuse: bool) -> None:
    """Set the topic's ``max.message.bytes`` and wait until the broker applies it: a probe
    record (under its own key, never read by the tests) is refused, or accepted."""
    value = str(LIMIT) if refuse else "1048588"
    entry = ConfigEntry("max.message.bytes", value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    probe = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    errors: list[KafkaError | None] = []

    def refused() -> None:
        errors.clear()
        probe.produce(topic, BIG.encode(), b"probe", on_delivery=lambda e, _m: errors.append(e))
        probe.flush(30)
        [error] = errors
        assert (error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE) == refuse

    assert_eventually(refused)


@pytest.fixture(params=["memory", "kafka"])
def limiter(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    if request.param == "memory":
        memory = LimitedMemoryStore()

        def refuse_memory(on: bool) -> None:
            memory.limit = LIMIT if on else None

        yield Limiter(memory, refuse_memory)
        memory.close()
        return
    settings: KafkaStoreSettings = request.getfixturevalue("kafka_settings")
    kafka = KafkaStore(settings)

    def refuse_kafka(on: bool) -> None:
        _refuse_big_records(settings.bootstrap_servers, settings.topic, on)

    try:
        yield Limiter(kafka, refuse_kafka)
    finally:
        kafka.close()
        delete_topics(settings.bootstrap_servers, settings.topic)


def pay(order: str) -> str:
    return f"paid:{order}"


def pay_big(order: str) -> str:
    return BIG


def run(ctx: DurableContext, mode: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return ctx.durable_execute(func, *args, **kwargs)

    async def go() -> Any:
        return await ctx.durable_execute_async(func, *args, **kwargs)

    return asyncio.run(go())


def context(store: ActionStateStore, event: Event, *slots: CallResult) -> DurableContext:
    state = None
    if slots:
        store.put(KEY, SEQ, ACTION, event, ActionState(task_event=event, call_results=list(slots)))
        state = store.get(KEY, SEQ, ACTION, event)
    return DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=event, state=state)


def stored(store: ActionStateStore, event: Event) -> list[CallResult]:
    state = store.get(KEY, SEQ, ACTION, event)
    assert state is not None
    return list(state.call_results)


def assert_journal_equals_store(ctx: DurableContext, store: ActionStateStore) -> None:
    assert ctx.snapshot().call_results == stored(store, ctx.event)


def slot_of(func: Any, *args: Any, status: CallStatus) -> CallResult:
    fid, digest = compute_function_id(func), compute_args_digest(args, {})
    if status is CallStatus.PENDING:
        return CallResult.pending(fid, digest)
    return CallResult.succeeded(fid, digest, b"\x80\x05N.")  # a pickled None


@pytest.mark.parametrize("mode", MODES)
def test_failed_pending_write_leaves_no_slot_and_the_retry_runs_the_call(
    limiter: Limiter, mode: str
) -> None:
    store = limiter.store
    event = Event.input({"order": KEY})
    ctx = context(store, event)
    assert run(ctx, mode, pay_big, KEY) == BIG  # journaled while writes are accepted
    paying, asked = Tracked(pay), Tracked(lambda: "reconciled")

    limiter.refuse(True)  # every write now carries BIG: the PENDING slot is refused
    with pytest.raises(StoreWriteError):
        run(ctx, mode, paying, KEY, reconciler=asked)
    assert (paying.calls, asked.calls, ctx.call_index) == (0, 0, 1)
    assert_journal_equals_store(ctx, store)

    limiter.refuse(False)
    assert run(ctx, mode, paying, KEY, reconciler=asked) == f"paid:{KEY}"
    assert (paying.calls, asked.calls) == (1, 0)  # never reconciled: it never ran
    assert [c.status for c in stored(store, event)] == [CallStatus.SUCCEEDED] * 2
    assert_journal_equals_store(ctx, store)


@pytest.mark.parametrize("mode", MODES)
def test_failed_terminal_write_keeps_the_acknowledged_pending_slot(
    limiter: Limiter, mode: str
) -> None:
    store = limiter.store
    event = Event.input({"order": KEY})
    ctx = context(store, event)
    paying, asked = Tracked(pay_big), Tracked(lambda: "reconciled")

    limiter.refuse(True)  # the PENDING slot is small, the outcome is not
    with pytest.raises(StoreWriteError):
        run(ctx, mode, paying, KEY, reconciler=asked)
    assert paying.calls == 1
    assert [c.status for c in ctx.snapshot().call_results] == [CallStatus.PENDING]
    assert_journal_equals_store(ctx, store)

    # The call ran but its outcome is unknown: the retry asks the reconciler.
    assert run(ctx, mode, paying, KEY, reconciler=asked) == "reconciled"
    assert (paying.calls, asked.calls, ctx.counts.reconciled) == (1, 1, 1)
    assert_journal_equals_store(ctx, store)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_reconciler", [False, True])
def test_failed_write_after_a_mismatch_keeps_the_journaled_slots(
    limiter: Limiter, mode: str, with_reconciler: bool
) -> None:
    store = limiter.store
    event = Event.input({"order": KEY, "note": BIG})  # every write of this state is big
    journaled = slot_of(pay, "another-order", status=CallStatus.SUCCEEDED)
    ctx = context(store, event, journaled)
    paying = Tracked(pay)
    reconciler = (lambda: "reconciled") if with_reconciler else None

    limiter.refuse(True)
    with pytest.raises(StoreWriteError):
        run(ctx, mode, paying, KEY, reconciler=reconciler)
    assert ctx.snapshot().call_results == [journaled]
    assert_journal_equals_store(ctx, store)

    limiter.refuse(False)
    assert run(ctx, mode, paying, KEY, reconciler=reconciler) == f"paid:{KEY}"
    assert [c.args_digest for c in stored(store, event)] == [compute_args_digest((KEY,), {})]
    assert_journal_equals_store(ctx, store)
