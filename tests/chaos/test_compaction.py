"""Compaction under load: the kill storm on a state topic whose log cleaner runs during the
storm (small segments, a tiny dirty ratio, short tombstone retention), while the test
prunes the states of committed requests. Afterwards a fresh ``KafkaStore.rebuild`` and
``actionstate inspect`` see exactly the checker's expected view: the last record of each
key on the topic, which is each key's last acknowledged write or a later one, with pruned
keys gone. That the cleaner ran is shown by acknowledged records missing from their
offsets, superseded by later records of their keys."""

from __future__ import annotations

from actionstate.client import KafkaStore
from tests._support import assert_eventually
from tests._support.kafka import set_topic_config
from tests.chaos._acked import AckReport, check_acked
from tests.chaos._storm import Size, Storm, storm_seed
from tests.chaos._summary import Record
from tests.fleet._fleet import Fleet, keys_per_partition

CI = Size(kills=20, interval=(0.5, 2.5))
LONG = Size(kills=200, interval=(0.5, 3.0))
CLEANING = {
    "segment.bytes": "1048576",  # Kafka 4's smallest: under load segment.ms rolls first
    "segment.ms": "500",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "2000",
}
CLEANER_WAIT_S = 120  # a hang guard: the cleaner looks for work every 15 s


def test_compaction_under_load_rebuilds_the_expected_view(
    fleet: Fleet, chaos_long: bool, chaos_summary: Record
) -> None:
    fleet.create_topics()
    set_topic_config(fleet.bootstrap, fleet.state_topic, CLEANING)
    storm = Storm(fleet, LONG if chaos_long else CI, storm_seed())
    result = storm.run(keys_per_partition(fleet.partitions, 4), prune=True)
    assert not result.acked.lost, result.acked.summary()
    assert result.kills_of_owners > 0, "no kill hit a worker owning partitions"
    assert result.pruned, "the pruner pruned nothing"

    def cleaned() -> AckReport:
        report = check_acked(fleet.bootstrap, fleet.state_topic, storm.ack_logs())
        assert not report.lost, report.summary()
        assert report.superseded > 0, f"the cleaner has not run yet: {report.summary()}"
        return report

    report = assert_eventually(cleaned, timeout=CLEANER_WAIT_S, interval=2.0)
    chaos_summary(
        kills=result.kills,
        requests=len(result.sent),
        acked=report.checked,
        lost=len(report.lost),
        seed=result.seed,
    )
    print(f"after the cleaner: {report.summary()}")

    # The checker's expected view: the last record of each key on the topic. Each key's
    # last acknowledged write is that record, or an earlier one (a worker killed between
    # the commit of a later write and its log line).
    expected = {k: r for k, r in report.topic_latest.items() if r.digest is not None}
    for key, ack in report.acked_latest.items():
        last = report.topic_latest.get(key)
        assert last is not None or ack.digest is None, f"{key}: nothing on the topic"
        if last is not None:
            assert (last.offset, last.digest) == (ack.offset, ack.digest) or (
                last.offset > ack.offset
            ), f"{key}: last acknowledged {ack}, last on the topic {last}"
    assert not set(result.pruned) & set(expected), "a pruned state is still live"
    live = {s.state_key for s in result.sent} - set(result.pruned)
    assert set(expected) == live

    # A fresh rebuild sees exactly that view, and so does inspect.
    states = fleet.states()
    with KafkaStore(
        bootstrap_servers=fleet.bootstrap, topic=fleet.state_topic, partitions=fleet.partitions
    ) as store:
        rebuilt = store.rebuild()
        view = {str(k): s for k, s in store.states()}
    assert rebuilt.bad_records == 0
    assert view == {k: s for k, s in states.items() if s is not None}
    assert set(view) == set(expected)
    assert all(s.completed for s in view.values())
    assert inspect_latest(fleet) == {k: r.offset for k, r in expected.items()}


def inspect_latest(fleet: Fleet) -> dict[str, int]:
    """``actionstate inspect --format json``'s live states: their offsets by key."""
    rows = fleet.inspect_json()
    assert not [r for r in rows if r["kind"] == "bad"], rows
    return {r["key"]: r["offset"] for r in rows if r["kind"] == "state"}
