"""A zombie: a worker SIGSTOPped past the session timeout loses its partitions; the new
owner fences it and finishes its actions; when SIGCONTed, the broker refuses its next write
and its stale journal never overwrites the new owner's records.

What happens after SIGCONT (observed, and pinned below): the zombie's actions wake up, run
their next call (``ship``, which has no reconciler, so it may run twice) and try to journal
it; the broker refuses that transaction (the new owner's ``init_transactions`` bumped the
transactional id's epoch), the zombie logs the fenced line, counts it in
``actionstate_worker_fenced_total`` and drops the partition. Its consumer finds its session
expired (librdkafka's SESSTMOUT; the loop logs ``lost [...]``, in some runs ``revoked
[...]``), it rejoins the group and is given partitions again (cooperative-sticky: usually
its old ones; it fences the owner in turn, rebuilds, recovers nothing and works normally).
Nothing the zombie wrote after waking up is on the topic.
"""

from __future__ import annotations

import pytest

from actionstate.serde import ActionState
from tests._support import assert_eventually
from tests.fleet._fleet import (
    FENCED_LINE,
    Fleet,
    check_outcomes,
    keys_per_partition,
)

pytestmark = pytest.mark.timeout(180)

# The zombie's actions wait this long between paying and shipping: they are all in flight,
# paid and not shipped, when it is stopped, so none is inside its payment (a payment the
# zombie made after waking up would be a second one: only the payment provider's
# idempotency key could refuse it, and this ledger has none).
ZOMBIE_SHIP_DELAY_S = "3"
CANCELLED_BUG = "InvalidStateError: CANCELLED"


def test_a_zombie_is_fenced_by_the_broker_and_the_new_owner_wins(fleet: Fleet) -> None:
    fleet.create_topics()
    zombie = fleet.start("zombie", env={"FLEET_SHIP_DELAY_S": ZOMBIE_SHIP_DELAY_S})
    owner = fleet.start("owner")
    owned = fleet.wait_owned([zombie, owner])
    zombie_partitions = owned[zombie.name]

    sender = fleet.sender()
    keys = keys_per_partition(fleet.partitions, 3)
    sent = sender.send_many(
        [(k, "charge" if i % 2 else "charge-async", {"order": i}) for i, k in enumerate(keys)]
    )

    def all_paid() -> None:
        paid = {e.state_key for e in fleet.ledger() if e.kind == "pay"}
        assert paid >= {s.state_key for s in sent}, f"{len(paid)} of {len(sent)} paid"

    assert_eventually(all_paid, timeout=30, interval=0.02)
    zombie.sigstop()
    entries = fleet.ledger()
    in_flight = {e.state_key for e in entries if e.kind == "pay" and e.pid == zombie.pid} - {
        e.state_key for e in entries if e.kind == "ship" and e.pid == zombie.pid
    }
    assert in_flight, "the zombie had nothing in flight when it was stopped"
    zombie_sent = [s for s in sent if s.state_key in in_flight]
    assert {s.state_partition for s in zombie_sent} <= zombie_partitions

    # The group gives the stopped worker's partitions to the owner, which fences it,
    # recovers the actions it left in flight and completes them.
    mark = len(owner.log())

    def taken_over() -> None:
        assigned = {p for kind, ps in owner.rebalances(mark) if kind == "assigned" for p in ps}
        assert zombie_partitions <= assigned, f"owner took {assigned}\n{owner.tail()}"

    assert_eventually(taken_over, timeout=60, interval=0.2)
    fleet.wait_completed(zombie_sent, timeout=60)
    outputs = fleet.completed(zombie_sent)
    assert {o["pid"] for o in outputs.values()} == {owner.pid}

    # Awake, the zombie still believes it owns them, and its actions go on: the broker
    # refuses their writes, and the zombie stops working on those partitions (its session
    # expired: librdkafka reports them lost, or revoked).
    zombie_mark = len(zombie.log())
    zombie.sigcont()

    def gave_up() -> None:
        dropped = {
            p for kind, ps in zombie.rebalances(zombie_mark) if kind != "assigned" for p in ps
        }
        assert zombie_partitions <= dropped or not zombie.alive(), zombie.tail()

    assert_eventually(gave_up, timeout=30, interval=0.1)

    # The final record of every key is a completed state; for the actions that were in
    # flight at the zombie it is the owner's, not a late write of the zombie.
    states = fleet.states()
    incomplete = [k for k in (s.state_key for s in sent) if not _completed(states.get(k))]
    assert not incomplete, incomplete
    outputs = check_outcomes(fleet, sent)
    assert {outputs[k]["pid"] for k in in_flight} == {owner.pid}
    # ``ship`` has no reconciler: a zombie's action may run it once more after waking up.
    late = {e.state_key for e in fleet.ledger() if e.kind == "ship" and e.pid == zombie.pid}
    print(
        f"\nthe zombie had {len(in_flight)} actions in flight; {len(late & in_flight)} "
        "shipped again after SIGCONT"
    )

    zombie.wait_log(FENCED_LINE, timeout=10, start=zombie_mark)
    assert zombie.metric("actionstate_worker_fenced_total") >= 1
    assert CANCELLED_BUG not in zombie.log()
    # Then it rejoins the group and is given partitions again.
    zombie.wait_log(r"\bassigned \[", timeout=60, start=zombie_mark)
    fleet.wait_owned([zombie, owner])

    # Rejoined, the former zombie works like any member.
    more = sender.send_many([(k, "charge", {"order": 1000 + i}) for i, k in enumerate(keys)])
    fleet.wait_completed(more, timeout=60)
    check_outcomes(fleet, [*sent, *more])

    codes = fleet.terminate_all(timeout=10)
    assert codes == {zombie.name: 0, owner.name: 0}, f"{codes}\n{fleet.tails()}"
    assert not fleet.problems(), fleet.problems()


def _completed(state: ActionState | None) -> bool:
    return state is not None and state.completed
