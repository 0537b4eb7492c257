"""Three worker processes share a requests topic of 12 partitions: every request completes,
the reconciled payment happens once per request, and when one worker is SIGKILLed its
partitions move to the others, which recover its unfinished actions."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from tests._support import assert_eventually
from tests.fleet._fleet import Fleet, check_outcomes, keys_per_partition

pytestmark = pytest.mark.timeout(180)

REQUESTS = 600
RECOVERING = re.compile(r"recovering (\d+) actions")


def _requests(keys: list[str], count: int) -> list[tuple[str, str, dict[str, int]]]:
    # Both actions, sync and async, on interleaved keys.
    return [
        (keys[i % len(keys)], "charge" if i % 2 == 0 else "charge-async", {"order": i})
        for i in range(count)
    ]


def test_three_workers_complete_every_request_and_pay_once(fleet: Fleet) -> None:
    fleet.create_topics()
    workers = [fleet.start(f"worker-{i}") for i in range(3)]
    fleet.wait_owned(workers)

    sent = fleet.sender().send_many(_requests(keys_per_partition(fleet.partitions, 4), REQUESTS))
    assert len({s.state_partition for s in sent}) == fleet.partitions
    fleet.wait_completed(sent, timeout=120)

    # Nobody crashed: each side effect happened exactly once, in the process that completed
    # the action, and all three processes did a share of the work.
    outputs = check_outcomes(fleet, sent, shipped_at_most=1)
    by_pid = Counter(o["pid"] for o in outputs.values())
    assert set(by_pid) == {w.pid for w in workers}, by_pid
    payer = {e.state_key: e.pid for e in fleet.ledger() if e.kind == "pay"}
    assert all(payer[k] == o["pid"] for k, o in outputs.items())
    for w in workers:
        assert w.metric("actionstate_worker_actions_total", outcome="completed") == by_pid[w.pid]
        assert w.metric("actionstate_worker_fenced_total") == 0


def test_sigkill_moves_the_partitions_and_the_next_owner_recovers(fleet: Fleet) -> None:
    fleet.create_topics()
    workers = [fleet.start(f"worker-{i}") for i in range(3)]
    owned = fleet.wait_owned(workers)
    victim, survivors = workers[0], workers[1:]
    victim_partitions = owned[victim.name]

    # 25 requests per key, one at a time per key: the run lasts well past the kill.
    sent = fleet.sender().send_many(_requests(keys_per_partition(fleet.partitions, 2), REQUESTS))

    def victim_mid_action() -> None:
        entries = fleet.ledger()
        paid = {e.state_key for e in entries if e.kind == "pay" and e.pid == victim.pid}
        shipped = {e.state_key for e in entries if e.kind == "ship" and e.pid == victim.pid}
        assert len(shipped) >= 10, "the victim has not done enough yet"
        assert paid - shipped, "the victim has no action between its two calls"

    assert_eventually(victim_mid_action, timeout=60, interval=0.02)
    marks = {w.name: len(w.log()) for w in survivors}
    victim.kill()
    killed_at = time.monotonic()

    states = fleet.states()
    unfinished = [
        s
        for s in sent
        if s.state_partition in victim_partitions
        and (state := states.get(s.state_key)) is not None
        and not state.completed
    ]
    assert unfinished, "nothing was in flight at the victim"

    def moved() -> dict[str, set[int]]:
        taken = {
            w.name: {
                p for kind, ps in w.rebalances(marks[w.name]) if kind == "assigned" for p in ps
            }
            for w in survivors
        }
        assert victim_partitions <= set().union(*taken.values()), f"{taken}\n{fleet.tails()}"
        return taken

    assert_eventually(moved, timeout=60, interval=0.2)

    def recovered() -> dict[str, Any]:
        done = fleet.completed(unfinished)
        assert len(done) == len(unfinished), f"{len(unfinished) - len(done)} not recovered yet"
        return done

    outputs = assert_eventually(recovered, timeout=60, interval=0.1)
    elapsed = time.monotonic() - killed_at
    print(
        f"\nSIGKILL -> the {len(unfinished)} unfinished actions of partitions "
        f"{sorted(victim_partitions)} completed by the next owners in {elapsed:.2f}s "
        "(session timeout 6s)"
    )
    assert all(o["pid"] != victim.pid for o in outputs.values())
    recovering = [int(n) for w in survivors for n in RECOVERING.findall(w.log(), marks[w.name])]
    assert sum(recovering) >= len(unfinished), recovering

    fleet.wait_completed(sent, timeout=120)
    check_outcomes(fleet, sent)
