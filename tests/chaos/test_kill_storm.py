"""Kill storm: three worker processes take a stream of requests while a random one is
SIGKILLed at random moments and restarted at once (a few dozen kills in CI size, over 200
in the long run). When the stream ends and the fleet drains: every request completed, the
reconciled payment of each happened exactly once (the ledger), and no acknowledged state
write is missing from the topic (the workers log each one; tests/chaos/_acked.py)."""

from __future__ import annotations

from tests.chaos._storm import Size, Storm, storm_seed
from tests.chaos._summary import Record
from tests.fleet._fleet import Fleet, keys_per_partition

CI = Size(kills=30, interval=(0.5, 2.5))
LONG = Size(kills=220, interval=(0.5, 3.0))


def test_kill_storm_loses_nothing_and_pays_once(
    fleet: Fleet, chaos_long: bool, chaos_summary: Record
) -> None:
    fleet.create_topics()
    storm = Storm(fleet, LONG if chaos_long else CI, storm_seed())
    result = storm.run(keys_per_partition(fleet.partitions, 4))
    chaos_summary(
        kills=result.kills,
        requests=len(result.sent),
        acked=result.acked.checked,
        lost=len(result.acked.lost),
        seed=result.seed,
    )
    assert result.kills == storm.size.kills
    assert not result.acked.lost, result.acked.summary()
    assert result.kills_of_owners > 0, "no kill hit a worker owning partitions"
    # Workers journal at least the pending and completed states of every request.
    assert result.acked.checked >= 2 * len(result.sent), result.acked.summary()
