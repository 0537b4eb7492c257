"""Call order inside one action: ids taken when a call is made, divergence made visible.

Over the memory store and the real Kafka broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from actionstate.client import (
    ActionStateStore,
    DurableCall,
    DurableContext,
    DurableExecutionError,
    Worker,
)
from actionstate.serde import Event, state_key

StoreOpener = Callable[..., ActionStateStore]  # the store fixtures' openers
KEY = "order-1"
SECRET = "card-4242-4242"  # an argument that must never reach a log line


@pytest.fixture(params=["memory", "kafka"])
def opener(request: pytest.FixtureRequest) -> StoreOpener:
    fixture = "memory_store_opener" if request.param == "memory" else "kafka_store_opener"
    made: StoreOpener = request.getfixturevalue(fixture)
    return made


async def pay(order: str, idempotency_key: str) -> str:
    await asyncio.sleep(0)
    return f"paid:{order}:{idempotency_key}"


def context(store: ActionStateStore, event: Event) -> DurableContext:
    state = store.get(KEY, 0, "checkout", event)
    return DurableContext(store, key=KEY, seq=0, action="checkout", event=event, state=state)


def test_next_call_id_is_unique_per_call_made_before_the_first_await(opener: StoreOpener) -> None:
    store = opener()
    event = Event.input({"cart": KEY})

    made: list[DurableCall[str]] = []

    async def checkout(ctx: DurableContext) -> list[str]:
        made[:] = [
            ctx.durable_execute_async(pay, order, ctx.next_call_id) for order in ("a", "b", "c")
        ]
        return await asyncio.gather(*made)

    ctx = context(store, event)
    ids = [f"{ctx.state_key}:{i}" for i in range(3)]
    results = [f"paid:{o}:{i}" for o, i in zip("abc", ids, strict=True)]
    assert asyncio.run(checkout(ctx)) == results
    assert [c.call_id for c in made] == ids
    assert ctx.next_call_id == f"{ctx.state_key}:3"

    again = context(store, event)  # a restart makes the same calls with the same ids
    assert asyncio.run(checkout(again)) == results
    assert (again.counts.replayed, again.counts.executed) == (3, 0)


def test_calls_awaited_out_of_order_are_refused_and_later_ones_voided(
    opener: StoreOpener,
) -> None:
    ctx = context(opener(), Event.input({"cart": KEY}))

    async def go() -> None:
        first = ctx.durable_execute_async(pay, "a", ctx.next_call_id)
        second = ctx.durable_execute_async(pay, "b", ctx.next_call_id)
        with pytest.raises(DurableExecutionError, match="awaited before call #0"):
            await second
        with pytest.raises(DurableExecutionError, match="void"):
            await first
        # Nothing was journaled: the next call made takes index 0 again.
        assert ctx.next_call_id.endswith(":0")
        assert await ctx.durable_execute_async(pay, "c", ctx.next_call_id) == (
            f"paid:c:{ctx.state_key}:0"
        )

    asyncio.run(go())


class Crash(Exception):
    """Stands for the worker dying once its calls are journaled."""


def test_a_run_that_diverges_is_counted_and_logged_without_payloads(
    opener: StoreOpener, caplog: pytest.LogCaptureFixture
) -> None:
    # Each coroutine awaits other I/O before it makes its durable call, so the journal order
    # follows that I/O's timing; here the second run's timing is the other way round.
    delays = {"a": 0.0, "b": 0.05}
    crash = [True]

    def build(store: ActionStateStore) -> Worker:
        worker = Worker(store)

        @worker.action("checkout")
        async def checkout(data: Any, ctx: DurableContext) -> Any:
            async def one(order: str) -> str:
                await asyncio.sleep(delays[order])  # stands for an unrelated lookup
                return await ctx.durable_execute_async(charge, order, SECRET)

            results = await asyncio.gather(one("a"), one("b"))
            if crash[0]:
                raise Crash
            return results

        return worker

    with pytest.raises(Crash):
        build(opener()).submit(KEY, {"cart": KEY}, seq=0)

    delays.update(a=0.05, b=0.0)
    crash[0] = False
    store = opener()
    store.rebuild()
    with caplog.at_level(logging.WARNING, logger="actionstate.client.durable"):
        report = build(store).recover()

    assert report.ok, report.failures
    assert report.calls_diverged == 1
    assert report.calls_executed == 2
    [(skey, _)] = store.states()
    [line] = [r.getMessage() for r in caplog.records]
    assert "call #0" in line
    assert state_key(skey.agent_key, skey.seq, skey.event_uuid, skey.action_uuid) in line
    assert SECRET not in caplog.text


def charge(order: str, card: str) -> str:
    return f"charged:{order}"
