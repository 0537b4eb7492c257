"""The fast paths behind durable calls give exactly what the slow, upstream-defined ones give."""

from __future__ import annotations

import hashlib
from typing import Any

import cloudpickle
from hypothesis import given, settings
from hypothesis import strategies as st

from actionstate.client import compute_args_digest
from actionstate.client._records import event_part_of
from actionstate.serde import Event, event_uuid

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
