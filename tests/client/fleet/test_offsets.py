"""Which offset a partition may commit: never past one still running."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actionstate.client.fleet import OffsetTracker


def test_nothing_taken_nothing_to_commit() -> None:
    assert OffsetTracker().committable() is None


def test_the_lowest_unfinished_offset_holds_the_commit_back() -> None:
    t = OffsetTracker()
    for o in (10, 11, 12):
        t.take(o)
    assert t.committable() == 10
    t.finish(11)
    t.finish(12)
    assert t.committable() == 10  # 10 still runs: a crash must redeliver it
    t.finish(10)
    assert t.committable() == 13
    assert len(t) == 0


def test_gaps_from_other_records_do_not_matter() -> None:
    t = OffsetTracker()
    t.take(5)
    t.take(9)  # 6..8 went elsewhere (compaction, control records)
    t.finish(5)
    assert t.committable() == 9
    t.finish(9)
    assert t.committable() == 10


def test_finishing_twice_or_an_unknown_offset_changes_nothing() -> None:
    t = OffsetTracker()
    t.take(1)
    t.finish(7)
    t.finish(1)
    t.finish(1)
    assert t.committable() == 2


@given(st.lists(st.integers(0, 200), unique=True, min_size=1), st.data())
def test_the_commit_is_always_the_lowest_pending_or_one_past_the_highest(
    offsets: list[int], data: st.DataObject
) -> None:
    t = OffsetTracker()
    for o in sorted(offsets):
        t.take(o)
    finished = data.draw(st.lists(st.sampled_from(offsets), unique=True))
    for o in finished:
        t.finish(o)
    pending = set(offsets) - set(finished)
    expected = min(pending) if pending else max(offsets) + 1
    assert t.committable() == expected
    assert len(t) == len(pending)
