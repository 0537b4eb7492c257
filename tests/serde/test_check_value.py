"""The rebuild's value check (``check_action_state``, through ``check_record``) accepts exactly
what ``decode_action_state`` accepts, and says whether the state is completed, without
building it: on the Java seder's vectors, on hypothesis states and on broken records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actionstate.serde import (
    BadReason,
    SerdeError,
    check_record,
    decode_action_state,
    encode_action_state,
    encode_record,
)
from actionstate.serde._decode import check_action_state
from actionstate.serde._records import codec_headers
from tests.serde.test_properties import SETTINGS, _mutate, action_states

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "seder" / "records"
SKEY = "a_1_00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001"


def _same_verdict(data: bytes) -> None:
    """The check raises exactly when the decoder does, and agrees on ``completed``."""
    try:
        state = decode_action_state(data)
    except SerdeError as exc:
        fault = str(exc)
    else:
        fault = None
    if fault is not None:
        with pytest.raises(SerdeError) as checked:
            check_action_state(data)
        assert str(checked.value) == fault  # the same rule names the same fault
        assert check_record(SKEY, data, [], None).reason is BadReason.VALUE
        return
    assert check_action_state(data) is state.completed
    verdict = check_record(SKEY, data, [], None)
    assert verdict.reason is None
    assert verdict.completed is state.completed
    assert verdict.state is None  # nothing was built


@pytest.mark.parametrize("path", sorted(VECTORS.iterdir()), ids=lambda p: p.name)
def test_java_vectors_get_the_decoders_verdict(path: Path) -> None:
    data = path.read_bytes()
    _same_verdict(data)
    for cut in range(0, len(data), max(1, len(data) // 25)):
        _same_verdict(data[:cut])  # truncated records


def test_vectors_include_completed_and_unfinished_states() -> None:
    found = {check_action_state(p.read_bytes()) for p in VECTORS.iterdir()}
    assert found == {True, False}


@SETTINGS
@given(action_states())
def test_states_get_the_decoders_verdict(state: Any) -> None:
    _same_verdict(encode_action_state(state))


@SETTINGS
@given(action_states(), st.data())
def test_mutated_states_get_the_decoders_verdict(state: Any, data: st.DataObject) -> None:
    wire: Any = json.loads(encode_action_state(state))
    for _ in range(data.draw(st.integers(1, 3))):
        wire = _mutate(wire, data)
    _same_verdict(json.dumps(wire).encode())


@SETTINGS
@given(action_states(), st.data())
def test_flipped_bytes_get_the_decoders_verdict(state: Any, data: st.DataObject) -> None:
    raw = bytearray(encode_action_state(state))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _same_verdict(bytes(raw))


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_get_the_decoders_verdict(data: bytes) -> None:
    _same_verdict(data)


def test_decode_still_carries_the_state_and_completed() -> None:
    state = decode_action_state((VECTORS / "completed.json").read_bytes())
    value, headers = encode_record(SKEY, state, codec="cloudpickle", secret=None, version=None)
    verdict = check_record(SKEY, value, headers, None, decode=True)
    assert verdict.state == state
    assert verdict.completed is True


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["actionstate.codec", "x", "actionstate.writer"]),
            st.sampled_from([b"cloudpickle", b"json", b"\xff", None]),
        )
    )
)
def test_codec_headers_keep_the_verdict_of_the_full_headers(headers: list[Any]) -> None:
    value = (VECTORS / "completed.json").read_bytes()
    full = check_record(SKEY, value, headers, None)
    kept = check_record(SKEY, value, codec_headers(headers), None)
    assert (kept.reason, kept.detail, kept.codec) == (full.reason, full.detail, full.codec)
