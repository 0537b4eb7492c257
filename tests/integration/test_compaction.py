"""The broker's log cleaner really compacts a state topic, and a rebuild after it sees the
same view: superseded versions are gone from the log, and so are pruned keys, tombstones
included.

The topic is created by the store; small ``segment.ms``, ``min.cleanable.dirty.ratio`` and
``delete.retention.ms`` let the cleaner (which looks for work every
``log.cleaner.backoff.ms``, 15 s by default) finish within a bounded wait.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from actionstate.client import KafkaStore, KafkaStoreSettings
from actionstate.serde import ActionState, CallResult, Event, action_uuid, event_uuid, state_key
from tests._support import assert_eventually, read_topic
from tests._support.kafka import delete_topics, set_topic_config

EVENT = Event.input({"order": 7})
COMPACTION_CONFIG = {
    "segment.ms": "100",  # roll the active segment on the next write after 100 ms
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",  # tombstones too may go soon after a first cleaning
}
CLEANER_WAIT_S = 300  # a hang guard: a few cleaner rounds take well under a minute


def state(note: str, *, completed: bool = False) -> ActionState:
    calls = [] if completed else [CallResult.pending(f"shop.{note}", "00000000000000aa")]
    out = ActionState(task_event=EVENT, call_results=calls)
    if completed:
        out.mark_completed()
    return out


def skey(agent: str) -> str:
    return state_key(agent, 1, event_uuid(EVENT.attributes), action_uuid("charge"))


@pytest.fixture
def settings(kafka_bootstrap: str, topic_name: str) -> Iterator[KafkaStoreSettings]:
    """One partition, so every record shares the log the cleaner works through."""
    yield KafkaStoreSettings(bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=1)
    delete_topics(kafka_bootstrap, topic_name)


def test_compaction_removes_superseded_records_and_a_rebuild_sees_the_same_view(
    settings: KafkaStoreSettings,
) -> None:
    bootstrap, topic = settings.bootstrap_servers, settings.topic
    with KafkaStore(settings) as store:  # creates the compacted topic
        set_topic_config(bootstrap, topic, COMPACTION_CONFIG)
        for note in ("reserve", "charge", "ship"):
            store.put("alice", 1, "charge", EVENT, state(note))
        store.put("alice", 1, "charge", EVENT, state("done", completed=True))
        store.put("bob", 1, "charge", EVENT, state("reserve"))
        assert store.prune("bob", 1) == 1
        store.put("carol", 1, "charge", EVENT, state("reserve"))
        before = dict(store.states())
        written = Counter(r.key() for r in read_topic(bootstrap, topic))
        assert written[skey("alice").encode()] == 4
        assert written[skey("bob").encode()] == 2  # a state and its tombstone

        def compacted() -> Counter[bytes | None]:
            # each write rolls the segment before it, so the cleaner may clean all of them
            store.put("roller", 1, "charge", EVENT, state("tick"))
            held = Counter(r.key() for r in read_topic(bootstrap, topic))
            assert held[skey("alice").encode()] == 1, held
            assert held[skey("bob").encode()] == 0, held
            return held

        held = assert_eventually(compacted, timeout=CLEANER_WAIT_S, interval=1.0)
        assert held[skey("carol").encode()] == 1
        latest_roller = store.get("roller", 1, "charge", EVENT)

    with KafkaStore(settings) as rebuilt:
        report = rebuilt.rebuild()
        after = dict(rebuilt.states())
    assert report.bad_records == 0
    assert report.records_read <= sum(held.values())  # the cleaner may have gone on
    by_agent = {k.agent_key: v for k, v in after.items()}
    assert sorted(by_agent) == ["alice", "carol", "roller"]  # bob was pruned: gone
    assert {k: v for k, v in after.items() if k.agent_key != "roller"} == before
    assert by_agent["alice"].completed
    assert by_agent["roller"] == latest_roller
