"""DESIGN §5's persist counts, counted in what the backing really holds afterwards.

Each store is used exactly as production uses it (``KafkaStore`` and ``MemoryStore`` take
the context's direct write path, ``SidecarStore`` its HTTP PUT); nothing wraps or replaces
``put``. The records are read back from the topic (Kafka, sidecar) or the ``MemoryLog``,
so a count is the number of records a write really appended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actionstate.client import (
    ActionStateStore,
    DurableContext,
    KafkaStoreSettings,
    MemoryStore,
    Worker,
    compute_args_digest,
    compute_function_id,
)
from actionstate.serde import ActionState, CallResult, CallStatus, Event, decode_action_state
from tests._support import read_topic

KEY = "order-1"
SEQ = 0
ACTION = "charge"
EVENT = Event.input({"order": KEY})

MODES = ["sync", "async"]


def charge(order: str) -> str:
    return f"charged:{order}"


def refund(order: str) -> str:
    return f"refunded:{order}"


def lookup() -> str:
    return "reconciled"


@pytest.fixture
def written(
    request: pytest.FixtureRequest, store_backend: str, store: ActionStateStore
) -> Callable[[], list[ActionState | None]]:
    """``written()``: every record the test's backing holds, decoded (None: a tombstone), in
    (partition, offset) order. Each test has a backing of its own, so these are its writes."""

    def read() -> list[ActionState | None]:
        if isinstance(store, MemoryStore):
            log = store.log
            values = [
                r.value()
                for p in range(log.partitions)
                for r in log.read(p, 0, log.end_offsets()[p])
            ]
        else:
            settings: KafkaStoreSettings = request.getfixturevalue("kafka_settings")
            values = [r.value() for r in read_topic(settings.bootstrap_servers, settings.topic)]
        return [None if v is None else decode_action_state(v) for v in values]

    return read


def run(ctx: DurableContext, mode: str, func: Callable[..., Any], *args: Any) -> Any:
    """One durable call with a reconciler, through the sync API or the async one."""
    if mode == "sync":
        return ctx.durable_execute(func, *args, reconciler=lookup)

    async def go() -> Any:
        return await ctx.durable_execute_async(func, *args, reconciler=lookup)

    return asyncio.run(go())


def resumed(store: ActionStateStore) -> DurableContext:
    """A context resuming the journal the store holds, as a recovery would."""
    state = store.get(KEY, SEQ, ACTION, EVENT)
    assert state is not None
    return DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=EVENT, state=state)


def statuses(states: list[ActionState | None]) -> list[list[CallStatus]]:
    """The call statuses of each written state."""
    out = []
    for state in states:
        assert state is not None
        out.append([c.effective_status for c in state.call_results])
    return out


def journal(store: ActionStateStore, *slots: CallResult) -> None:
    store.put(KEY, SEQ, ACTION, EVENT, ActionState(task_event=EVENT, call_results=list(slots)))


@pytest.mark.parametrize("mode", MODES)
def test_a_first_run_with_a_reconciler_writes_twice(
    store: ActionStateStore, written: Callable[[], list[ActionState | None]], mode: str
) -> None:
    ctx = DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=EVENT)
    assert run(ctx, mode, charge, KEY) == f"charged:{KEY}"
    assert statuses(written()) == [[CallStatus.PENDING], [CallStatus.SUCCEEDED]]


@pytest.mark.parametrize("mode", MODES)
def test_replaying_a_terminal_slot_writes_nothing(
    store: ActionStateStore, written: Callable[[], list[ActionState | None]], mode: str
) -> None:
    run(DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=EVENT), mode, charge, KEY)
    before = len(written())
    assert run(resumed(store), mode, charge, KEY) == f"charged:{KEY}"
    assert len(written()) == before


@pytest.mark.parametrize("mode", MODES)
def test_a_reconcile_writes_once(
    store: ActionStateStore, written: Callable[[], list[ActionState | None]], mode: str
) -> None:
    # a run that crashed inside the call: its PENDING slot is all the journal holds
    journal(store, CallResult.pending(compute_function_id(charge), compute_args_digest((KEY,), {})))
    before = len(written())
    assert run(resumed(store), mode, charge, KEY) == "reconciled"
    assert statuses(written()[before:]) == [[CallStatus.SUCCEEDED]]


@pytest.mark.parametrize("mode", MODES)
def test_a_mismatch_writes_three_times(
    store: ActionStateStore, written: Callable[[], list[ActionState | None]], mode: str
) -> None:
    run(DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=EVENT), mode, refund, KEY)
    before = len(written())
    # the action now takes another path: clear the slot, then pending, then terminal
    assert run(resumed(store), mode, charge, KEY) == f"charged:{KEY}"
    assert statuses(written()[before:]) == [[], [CallStatus.PENDING], [CallStatus.SUCCEEDED]]


@pytest.mark.parametrize("mode", MODES)
def test_completion_writes_once(
    store: ActionStateStore, written: Callable[[], list[ActionState | None]], mode: str
) -> None:
    worker = Worker(store)

    def act(data: Any, ctx: DurableContext) -> str:
        return str(ctx.durable_execute(charge, str(data), reconciler=lookup))

    async def aact(data: Any, ctx: DurableContext) -> str:
        return str(await ctx.durable_execute_async(charge, str(data), reconciler=lookup))

    if mode == "sync":
        worker.register(ACTION, act)
        assert worker.submit(KEY, "o-1", SEQ) == "charged:o-1"
    else:
        worker.register(ACTION, aact)
        assert asyncio.run(worker.asubmit(KEY, "o-1", SEQ)) == "charged:o-1"
    # the run's first record says it began; then the call's two; then completion, once
    begun, *calls, done = written()
    assert statuses([begun, *calls]) == [[], [CallStatus.PENDING], [CallStatus.SUCCEEDED]]
    assert done is not None
    assert done.completed
    assert done.call_results == []
