"""The Kafka store's rebuild keeps no confluent ``Message`` per state, knows which states
are unfinished without decoding, and warms its producers while it reads."""

from __future__ import annotations

from actionstate.client import KafkaStore, KafkaStoreSettings
from actionstate.client.kafka import KafkaWriter
from actionstate.serde import ActionState, CallResult, Event, LogRecord
from tests._support import assert_eventually


def _state(done: bool) -> ActionState:
    state = ActionState(
        task_event=Event.input({"n": 1}), call_results=[CallResult.pending("f", "0" * 16)]
    )
    if done:
        state.mark_completed()
    return state


def test_rebuild_lists_unfinished_states_and_warms_the_writer(
    kafka_settings: KafkaStoreSettings,
) -> None:
    with KafkaStore(kafka_settings) as writer:
        for n in range(6):
            writer.put(f"k{n}", 0, "act", Event.input({"n": n}), _state(done=n % 3 != 0))
    with KafkaStore(kafka_settings) as store:
        scanned: list[object] = []
        scan = store._scan

        def spy(starts: dict[int, int]) -> object:
            result = scan(starts)
            scanned.extend(result.latest.values())
            return result

        store._scan = spy  # type: ignore[assignment, method-assign]
        report = store.rebuild()
        assert report.states_live == 6
        assert scanned
        assert all(type(r) is LogRecord for r in scanned)  # not confluent Messages
        assert [k.agent_key for k in store.unfinished_keys()] == ["k0", "k3"]
        assert isinstance(store._writer, KafkaWriter)
        writer_ = store._writer
        assert_eventually(lambda: writer_._sync is not None and writer_._async is not None)
        store.put("k9", 0, "act", Event.input({"n": 9}), _state(done=False))
        assert [k.agent_key for k in store.unfinished_keys()] == ["k0", "k3", "k9"]
