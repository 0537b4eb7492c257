"""DurableContext: DESIGN §5's state machine and its persist counts, over every store.

Every seed scenario of Flink Agents' reconcilable-context tests runs sync and async, over
the ``store`` fixture (memory and the real Kafka broker).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import cloudpickle
import pytest

from actionstate.client import (
    DurableCall,
    DurableContext,
    DurableExecutionError,
    compute_args_digest,
    compute_function_id,
    validate_reconciler,
)
from actionstate.serde import (
    CLOUDPICKLE_CODEC,
    ActionState,
    CallResult,
    CallStatus,
    Event,
)
from tests._support import Tracked

KEY = "order-1"
SEQ = 0
ACTION = "charge"

MODES = ["sync", "async"]


class CountingStore:
    """The real store, with every state handed to put/aput kept in order."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.puts: list[ActionState] = []

    def put(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        self.puts.append(state.model_copy(deep=True))
        self.inner.put(key, seq, action, event, state)

    async def aput(self, key: str, seq: int, action: str, event: Event, state: ActionState) -> None:
        self.puts.append(state.model_copy(deep=True))
        await self.inner.aput(key, seq, action, event, state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def call_value(value: str) -> str:
    return f"call:{value}"


def other_value(value: str) -> str:
    return f"other:{value}"


def fail_value(value: str) -> str:
    raise ValueError(f"failed:{value}")


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


async def async_call_value(value: str) -> str:
    await asyncio.sleep(0)
    return f"call:{value}"


def run(
    ctx: DurableContext,
    mode: str,
    func: Callable[..., Any],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """One durable call, through the sync API or awaited through the async one."""
    if mode == "sync":
        return ctx.durable_execute(func, *args, reconciler=reconciler, **kwargs)

    async def go() -> Any:
        return await ctx.durable_execute_async(func, *args, reconciler=reconciler, **kwargs)

    return asyncio.run(go())


def slot(
    func: Callable[..., Any],
    *args: Any,
    status: CallStatus | None,
    result: Any = None,
    error: BaseException | None = None,
    **kwargs: Any,
) -> CallResult:
    return CallResult(
        function_id=compute_function_id(func),
        args_digest=compute_args_digest(args, kwargs),
        result_payload=None
        if error is not None or status is CallStatus.PENDING
        else cloudpickle.dumps(result),
        exception_payload=cloudpickle.dumps(error) if error is not None else None,
        status=status,
    )


def context(store: Any, *slots: CallResult) -> tuple[DurableContext, CountingStore, Event]:
    """A context resuming a journal of ``slots`` that went through the store and back."""
    event = Event.input({"order": KEY})
    state = None
    if slots:
        store.put(KEY, SEQ, ACTION, event, ActionState(task_event=event, call_results=list(slots)))
        state = store.get(KEY, SEQ, ACTION, event)
        assert state is not None
    counting = CountingStore(store)
    ctx = DurableContext(counting, key=KEY, seq=SEQ, action=ACTION, event=event, state=state)
    return ctx, counting, event


def stored(store: Any, event: Event) -> list[CallResult]:
    state = store.get(KEY, SEQ, ACTION, event)
    assert state is not None
    return list(state.call_results)


def payload(data: bytes | None) -> Any:
    assert data is not None
    return CLOUDPICKLE_CODEC.decode(data)


# -- identity: function id and args digest as Flink Agents computes them ----------------------


class Sample:
    def method(self, x: int) -> int:
        return x

    @staticmethod
    def static(x: int) -> int:
        return x

    @classmethod
    def klass(cls, x: int) -> int:
        return x


def test_function_id_is_module_dot_qualname() -> None:
    assert compute_function_id(call_value) == f"{__name__}.call_value"
    assert compute_function_id(Sample().method) == f"{__name__}.Sample.method"
    assert compute_function_id(Sample.static) == f"{__name__}.Sample.static"
    assert compute_function_id(Sample.klass) == f"{__name__}.Sample.klass"
    assert f"{__name__}.test_function_id_is_module_dot_qualname.<locals>.<lambda>#" in (
        compute_function_id(lambda: 1)
    )  # lambdas: + a code fingerprint (test_call_id.py)
    assert compute_function_id(len) == "builtins.len"


def test_args_digest_is_sha256_prefix_of_cloudpickled_args_and_kwargs() -> None:
    args, kwargs = (1, "two", {"three": [3]}), {"four": 4.0}
    expected = hashlib.sha256(cloudpickle.dumps((args, kwargs))).hexdigest()[:16]
    assert compute_args_digest(args, kwargs) == expected
    assert len(compute_args_digest((), {})) == 16
    assert compute_args_digest((1, 2), {}) != compute_args_digest((2, 1), {})
    assert compute_args_digest((1,), {"y": 2}) != compute_args_digest((1, 2), {})


def test_args_digest_falls_back_to_str_when_args_do_not_pickle() -> None:
    lock = threading.Lock()  # cloudpickle refuses locks
    expected = hashlib.sha256(str(((lock,), {})).encode()).hexdigest()[:16]
    assert compute_args_digest((lock,), {}) == expected


# -- reconciler validation --------------------------------------------------------------------


class Helpers:
    def bound_no_arg(self) -> str:
        return "ok"

    def requires_arg(self, value: int) -> str:
        return str(value)


def test_validate_reconciler_accepts_none_and_zero_arg_callables() -> None:
    assert validate_reconciler(None) is None
    bound = Helpers().bound_no_arg
    assert validate_reconciler(bound) is bound

    def defaults(x: int = 1) -> int:
        return x

    assert validate_reconciler(defaults) is defaults


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (1, "reconciler must be callable"),
        ("lookup", "reconciler must be callable"),
        (Helpers().requires_arg, "takes no arguments"),
        (lambda order: order, "takes no arguments"),
    ],
)
def test_bad_reconciler_is_a_type_error_before_anything_runs(
    store: Any, mode: str, bad: Any, match: str
) -> None:
    ctx, counting, _ = context(store)
    func = Tracked(call_value)
    call = ctx.durable_execute if mode == "sync" else ctx.durable_execute_async
    with pytest.raises(TypeError, match=match):
        call(func, "order-1", reconciler=bad)  # async: raises at call time, not at await
    assert func.calls == 0
    assert counting.puts == []
    assert ctx.call_index == 0


# -- the seed scenarios -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_first_run_with_reconciler_persists_pending_then_terminal(store: Any, mode: str) -> None:
    ctx, counting, event = context(store)
    reconciler = Tracked(lambda: "reconciled:order-1")

    assert run(ctx, mode, call_value, "order-1", reconciler=reconciler) == "call:order-1"

    assert reconciler.calls == 0
    assert len(counting.puts) == 2
    assert [c.status for c in counting.puts[0].call_results] == [CallStatus.PENDING]
    assert [c.status for c in counting.puts[1].call_results] == [CallStatus.SUCCEEDED]
    [persisted] = stored(store, event)
    assert persisted.matches(compute_function_id(call_value), compute_args_digest(("order-1",), {}))
    assert payload(persisted.result_payload) == "call:order-1"
    assert ctx.call_index == 1
    assert (ctx.counts.executed, ctx.counts.replayed, ctx.counts.reconciled) == (1, 0, 0)


@pytest.mark.parametrize("mode", MODES)
def test_first_run_without_reconciler_persists_once(store: Any, mode: str) -> None:
    ctx, counting, event = context(store)

    assert run(ctx, mode, call_value, "order-1") == "call:order-1"

    assert len(counting.puts) == 1
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.SUCCEEDED
    assert payload(persisted.result_payload) == "call:order-1"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_reconciler", [False, True])
def test_replay_success_runs_nothing_and_persists_nothing(
    store: Any, mode: str, with_reconciler: bool
) -> None:
    func = Tracked(call_value)
    ctx, counting, _ = context(
        store, slot(func, "order-1", status=CallStatus.SUCCEEDED, result="kept")
    )
    reconciler = Tracked(lambda: "reconciled") if with_reconciler else None

    assert run(ctx, mode, func, "order-1", reconciler=reconciler) == "kept"

    assert func.calls == 0
    assert reconciler is None or reconciler.calls == 0
    assert counting.puts == []
    assert ctx.call_index == 1
    assert ctx.counts.replayed == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_reconciler", [False, True])
def test_replay_failure_reraises_the_journaled_exception(
    store: Any, mode: str, with_reconciler: bool
) -> None:
    func = Tracked(call_value)
    journaled = slot(
        func, "order-1", status=CallStatus.FAILED, error=ValueError("declined:order-1")
    )
    ctx, counting, _ = context(store, journaled)
    reconciler = Tracked(lambda: "reconciled") if with_reconciler else None

    with pytest.raises(ValueError, match="declined:order-1"):
        run(ctx, mode, func, "order-1", reconciler=reconciler)

    assert func.calls == 0
    assert reconciler is None or reconciler.calls == 0
    assert counting.puts == []
    assert ctx.call_index == 1


@pytest.mark.parametrize("mode", MODES)
def test_legacy_slot_without_status_replays_and_is_never_pending(store: Any, mode: str) -> None:
    func = Tracked(call_value)
    ctx, counting, _ = context(store, slot(func, "order-1", status=None, result="legacy"))
    reconciler = Tracked(lambda: "reconciled")

    assert run(ctx, mode, func, "order-1", reconciler=reconciler) == "legacy"

    assert (func.calls, reconciler.calls, len(counting.puts)) == (0, 0, 0)


@pytest.mark.parametrize("mode", MODES)
def test_reconcile_success_persists_once_without_running_the_call(store: Any, mode: str) -> None:
    func = Tracked(call_value)
    ctx, counting, event = context(store, slot(func, "order-1", status=CallStatus.PENDING))

    result = run(ctx, mode, func, "order-1", reconciler=lambda: "reconciled:order-1")

    assert result == "reconciled:order-1"
    assert func.calls == 0
    assert len(counting.puts) == 1
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.SUCCEEDED
    assert payload(persisted.result_payload) == "reconciled:order-1"
    assert ctx.call_index == 1
    assert ctx.counts.reconciled == 1


@pytest.mark.parametrize("mode", MODES)
def test_reconcile_failure_persists_failed_and_reraises(store: Any, mode: str) -> None:
    func = Tracked(call_value)
    ctx, counting, event = context(store, slot(func, "order-1", status=CallStatus.PENDING))

    def reconciler() -> str:
        raise RuntimeError("reconcile unavailable")

    with pytest.raises(RuntimeError, match="reconcile unavailable"):
        run(ctx, mode, func, "order-1", reconciler=reconciler)

    assert func.calls == 0
    assert len(counting.puts) == 1
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.FAILED
    error = payload(persisted.exception_payload)
    assert isinstance(error, RuntimeError)
    assert str(error) == "reconcile unavailable"
    assert ctx.call_index == 1


@pytest.mark.parametrize("mode", MODES)
def test_mismatch_with_reconciler_clears_then_runs_with_three_persists(
    store: Any, mode: str
) -> None:
    ctx, counting, event = context(
        store,
        slot(call_value, "other-order", status=CallStatus.PENDING),
        slot(other_value, "stale", status=CallStatus.SUCCEEDED, result="stale"),
    )
    reconciler = Tracked(lambda: "reconciled:order-1")

    assert run(ctx, mode, call_value, "order-1", reconciler=reconciler) == "call:order-1"

    assert reconciler.calls == 0
    assert [len(p.call_results) for p in counting.puts] == [0, 1, 1]
    assert counting.puts[1].call_results[0].status is CallStatus.PENDING
    [persisted] = stored(store, event)
    assert persisted.matches(compute_function_id(call_value), compute_args_digest(("order-1",), {}))
    assert persisted.status is CallStatus.SUCCEEDED


@pytest.mark.parametrize("mode", MODES)
def test_mismatch_without_reconciler_drops_the_rest_and_persists_once(
    store: Any, mode: str
) -> None:
    ctx, counting, event = context(
        store,
        slot(call_value, "order-1", status=CallStatus.SUCCEEDED, result="call:order-1"),
        slot(other_value, "order-1", status=CallStatus.SUCCEEDED, result="stale"),
        slot(other_value, "order-2", status=CallStatus.SUCCEEDED, result="stale"),
    )

    assert run(ctx, mode, call_value, "order-1") == "call:order-1"  # replayed
    assert run(ctx, mode, call_value, "order-2") == "call:order-2"  # another path from here

    assert len(counting.puts) == 1
    persisted = stored(store, event)
    assert [c.args_digest for c in persisted] == [
        compute_args_digest(("order-1",), {}),
        compute_args_digest(("order-2",), {}),
    ]
    assert (ctx.counts.replayed, ctx.counts.executed) == (1, 1)


@pytest.mark.parametrize("mode", MODES)
def test_pending_slot_without_reconciler_is_run_again(store: Any, mode: str) -> None:
    func = Tracked(call_value)
    ctx, counting, event = context(store, slot(func, "order-1", status=CallStatus.PENDING))

    assert run(ctx, mode, func, "order-1") == "call:order-1"

    assert func.calls == 1
    assert len(counting.puts) == 1
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.SUCCEEDED
    assert ctx.counts.reexecuted == 1


@pytest.mark.parametrize("mode", MODES)
def test_mixed_completion_only_and_reconcilable_calls_in_one_action(store: Any, mode: str) -> None:
    quote = Tracked(lambda order: f"quote:{order}")
    pay = Tracked(call_value)
    ship = Tracked(lambda order: f"ship:{order}")
    lookups = Tracked(lambda: "reconciled:order-1")

    def action(ctx: DurableContext) -> list[Any]:
        return [
            run(ctx, mode, quote, "order-1"),
            run(ctx, mode, pay, "order-1", reconciler=lookups),
            run(ctx, mode, ship, "order-1"),
        ]

    ctx, counting, event = context(store)
    assert action(ctx) == ["quote:order-1", "call:order-1", "ship:order-1"]
    assert len(counting.puts) == 4  # 1 + (pending, terminal) + 1
    assert (quote.calls, pay.calls, ship.calls, lookups.calls) == (1, 1, 1, 0)

    # A crash while pay ran: quote journaled, pay PENDING, ship never reached.
    crashed = [stored(store, event)[0], counting.puts[1].call_results[1]]
    ctx, counting, _ = context(store, *crashed)
    assert action(ctx) == ["quote:order-1", "reconciled:order-1", "ship:order-1"]
    assert len(counting.puts) == 2  # reconcile + ship
    assert (quote.calls, pay.calls, ship.calls, lookups.calls) == (1, 1, 2, 1)
    assert (ctx.counts.replayed, ctx.counts.reconciled, ctx.counts.executed) == (1, 1, 1)

    # Everything journaled now: a third run replays all three and writes nothing.
    ctx, counting, _ = context(store, *stored(store, event))
    assert action(ctx) == ["quote:order-1", "reconciled:order-1", "ship:order-1"]
    assert counting.puts == []
    assert (quote.calls, pay.calls, ship.calls, lookups.calls) == (1, 1, 2, 1)


@pytest.mark.parametrize("mode", MODES)
def test_reconciler_keyword_is_never_forwarded(store: Any, mode: str) -> None:
    ctx, _, event = context(store)

    assert run(ctx, mode, echo_kwargs, reconciler=lambda: "unused") == {}
    assert run(ctx, mode, echo_kwargs, amount=3, reconciler=lambda: "unused") == {"amount": 3}

    first, second = stored(store, event)
    assert first.args_digest == compute_args_digest((), {})
    assert second.args_digest == compute_args_digest((), {"amount": 3})


@pytest.mark.parametrize("mode", MODES)
def test_failure_of_the_call_is_journaled_and_replayed(store: Any, mode: str) -> None:
    func = Tracked(fail_value)
    ctx, counting, event = context(store)
    with pytest.raises(ValueError, match="failed:order-1"):
        run(ctx, mode, func, "order-1", reconciler=lambda: "unused")
    assert len(counting.puts) == 2
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.FAILED

    ctx, counting, _ = context(store, persisted)
    with pytest.raises(ValueError, match="failed:order-1"):
        run(ctx, mode, func, "order-1")
    assert func.calls == 1
    assert counting.puts == []


# -- async specifics ------------------------------------------------------------------------


def test_async_writes_the_pending_slot_when_awaited_not_when_created(store: Any) -> None:
    ctx, counting, event = context(store)
    reconciler = Tracked(lambda: "reconciled")

    async def go() -> str:
        call = ctx.durable_execute_async(call_value, "order-1", reconciler=reconciler)
        assert isinstance(call, DurableCall)
        assert counting.puts == []
        assert store.get(KEY, SEQ, ACTION, event) is None
        return await call

    assert asyncio.run(go()) == "call:order-1"
    assert len(counting.puts) == 2
    assert reconciler.calls == 0


def test_async_runs_coroutine_functions_and_async_reconcilers(store: Any) -> None:
    ctx, _, event = context(store)

    async def lookup() -> str:
        await asyncio.sleep(0)
        return "reconciled"

    async def go() -> tuple[str, str]:
        first = await ctx.durable_execute_async(async_call_value, "order-1")
        second = await ctx.durable_execute_async(async_call_value, "order-2", reconciler=lookup)
        return first, second

    assert asyncio.run(go()) == ("call:order-1", "call:order-2")
    assert [payload(c.result_payload) for c in stored(store, event)] == [
        "call:order-1",
        "call:order-2",
    ]

    pending = slot(async_call_value, "order-1", status=CallStatus.PENDING)
    ctx, counting, _ = context(store, pending)

    async def again() -> str:
        return await ctx.durable_execute_async(async_call_value, "order-1", reconciler=lookup)

    assert asyncio.run(again()) == "reconciled"
    assert len(counting.puts) == 1


def test_async_durable_call_can_be_awaited_once(store: Any) -> None:
    ctx, _, _ = context(store)

    async def go() -> None:
        call = ctx.durable_execute_async(call_value, "order-1")
        await call
        with pytest.raises(DurableExecutionError, match="already awaited"):
            await call

    asyncio.run(go())


def test_gathered_async_calls_are_journaled_in_order(store: Any) -> None:
    ctx, _, event = context(store)

    async def go() -> list[str]:
        calls: list[Awaitable[str]] = [
            ctx.durable_execute_async(async_call_value, f"order-{i}") for i in range(5)
        ]
        return await asyncio.gather(*calls)

    assert asyncio.run(go()) == [f"call:order-{i}" for i in range(5)]
    digests = [c.args_digest for c in stored(store, event)]
    assert digests == [compute_args_digest((f"order-{i}",), {}) for i in range(5)]


def test_sync_api_rejects_coroutine_functions(store: Any) -> None:
    ctx, counting, _ = context(store)
    with pytest.raises(TypeError, match="durable_execute_async"):
        ctx.durable_execute(async_call_value, "order-1")

    async def lookup() -> str:
        return "x"

    with pytest.raises(TypeError, match="durable_execute_async"):
        ctx.durable_execute(call_value, "order-1", reconciler=lookup)
    assert counting.puts == []


# -- ids, nesting, what is (not) journaled -----------------------------------------------------


def test_next_call_id_is_state_key_and_index_and_stable_across_runs(store: Any) -> None:
    ctx, _, event = context(store)
    seen: list[str] = []

    def pay(order: str, idempotency_key: str) -> str:
        seen.append(idempotency_key)
        return order

    first = ctx.next_call_id
    assert first == f"{ctx.state_key}:0"
    ctx.durable_execute(pay, "a", ctx.next_call_id)
    assert ctx.next_call_id == f"{ctx.state_key}:1"
    ctx.durable_execute(pay, "b", ctx.next_call_id)

    again, _, _ = context(store, *stored(store, event))
    assert again.state_key == ctx.state_key
    assert again.next_call_id == first
    again.durable_execute(pay, "a", again.next_call_id)  # same id → same digest → replayed
    assert again.counts.replayed == 1
    assert seen == [f"{ctx.state_key}:0", f"{ctx.state_key}:1"]


def test_nested_durable_calls_are_rejected(store: Any) -> None:
    ctx, _, _ = context(store)

    def outer() -> str:
        return ctx.durable_execute(call_value, "inner")

    with pytest.raises(DurableExecutionError, match="nested"):
        ctx.durable_execute(outer)


class Abort(BaseException):
    """Stands for KeyboardInterrupt / cancellation: not an outcome of the call."""


@pytest.mark.parametrize("mode", MODES)
def test_base_exceptions_leave_the_slot_pending(store: Any, mode: str) -> None:
    def interrupted(order: str) -> str:
        raise Abort

    ctx, counting, event = context(store)
    with pytest.raises(Abort):
        run(ctx, mode, interrupted, "order-1", reconciler=lambda: "reconciled")
    assert len(counting.puts) == 1
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.PENDING

    ctx, _, _ = context(store, persisted)
    assert run(ctx, mode, interrupted, "order-1", reconciler=lambda: "reconciled") == "reconciled"


class Unpicklable(Exception):
    def __init__(self, order: str) -> None:
        super().__init__(f"declined {order}")
        self.lock = threading.Lock()


@pytest.mark.parametrize("mode", MODES)
def test_unpicklable_exception_is_journaled_as_a_stand_in(store: Any, mode: str) -> None:
    def declines(order: str) -> str:
        raise Unpicklable(order)

    ctx, _, event = context(store)
    with pytest.raises(Unpicklable):
        run(ctx, mode, declines, "order-1")
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.FAILED

    ctx, _, _ = context(store, persisted)
    with pytest.raises(DurableExecutionError, match="Unpicklable: declined order-1"):
        run(ctx, mode, declines, "order-1")


@pytest.mark.parametrize("mode", MODES)
def test_unpicklable_result_is_a_clear_error_and_leaves_the_slot_pending(
    store: Any, mode: str
) -> None:
    def opens_a_lock() -> Any:
        return threading.Lock()

    ctx, _, event = context(store)
    with pytest.raises(DurableExecutionError, match="could not be encoded"):
        run(ctx, mode, opens_a_lock, reconciler=lambda: None)
    [persisted] = stored(store, event)
    assert persisted.status is CallStatus.PENDING
    assert ctx.call_index == 0
