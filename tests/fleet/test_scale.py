"""Scaling while requests flow: one worker, then three (the group moves partitions to the
newcomers), then one again (SIGTERM: the leavers finish their work, commit and hand over).
Nothing is lost and no payment happens twice."""

from __future__ import annotations

import signal

import pytest

from tests._support import assert_eventually
from tests.fleet._fleet import Fleet, Flow, WorkerProcess, check_outcomes, keys_per_partition

pytestmark = pytest.mark.timeout(180)


def _shipped_by(fleet: Fleet, worker: WorkerProcess) -> int:
    return sum(1 for e in fleet.ledger() if e.kind == "ship" and e.pid == worker.pid)


def _wait_shipped(fleet: Fleet, worker: WorkerProcess, at_least: int) -> None:
    def shipped() -> None:
        n = _shipped_by(fleet, worker)
        assert n >= at_least, f"{worker.name} shipped {n} of {at_least}\n{worker.tail()}"

    assert_eventually(shipped, timeout=60, interval=0.1)


def test_scale_out_1_to_3_and_in_3_to_1_while_requests_flow(fleet: Fleet) -> None:
    fleet.create_topics()
    first = fleet.start("first")
    fleet.wait_owned([first])

    with Flow(fleet, keys_per_partition(fleet.partitions, 3)) as flow:  # ~40 requests/s
        _wait_shipped(fleet, first, 20)

        second, third = fleet.start("second"), fleet.start("third")
        fleet.wait_owned([first, second, third])
        _wait_shipped(fleet, second, 10)
        _wait_shipped(fleet, third, 10)

        for leaver in (second, third):
            leaver.send_signal(signal.SIGTERM)
        codes = {w.name: w.popen.wait(30) for w in (second, third)}
        assert codes == {"second": 0, "third": 0}, fleet.tails()
        for leaver in (second, third):
            leaver.wait_log(r"revoked \[[0-9, ]+\]: .* offsets committed")
        fleet.wait_owned([first])
        _wait_shipped(fleet, first, _shipped_by(fleet, first) + 20)
        sent = flow.stop()

    fleet.wait_completed(sent, timeout=60)
    # The handovers were graceful: running actions finished before their partitions moved,
    # so nothing ran twice, not even the call without a reconciler.
    outputs = check_outcomes(fleet, sent, shipped_at_most=1)
    assert {o["pid"] for o in outputs.values()} == {first.pid, second.pid, third.pid}
    print(f"\n{len(sent)} requests while scaling 1 -> 3 -> 1")
    assert fleet.terminate_all() == {"first": 0}
    assert not fleet.problems(), fleet.problems()


def test_partitions_given_back_to_a_throttled_worker_are_consumed(fleet: Fleet) -> None:
    fleet.partitions = 4
    fleet.create_topics()
    first = fleet.start("first", "--max-in-flight", "1")
    fleet.wait_owned([first])
    sender = fleet.sender()
    keys = keys_per_partition(fleet.partitions, 1)
    # One slow action keeps the first worker full, so it pauses its partitions
    # (back-pressure) while a second worker joins, takes some of them and leaves again.
    slow = sender.send(keys[-1], "charge", {"order": 0, "delay": 8})
    assert_eventually(lambda: _paid(fleet, slow.state_key), timeout=30)
    second = fleet.start("second")
    moved = fleet.wait_owned([first, second])[second.name]
    assert second.terminate() == 0, second.tail()
    fleet.wait_owned([first])
    fleet.wait_completed([slow], timeout=30)

    # Requests on the partitions that went and came back only: nothing else makes the
    # first worker pause and resume all its partitions (which would hide the problem).
    sent = sender.send_many([(keys[p], "charge", {"order": 1 + p}) for p in sorted(moved)])
    fleet.wait_completed(sent, timeout=10)
    check_outcomes(fleet, [slow, *sent], shipped_at_most=1)


def _paid(fleet: Fleet, state_key: str) -> None:
    assert any(e.kind == "pay" and e.state_key == state_key for e in fleet.ledger())
