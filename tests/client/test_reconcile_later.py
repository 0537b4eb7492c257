"""A reconciler that cannot tell yet: ``ReconcileLater`` leaves the call PENDING.

Over the memory store and the real Kafka broker, with sync and async actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actionstate.client import (
    ActionStateStore,
    DurableContext,
    ReconcileLater,
    UnsettledCall,
    Worker,
)
from actionstate.serde import CallStatus

StoreOpener = Callable[..., ActionStateStore]  # the store fixtures' openers
KEY = "order-9"


@pytest.fixture(params=["memory", "kafka"])
def opener(request: pytest.FixtureRequest) -> StoreOpener:
    fixture = "memory_store_opener" if request.param == "memory" else "kafka_store_opener"
    made: StoreOpener = request.getfixturevalue(fixture)
    return made


class Crash(BaseException):
    """The worker dies while the payment runs: its slot stays PENDING."""


class Ledger:
    """The outside world a reconciler asks; ``answer`` None means "lookup timed out"."""

    def __init__(self) -> None:
        self.payments: list[str] = []
        self.crash = True
        self.answer: str | None = None
        self.lookups = 0
        self.swallow = False

    def pay(self, order: str, idempotency_key: str) -> str:
        self.payments.append(idempotency_key)
        if self.crash:
            raise Crash
        return f"paid:{order}"

    def lookup(self) -> str:
        self.lookups += 1
        if self.answer is None:
            raise ReconcileLater("ledger lookup timed out")
        return self.answer


def build(store: ActionStateStore, ledger: Ledger, *, is_async: bool) -> Worker:
    worker = Worker(store)

    def pay(ctx: DurableContext, order: str) -> Any:
        return ctx.durable_execute(ledger.pay, order, ctx.next_call_id, reconciler=ledger.lookup)

    if is_async:

        @worker.action("checkout")
        async def checkout_async(data: Any, ctx: DurableContext) -> Any:
            try:
                return await ctx.durable_execute_async(
                    ledger.pay, data["order"], ctx.next_call_id, reconciler=ledger.lookup
                )
            except ReconcileLater:
                if not ledger.swallow:
                    raise
                return "gave up"

    else:

        @worker.action("checkout")
        def checkout(data: Any, ctx: DurableContext) -> Any:
            try:
                return pay(ctx, data["order"])
            except ReconcileLater:
                if not ledger.swallow:
                    raise
                return "gave up"

    return worker


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
def test_reconcile_later_leaves_the_call_pending_until_a_later_recover(
    opener: StoreOpener, is_async: bool, swallow: bool
) -> None:
    ledger = Ledger()
    with pytest.raises(Crash):
        build(opener(), ledger, is_async=is_async).submit(KEY, {"order": "o-9"}, seq=0)
    ledger.crash = False
    ledger.swallow = swallow  # an action that catches it must not complete either

    store = opener()
    store.rebuild()
    report = build(store, ledger, is_async=is_async).recover()
    [(skey, state)] = store.states()
    assert not report.ok
    assert report.failures == []
    assert report.actions_completed == 0
    assert report.calls.unsettled == 1
    assert report.calls_reconciled == 0
    [unsettled] = report.unsettled
    assert unsettled == UnsettledCall(
        f"{KEY}_0_{skey.event_uuid}_{skey.action_uuid}",
        "checkout",
        0,
        "ledger lookup timed out",
    )
    assert not state.completed
    assert [c.status for c in state.call_results] == [CallStatus.PENDING]

    store.rebuild()  # a later recovery asks again; now the ledger knows
    ledger.answer = "paid:o-9 (found)"
    report = build(store, ledger, is_async=is_async).recover()
    assert report.ok, report
    assert (report.actions_completed, report.calls_reconciled) == (1, 1)
    assert (ledger.lookups, len(ledger.payments)) == (2, 1)
    assert build(store, ledger, is_async=is_async).submit(KEY, {"order": "o-9"}, seq=0) == (
        "paid:o-9 (found)"
    )


def test_reconcile_later_from_a_call_without_reconciler_is_an_ordinary_failure(
    opener: StoreOpener,
) -> None:
    store = opener()
    worker = Worker(store)

    def unsure() -> str:
        raise ReconcileLater("no reconciler to ask")

    @worker.action("checkout")
    def checkout(data: Any, ctx: DurableContext) -> Any:
        return ctx.durable_execute(unsure)

    with pytest.raises(ReconcileLater):
        worker.submit(KEY, {"order": "o-1"}, seq=0)
    [(_, state)] = store.states()
    assert [c.status for c in state.call_results] == [CallStatus.FAILED]

    report = worker.recover()  # the journaled failure replays: a failure, not "unsettled"
    assert report.unsettled == []
    assert [type(f.error) for f in report.failures] == [ReconcileLater]
