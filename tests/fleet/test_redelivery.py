"""Redelivery: a worker killed after its requests' completed states were acknowledged but
before their offsets were committed; the next owner reads them again, finds them completed
and does not run them again."""

from __future__ import annotations

import pytest

from tests._support import assert_eventually
from tests.fleet._fleet import Fleet, check_outcomes, committed_offsets

pytestmark = pytest.mark.timeout(120)

# Offsets are committed every 0.2 s by default; with this the first worker never commits.
NEVER = {"ACTIONSTATE_COMMIT_INTERVAL_S": "86400"}


def test_a_completed_request_delivered_again_is_not_run_again(fleet: Fleet) -> None:
    fleet.partitions = 2
    fleet.create_topics()
    first = fleet.start("first", env=NEVER)
    fleet.wait_owned([first])

    sent = fleet.sender().send_many(
        [("order-1", "charge", {"order": 1}), ("order-2", "charge-async", {"order": 2})]
    )
    fleet.wait_completed(sent, timeout=30)
    assert committed_offsets(fleet) == {}, "the first worker committed offsets"
    first.kill()

    second = fleet.start("second")
    fleet.wait_owned([second])  # once the group dropped the dead member (session timeout)

    def recognized() -> None:
        n = second.metric("actionstate_worker_actions_total", outcome="redelivered")
        assert n == len(sent), f"{n} redelivered\n{second.tail()}"

    assert_eventually(recognized, timeout=30, interval=0.2)
    assert second.metric("actionstate_worker_actions_total", outcome="completed") == 0
    assert second.metric("actionstate_worker_calls_total", outcome="executed") == 0
    # Recognized, and now committed: a third owner would not even read them.
    ends: dict[int, int] = {}
    for s in sent:
        ends[s.state_partition] = max(ends.get(s.state_partition, 0), s.request_id.offset + 1)
    assert_eventually(lambda: _at_least(committed_offsets(fleet), ends), timeout=10)

    # One payment and one shipping each, by the first worker; its outputs are the final ones.
    outputs = check_outcomes(fleet, sent, shipped_at_most=1)
    assert {o["pid"] for o in outputs.values()} == {first.pid}
    assert fleet.terminate_all() == {"second": 0}
    assert not fleet.problems(), fleet.problems()


def _at_least(committed: dict[int, int], ends: dict[int, int]) -> None:
    assert all(committed.get(p, -1) >= o for p, o in ends.items()), (committed, ends)
