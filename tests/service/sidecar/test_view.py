"""The sidecar's materialized view on its own: listing order, counts after a marker,
tombstones kept for a while (not forever), states decoded on demand."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    RecordMeta,
    action_uuid,
    encode_action_state,
    event_uuid,
    state_key,
)
from actionstate.service.sidecar._sorted_keys import (
    SortedKeys,
    agent_bounds,
    order_key,
    state_key_of,
)
from actionstate.service.sidecar._view import MaterializedView, Tombstone

EVENT = Event.input({"order": 42})
# Agent keys: anything but "_", NUL and prefixes of each other included.
_agents = st.text(st.characters(blacklist_characters="_", blacklist_categories=["Cs"]), min_size=1)
_seqs = st.integers(0, 2**63 - 1)
_uuids = st.uuids().map(str)


def _key(agent: str, seq: int, ev: str, act: str) -> str:
    return f"{agent}_{seq}_{ev}_{act}"


def _tuple_order(skey: str) -> tuple[str, int, str]:
    agent, seq, rest = skey.split("_", 2)
    return agent, int(seq), rest


_keys = st.builds(
    _key, _agents | st.sampled_from(["a", "a-b", "a\x00", "a\x00b", "1"]), _seqs, _uuids, _uuids
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_keys, max_size=40))
def test_the_order_key_sorts_as_agent_then_seq_then_uuids(keys: list[str]) -> None:
    assert sorted(keys, key=order_key) == sorted(keys, key=_tuple_order)
    for k in keys:
        assert state_key_of(order_key(k)) == k


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), _keys), max_size=300),
    _keys,
    st.sampled_from(["a", "a\x00", "1"]),
    st.integers(0, 200),
)
def test_sorted_keys_match_a_sorted_set(
    ops: list[tuple[bool, str]], after: str, agent: str, up_to: int
) -> None:
    keys, model = SortedKeys(), set[str]()
    for add, k in ops:
        okey = order_key(k)
        if add:
            keys.add(okey)
            model.add(okey)
        else:
            keys.discard(okey)
            model.discard(okey)
    ordered = sorted(model)
    assert len(keys) == len(model)
    assert list(keys.scan()) == ordered
    start = order_key(after)
    assert list(keys.scan(start)) == [k for k in ordered if k > start]
    assert list(keys.scan(start, inclusive=True)) == [k for k in ordered if k >= start]
    low, below = agent_bounds(agent, up_to)
    expected = [
        k for k in ordered if _tuple_order(state_key_of(k))[:2] <= (agent, up_to)
        and state_key_of(k).split("_", 1)[0] == agent
    ]  # fmt: skip
    assert list(keys.scan(low, inclusive=True, below=below)) == expected


def test_a_chunked_set_splits_and_merges_its_chunks() -> None:
    keys = SortedKeys()
    names = [f"k{n:05d}" for n in range(5000)]
    for name in reversed(names):
        keys.add(name)
    assert list(keys.scan()) == names
    for name in names[::2]:
        keys.discard(name)
    assert list(keys.scan()) == names[1::2]
    assert names[1] in keys
    assert names[0] not in keys
    assert list(keys.scan("k04990", below="k04996")) == ["k04991", "k04993", "k04995"]


# -- the view ------------------------------------------------------------------------------


def skey(agent: str, seq: int = 1) -> str:
    return state_key(agent, seq, event_uuid(EVENT.attributes), action_uuid("charge"))


def record(*, done: bool = False, pending: bool = False) -> bytes:
    calls = [CallResult.succeeded("shop.reserve", "00000000000000aa", b"\x80\x05N.")]
    if pending:
        calls.append(CallResult.pending("shop.charge", "00000000000000bb"))
    result = ActionState(task_event=EVENT, call_results=calls)
    if done:
        result.mark_completed()
    return encode_action_state(result)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=60), st.data())
def test_records_read_after_a_marker_are_counted_across_offset_gaps(
    steps: list[int], data: st.DataObject
) -> None:
    # Compaction and transaction markers leave gaps between the offsets read.
    offsets, at = [], 0
    for step in steps:
        at += step
        offsets.append(at)
    view = MaterializedView()
    for offset in offsets:
        view.apply_record(0, offset, skey("a", offset).encode(), record(), None)
    start = data.draw(st.integers(0, offsets[-1] + 2))
    _entries, _tombs, _bad, count = view.snapshot({0: start})
    assert count == sum(1 for o in offsets if o >= start)


def test_a_state_is_held_as_bytes_and_decoded_on_demand() -> None:
    view = MaterializedView()
    value = record(pending=True)
    view.apply_record(0, 0, skey("ann").encode(), value, None)
    entry = view.get(skey("ann"))
    assert entry is not None
    assert (entry.value, entry.completed, entry.pending_calls) == (value, False, 1)
    assert entry.state.call_results[1].function_id == "shop.charge"
    assert (entry.agent_key, entry.seq) == ("ann", 1)
    assert (view.pending_count, view.incomplete_count) == (1, 1)


def test_tombstones_are_forgotten_after_their_retention_once_read_past() -> None:
    view = MaterializedView(tombstone_retention_s=0)
    view.apply_record(0, 0, skey("a").encode(), record(), None)
    view.apply_record(0, 1, skey("a").encode(), None, None)
    assert view.tombstone_count == 0  # read past and out of its retention at once
    view.apply_record(0, 2, skey("b").encode(), record(), None)
    assert len(view) == 1
    entries, tombs, _bad, count = view.snapshot({0: 0})
    assert ([e.key for e in entries], tombs, count) == ([skey("b")], [], 3)


def test_a_tombstone_is_kept_within_its_retention_and_served_in_snapshots() -> None:
    view = MaterializedView()  # a day, as Kafka's delete.retention.ms
    view.apply_record(0, 0, skey("a").encode(), record(), None)
    view.apply_record(0, 1, skey("a").encode(), None, None)
    for offset in range(2, 100):
        view.apply_record(0, offset, skey("b", offset).encode(), record(), None)
    _entries, tombs, _bad, _count = view.snapshot({0: 1})
    assert [(t.key, t.offset) for t in tombs] == [(skey("a"), 1)]


def test_an_own_delete_ahead_of_the_follower_outlives_its_retention() -> None:
    # The sidecar's own tombstone at offset 5 is applied before the follower reads the
    # key's older record at offset 3: it must still win, whatever the retention.
    view = MaterializedView(tombstone_retention_s=0)
    view.apply_delete(Tombstone(skey("a"), 0, 5, RecordMeta()))
    view.apply_record(0, 0, skey("z").encode(), record(), None)
    view.apply_record(0, 3, skey("a").encode(), record(), None)
    assert view.get(skey("a")) is None
    assert view.tombstone_count == 1
    view.apply_record(0, 5, skey("a").encode(), None, None)
    view.apply_record(0, 6, skey("y").encode(), record(), None)
    assert view.tombstone_count == 0


def test_pages_and_prune_ranges_come_from_the_ordered_index() -> None:
    view = MaterializedView()
    for offset, (agent, seq) in enumerate([("a", 10), ("a", 9), ("a-b", 1), ("b", 2), ("a", 1)]):
        done = seq % 2 == 0
        view.apply_record(0, offset, skey(agent, seq).encode(), record(done=done), None)
    page, more = view.page(limit=2)
    assert ([e.key for e in page], more) == ([skey("a", 1), skey("a", 9)], True)
    page, more = view.page(after=skey("a", 9), limit=10)
    assert [e.key for e in page] == [skey("a", 10), skey("a-b", 1), skey("b", 2)]
    assert not more
    page, _ = view.page(agent_key="a", after=skey("a", 1), limit=10)
    assert [e.key for e in page] == [skey("a", 9), skey("a", 10)]
    assert view.keys_up_to("a", 9) == [skey("a", 1), skey("a", 9)]
    assert view.keys_up_to("a", 2**70) == [skey("a", 1), skey("a", 9), skey("a", 10)]
    assert view.keys_up_to("nobody", 5) == []
    assert uuid.UUID(page[0].key.split("_")[3])  # the UUIDs come back whole
