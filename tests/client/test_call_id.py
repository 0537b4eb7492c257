"""How durable calls are identified: upstream's ids and digests where they are unambiguous,
ids that name what they wrap where upstream's collide, and the fast paths behind them."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import operator
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionstate.client import (
    DurableContext,
    FunctionIdCollisionWarning,
    MemoryStore,
    compute_args_digest,
    compute_function_id,
)
from actionstate.client._call_id import CallIds, _importable_name, _main_module_name
from actionstate.client._locate import event_part_of
from actionstate.serde import Event, event_uuid
from tests.client import _call_id_samples as samples

_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_plain = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=20,
)


def _upstream_digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return hashlib.sha256(cloudpickle.dumps((args, kwargs))).hexdigest()[:16]


@settings(max_examples=300)
@given(st.lists(_plain, max_size=4).map(tuple), st.dictionaries(st.text(max_size=8), _plain))
def test_args_digest_of_plain_data_is_the_cloudpickle_digest(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert compute_args_digest(args, kwargs) == _upstream_digest(args, kwargs)


def test_args_digest_of_other_values_is_the_cloudpickle_digest() -> None:
    # Not plain data: sets, functions pickled by value, exceptions go through cloudpickle.
    args = ({1, 2}, ValueError("no"), frozenset({"a"}))
    kwargs = {"f": lambda x: x + 1}
    assert compute_args_digest(args, kwargs) == _upstream_digest(args, kwargs)


def test_event_uuid_memo_keeps_equal_but_differently_written_values_apart() -> None:
    values: list[Any] = [1, 1.0, True, -0.0, 0.0, [1, 2], (1, 2)]
    for value in values * 2:  # the second pass reads the memo
        event = Event.input(value)
        assert event_part_of(event) == str(event_uuid(event.attributes)), value
    parts = {event_part_of(Event.input(v)) for v in (1, 1.0, True)}
    assert len(parts) == 3


# -- function ids: upstream-compatible kinds keep Flink Agents' id and digest ---------------
# Expected values are upstream's rule applied by hand: "module.qualname" from
# inspect.getmodule and __qualname__, and sha256(cloudpickle.dumps((args, kwargs)))[:16].


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "expected"),
    [
        (samples.charge, (42,), {}, ("tests.client._call_id_samples.charge", "e318a88af4a3523f")),
        (
            samples.charge,
            (42,),
            {"currency": "USD"},
            ("tests.client._call_id_samples.charge", "f4a1673557f489b7"),
        ),
        (
            samples.Account.charge,
            (None, 42),
            {},
            ("tests.client._call_id_samples.Account.charge", "e9a61412d674af85"),
        ),
        (
            samples.Account().charge,
            (42,),
            {},
            ("tests.client._call_id_samples.Account.charge", "e318a88af4a3523f"),
        ),
        (
            samples.Account.fee,
            (42,),
            {},
            ("tests.client._call_id_samples.Account.fee", "e318a88af4a3523f"),
        ),
        (
            samples.Account.open,
            ("ann",),
            {},
            ("tests.client._call_id_samples.Account.open", "b740975a96a0b007"),
        ),
        (samples.pack, (42,), {}, ("tests.client._call_id_samples.pack", "e318a88af4a3523f")),
        (len, ([1, 2],), {}, ("builtins.len", "830d693deff9be6a")),
        ([].append, (1,), {}, ("None.list.append", "fc7e0cc24a6f26d3")),
        (operator.add, (1, 2), {}, ("_operator.add", "4f178445086a4b93")),
    ],
    ids=[
        "function",
        "function-kwargs",
        "unbound-method",
        "bound-method",
        "staticmethod",
        "classmethod",
        "functools.wraps",
        "builtin",
        "builtin-method",
        "builtin-of-c-module",
    ],
)
def test_upstream_kinds_keep_the_flink_agents_id_and_digest(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], expected: Any
) -> None:
    assert CallIds("charge").identify(func, args, kwargs) == expected
    assert compute_function_id(func) == expected[0]
    assert compute_args_digest(args, kwargs) == expected[1]


# -- function ids: the kinds upstream gives one id to ----------------------------------------


def test_a_partial_is_journaled_as_the_call_it_makes() -> None:
    ids = CallIds("charge")
    charge = (
        "tests.client._call_id_samples.charge",
        "e318a88af4a3523f",
    )  # charge(42), pinned above
    assert ids.identify(functools.partial(samples.charge, 42), (), {}) == charge
    assert ids.identify(functools.partial(samples.charge), (42,), {}) == charge
    refund = ids.identify(functools.partial(samples.refund, 42), (), {})
    assert refund == ("tests.client._call_id_samples.refund", charge[1])
    method = functools.partial(samples.Account().charge, 42)
    assert ids.identify(method, (), {}) == (
        "tests.client._call_id_samples.Account.charge",
        charge[1],
    )


def test_partial_bound_arguments_take_part_in_the_digest() -> None:
    ids = CallIds("charge")

    def digest(func: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        return ids.identify(func, args, kwargs)[1]

    assert digest(functools.partial(samples.charge, 42)) != digest(
        functools.partial(samples.charge, 43)
    )
    usd = functools.partial(samples.charge, currency="USD")
    assert digest(usd, 42) == digest(samples.charge, 42, currency="USD")
    # The call's own keywords override the bound ones, as calling the partial does.
    assert digest(usd, 42, currency="EUR") == digest(samples.charge, 42, currency="EUR")
    assert digest(usd, 42) != digest(samples.charge, 42)


def test_callable_instances_are_named_by_their_class_call() -> None:
    assert (
        compute_function_id(samples.Charger(2)) == "tests.client._call_id_samples.Charger.__call__"
    )
    assert (
        compute_function_id(samples.Refunder()) == "tests.client._call_id_samples.Refunder.__call__"
    )
    ids = CallIds("charge")
    # Mutable state may change inside a call (which a replay does not run): left out.
    assert ids.identify(samples.Charger(2), (42,), {}) == ids.identify(
        samples.Charger(3), (42,), {}
    )
    assert ids.identify(samples.Charger(2), (42,), {})[1] == compute_args_digest((42,), {})


def test_a_frozen_dataclass_instance_digests_its_fields() -> None:
    ids = CallIds("charge")
    five = ids.identify(samples.Fee(5), (42,), {})
    state = (("percent", 5),)
    expected = hashlib.sha256(cloudpickle.dumps(((42,), {}, state))).hexdigest()[:16]
    assert five == ("tests.client._call_id_samples.Fee.__call__", expected)
    assert ids.identify(samples.Fee(6), (42,), {})[1] != five[1]


def test_wrappers_without_functools_wraps_are_named_by_what_they_wrap() -> None:
    assert compute_function_id(samples.ship) == (
        "tests.client._call_id_samples.unwrapped.<locals>.wrapper(tests.client._call_id_samples.ship)"
    )
    assert compute_function_id(samples.cancel) == (
        "tests.client._call_id_samples.unwrapped.<locals>.wrapper(tests.client._call_id_samples.cancel)"
    )


def test_a_local_function_whose_closure_holds_itself_has_a_plain_id() -> None:
    countdown = samples.countdown_maker()
    assert (
        compute_function_id(countdown)
        == "tests.client._call_id_samples.countdown_maker.<locals>.countdown"
    )


def test_lambdas_are_told_apart_by_their_code_not_their_line() -> None:
    first, second, third = (
        compute_function_id(f) for f in (samples.first, samples.second, samples.third)
    )
    assert re.fullmatch(r"tests\.client\._call_id_samples\.<lambda>#[0-9a-f]{8}", first)
    assert first != second
    assert first == third  # the same code on another line


def test_lambda_ids_are_the_same_in_every_process() -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tests.client._call_id_samples as s; "
        "from actionstate.client import compute_function_id as f; "
        "print(f(s.first), f(s.member), f(s.ship))"
    )
    here = [compute_function_id(f) for f in (samples.first, samples.member, samples.ship)]
    for seed in ("1", "2", "3"):  # the str hash (frozenset constants' order) differs per seed
        done = subprocess.run(
            [sys.executable, "-c", script, str(Path(samples.__file__).parents[2])],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert done.stdout.split() == here


# -- name= ---------------------------------------------------------------------------------


def test_name_replaces_the_function_id_and_keeps_the_digest() -> None:
    expected = ("pay", "e318a88af4a3523f")
    assert CallIds("charge").identify(samples.charge, (42,), {}, "pay") == expected
    assert CallIds("charge").identify(lambda order: order, (42,), {}, "pay") == expected


@pytest.mark.parametrize("name", ["", 3, b"pay"])
def test_name_must_be_a_non_empty_str(name: Any) -> None:
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        CallIds("charge").identify(samples.charge, (42,), {}, name)


def test_name_is_refused_for_a_function_with_a_name_parameter() -> None:
    with pytest.raises(TypeError, match="has a parameter called name"):
        CallIds("charge").identify(samples.greet, (), {}, "hello")
    bound = functools.partial(samples.greet, name="ann")  # what the message suggests
    assert CallIds("charge").identify(bound, (), {}, "hello")[0] == "hello"


# -- the collision warning -------------------------------------------------------------------


def collisions(*calls: tuple[Callable[..., Any], tuple[Any, ...]]) -> list[warnings.WarningMessage]:
    """The collision warnings one run making ``calls`` (all named "pay") gives."""
    ids = CallIds("charge")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for func, args in calls:
            ids.identify(func, args, {}, "pay")
    return [w for w in caught if issubclass(w.category, FunctionIdCollisionWarning)]


def test_two_callables_of_different_code_under_one_id_warn_once_per_run() -> None:
    calls = [
        (samples.charge, (42,)),
        (samples.refund, (42,)),
        (samples.Account.fee, (42,)),
        (samples.refund, (43,)),
    ]
    [warning] = collisions(*calls)
    message = str(warning.message)
    assert "function id 'pay'" in message
    assert "action 'charge'" in message
    assert "name=" in message
    assert warning.filename == __file__  # it points at the call, not inside the client
    assert len(collisions(*calls)) == 1  # another run warns again


def test_one_callable_under_one_id_does_not_warn() -> None:
    ids = CallIds("charge")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for order in (1, 2):
            ids.identify(samples.charge, (order,), {})
            ids.identify(functools.partial(samples.charge, order), (), {})
            ids.identify(samples.Account().charge, (order,), {})  # another instance each time
            ids.identify(samples.Charger(order), (order,), {})
            ids.identify(samples.Fee(order), (order,), {})
            ids.identify(lambda x: x + 1, (order,), {})  # one code, a new function each time
            ids.identify([].append, (order,), {})
        ids.identify(samples.first, (1,), {})
        ids.identify(samples.third, (1,), {})  # same code, other line: one callable


# -- through a durable context, over every store ---------------------------------------------

KEY, SEQ, ACTION = "order-42", 1, "charge"


def new_context(store: Any, *, resume: bool = False) -> DurableContext:
    event = Event.input({"order": 42})
    state = store.get(KEY, SEQ, ACTION, event) if resume else None
    return DurableContext(store, key=KEY, seq=SEQ, action=ACTION, event=event, state=state)


def durable(ctx: DurableContext, mode: str, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    if mode == "sync":
        return ctx.durable_execute(func, *args, **kw)

    async def go() -> Any:
        return await ctx.durable_execute_async(func, *args, **kw)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("journaled", "now", "args"),
    [
        (functools.partial(samples.charge, 42), functools.partial(samples.refund, 42), ()),
        (samples.Charger(2), samples.Refunder(), (42,)),
        (samples.ship, samples.cancel, (42,)),
        (samples.first, samples.second, (42,)),
    ],
    ids=["partial", "instance", "wrapper-without-wraps", "lambda"],
)
def test_another_callable_at_a_journaled_slot_runs_instead_of_replaying(
    store: Any, journaled: Callable[..., Any], now: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    new_context(store).durable_execute(journaled, *args)
    # A restart whose action took another path: the slot's call is not this one.
    ctx = new_context(store, resume=True)
    assert ctx.durable_execute(now, *args) == now(*args)
    assert (ctx.counts.replayed, ctx.counts.executed) == (0, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_name_is_the_journaled_function_id_and_is_never_forwarded(store: Any, mode: str) -> None:
    seen: list[dict[str, Any]] = []

    def echo(order: int, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return kwargs

    ctx = new_context(store)
    assert durable(ctx, mode, echo, 42, name="pay", currency="EUR") == {"currency": "EUR"}
    state = store.get(KEY, SEQ, ACTION, Event.input({"order": 42}))
    [call] = state.call_results
    assert (call.function_id, call.args_digest) == (
        "pay",
        compute_args_digest((42,), {"currency": "EUR"}),
    )

    def renamed(order: int, **kwargs: Any) -> Any:
        raise AssertionError("a journaled call is replayed, never run")

    resumed = new_context(store, resume=True)  # the function changed; its name did not
    assert durable(resumed, mode, renamed, 42, name="pay", currency="EUR") == {"currency": "EUR"}
    assert seen == [{"currency": "EUR"}]
    assert resumed.counts.replayed == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_collision_warning_points_at_the_durable_call(mode: str) -> None:
    ctx = new_context(MemoryStore())
    durable(ctx, mode, samples.charge, 42, name="pay")
    with pytest.warns(FunctionIdCollisionWarning, match="'pay'") as caught:
        durable(ctx, mode, samples.refund, 42, name="pay")
    assert caught[0].filename == __file__


# -- __main__ is named as the file would be when imported -------------------------------------


def test_main_is_named_by_its_spec_when_run_with_dash_m(tmp_path: Path) -> None:
    assert _importable_name("shop.app", str(tmp_path / "app.py")) == "shop.app"


def test_a_script_is_named_by_its_stem_and_enclosing_packages(tmp_path: Path) -> None:
    (tmp_path / "app.py").touch()
    assert _importable_name(None, str(tmp_path / "app.py")) == "app"
    shop = tmp_path / "shop" / "orders"
    shop.mkdir(parents=True)
    for package in (shop.parent, shop):
        (package / "__init__.py").touch()
    assert _importable_name(None, str(shop / "app.py")) == "shop.orders.app"
    assert _importable_name(None, str(shop / "__init__.py")) == "shop.orders"
    assert _importable_name(None, str(shop / "__main__.py")) == "shop.orders.__main__"
    # python -m shop.orders runs shop/orders/__main__.py under that spec name: the same id.
    assert _importable_name("shop.orders.__main__", str(shop / "__main__.py")) == (
        "shop.orders.__main__"
    )


def test_main_without_a_file_stays_main() -> None:
    assert _importable_name(None, None) == "__main__"  # python -c, a REPL


def test_functions_of_main_are_journaled_under_the_importable_name() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def pay(order):\n    return order\n", namespace)  # a function of __main__
    main_name = _main_module_name()
    assert main_name != "__main__"  # pytest's own __main__ has a file
    assert compute_function_id(namespace["pay"]) == f"{main_name}.pay"
