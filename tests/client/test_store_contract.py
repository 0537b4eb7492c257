"""The store contract (DESIGN §6), run over every backend by the ``store`` fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from actionstate.client import (
    ActionStateStore,
    MemoryLog,
    MemoryStore,
    RebuildReport,
    StoreError,
)
from actionstate.serde import (
    HEADER_CODEC,
    HEADER_VERSION,
    ActionState,
    CallResult,
    Event,
    HeaderList,
    InvalidStateKeyError,
    MemoryUpdate,
    RawRecord,
    StateKey,
    encode_action_state,
    parse_state_key,
    partition_for,
    tombstone_meta,
)
from tests._support.kafka import raw_producer, read_raw
from tests.client.conftest import PARTITIONS, STORE_BACKENDS, StoreOpener


def make_state(event: Event, *, note: str = "", done: bool = False) -> ActionState:
    state = ActionState(
        task_event=event,
        short_term_memory_updates=[MemoryUpdate(path="note", value=note)],
        call_results=[CallResult.succeeded("m.pay", "0123456789abcdef", b"\x80\x05receipt")],
    )
    if done:
        state.output_events.append(Event.output({"note": note}))
        state.mark_completed()
    return state


def same(a: ActionState | None, b: ActionState | None) -> bool:
    assert a is not None
    assert b is not None
    return encode_action_state(a) == encode_action_state(b)


def keys_in_partition(partition: int, count: int) -> list[str]:
    found = []
    n = 0
    while len(found) < count:
        key = f"agent-{n}"
        if partition_for(key, PARTITIONS) == partition:
            found.append(key)
        n += 1
    return found


EVENT = Event.input({"order": 42})


# -- put / get ----------------------------------------------------------------------------


def test_put_then_get_returns_the_state(store: ActionStateStore) -> None:
    state = make_state(EVENT, note="first")
    store.put("order-42", 1, "charge", EVENT, state)
    assert same(store.get("order-42", 1, "charge", EVENT), state)


def test_get_of_an_unknown_state_is_none(store: ActionStateStore) -> None:
    assert store.get("order-42", 1, "charge", EVENT) is None


def test_get_returns_a_copy_the_caller_may_change(store: ActionStateStore) -> None:
    store.put("order-42", 1, "charge", EVENT, make_state(EVENT, note="kept"))
    first = store.get("order-42", 1, "charge", EVENT)
    assert first is not None
    first.call_results.clear()
    again = store.get("order-42", 1, "charge", EVENT)
    assert again is not None
    assert len(again.call_results) == 1


def test_the_latest_put_wins(store: ActionStateStore) -> None:
    store.put("order-42", 1, "charge", EVENT, make_state(EVENT, note="old"))
    newer = make_state(EVENT, note="new", done=True)
    store.put("order-42", 1, "charge", EVENT, newer)
    assert same(store.get("order-42", 1, "charge", EVENT), newer)


def test_states_differ_by_key_seq_action_and_event(store: ActionStateStore) -> None:
    other_event = Event.input({"order": 43})
    # Several states at one (key, seq) count as divergence for a get at that seq, which
    # drops later seqs of the key (tested below): seq variants live on their own key here.
    variants = [
        ("order-42", 1, "charge", EVENT),
        ("order-43", 1, "charge", EVENT),
        ("order-44", 1, "charge", EVENT),
        ("order-44", 2, "charge", EVENT),
        ("order-42", 1, "refund", EVENT),
        ("order-42", 1, "charge", other_event),
    ]
    for n, (key, seq, action, event) in enumerate(variants):
        store.put(key, seq, action, event, make_state(event, note=str(n)))
    for n, (key, seq, action, event) in enumerate(variants):
        assert same(store.get(key, seq, action, event), make_state(event, note=str(n)))


def test_the_event_id_is_not_part_of_the_state_key(store: ActionStateStore) -> None:
    again = Event.input({"order": 42})
    assert again.id != EVENT.id
    store.put("order-42", 1, "charge", EVENT, make_state(EVENT))
    assert store.get("order-42", 1, "charge", again) is not None


def test_aput_stores_like_put(store: ActionStateStore) -> None:
    state = make_state(EVENT, note="async")
    asyncio.run(store.aput("order-42", 1, "charge", EVENT, state))
    assert same(store.get("order-42", 1, "charge", EVENT), state)


def test_many_aputs_in_flight_all_land(store: ActionStateStore) -> None:
    async def write_all() -> None:
        await asyncio.gather(
            *(
                store.aput(f"agent-{n}", n, "charge", EVENT, make_state(EVENT, note=str(n)))
                for n in range(64)
            )
        )

    asyncio.run(write_all())
    for n in range(64):
        assert same(store.get(f"agent-{n}", n, "charge", EVENT), make_state(EVENT, note=str(n)))


# -- Java's divergence rule -------------------------------------------------------------


def test_divergence_at_a_seq_drops_later_states_of_that_key_only(store: ActionStateStore) -> None:
    # Two states at seq 2 for one key: the run took two paths; seq 3 belongs to one of them.
    store.put("k", 1, "a", EVENT, make_state(EVENT))
    store.put("k", 2, "a", EVENT, make_state(EVENT))
    store.put("k", 2, "b", EVENT, make_state(EVENT))
    store.put("k", 3, "a", EVENT, make_state(EVENT))
    store.put("other", 3, "a", EVENT, make_state(EVENT))

    assert store.get("k", 2, "c", EVENT) is None
    assert store.get("k", 1, "a", EVENT) is not None
    assert store.get("k", 2, "a", EVENT) is not None
    assert store.get("k", 2, "b", EVENT) is not None
    assert store.get("k", 3, "a", EVENT) is None
    assert store.get("other", 3, "a", EVENT) is not None


def test_a_miss_drops_later_states_of_that_key(store: ActionStateStore) -> None:
    store.put("k", 1, "a", EVENT, make_state(EVENT))
    store.put("k", 2, "a", EVENT, make_state(EVENT))
    store.put("k", 5, "a", EVENT, make_state(EVENT))
    # seq 2 re-submitted with another input: the journal's seq 5 is from an abandoned path.
    assert store.get("k", 2, "a", Event.input({"order": 7})) is None
    assert store.get("k", 5, "a", EVENT) is None
    assert store.get("k", 2, "a", EVENT) is not None
    assert store.get("k", 1, "a", EVENT) is not None


def test_a_hit_without_divergence_keeps_later_states(store: ActionStateStore) -> None:
    store.put("k", 1, "a", EVENT, make_state(EVENT))
    store.put("k", 2, "a", EVENT, make_state(EVENT))
    assert store.get("k", 1, "a", EVENT) is not None
    assert store.get("k", 2, "a", EVENT) is not None


# -- prune -------------------------------------------------------------------------------


def test_prune_removes_states_up_to_seq_of_that_key_only(store: ActionStateStore) -> None:
    for seq in (1, 2, 3):
        store.put("k", seq, "a", EVENT, make_state(EVENT))
        store.put("other", seq, "a", EVENT, make_state(EVENT))
    store.put("k", 2, "b", EVENT, make_state(EVENT))

    assert store.prune("k", 2) == 3

    remaining = {(sk.agent_key, sk.seq) for sk, _ in store.states()}
    assert remaining == {("k", 3), ("other", 1), ("other", 2), ("other", 3)}
    assert store.prune("k", 2) == 0


def test_pruned_states_stay_gone_after_a_rebuild(store_opener: StoreOpener) -> None:
    writer = store_opener()
    for seq in (1, 2, 3):
        writer.put("k", seq, "a", EVENT, make_state(EVENT))
    writer.prune("k", 2)

    reader = store_opener()
    report = reader.rebuild()
    assert {sk.seq for sk, _ in reader.states()} == {3}
    assert report.tombstones == 2
    assert report.states_live == 1


# -- rebuild -----------------------------------------------------------------------------


def test_rebuild_restores_what_another_store_wrote(store_opener: StoreOpener) -> None:
    writer = store_opener()
    states = {n: make_state(EVENT, note=str(n), done=n % 2 == 0) for n in range(10)}
    for n, state in states.items():
        writer.put(f"agent-{n}", n, "charge", EVENT, state)
    writer.put("agent-0", 0, "charge", EVENT, states[0])  # rewritten: still one live state

    reader = store_opener()
    assert reader.get("agent-1", 1, "charge", EVENT) is None
    report = reader.rebuild()

    assert isinstance(report, RebuildReport)
    assert report.records_read == 11
    assert report.states_live == 10
    assert report.bad_records == 0
    assert report.partitions == list(range(PARTITIONS))
    assert report.seconds >= 0
    for n, state in states.items():
        assert same(reader.get(f"agent-{n}", n, "charge", EVENT), state)


def test_rebuild_keeps_the_latest_record_per_key(store_opener: StoreOpener) -> None:
    writer = store_opener()
    for note in ("one", "two", "three"):
        writer.put("k", 1, "a", EVENT, make_state(EVENT, note=note))
    reader = store_opener()
    reader.rebuild()
    assert same(reader.get("k", 1, "a", EVENT), make_state(EVENT, note="three"))


def test_rebuild_of_an_empty_journal(store: ActionStateStore) -> None:
    report = store.rebuild()
    assert (report.records_read, report.states_live, report.bad_records) == (0, 0, 0)
    assert store.states() == []


def test_recovery_marker_starts_a_rebuild_after_it(store_opener: StoreOpener) -> None:
    writer = store_opener()
    initial = writer.recovery_marker()
    assert initial == dict.fromkeys(range(PARTITIONS), 0)
    writer.put("before", 1, "a", EVENT, make_state(EVENT))
    marker = writer.recovery_marker()
    assert set(marker) == set(range(PARTITIONS))
    assert all(isinstance(offset, int) for offset in marker.values())
    writer.put("after", 1, "a", EVENT, make_state(EVENT))
    later = writer.recovery_marker()
    assert sum(later.values()) == sum(marker.values()) + 1

    from_marker = store_opener()
    report = from_marker.rebuild([marker])
    assert report.records_read == 1
    assert [sk.agent_key for sk, _ in from_marker.states()] == ["after"]

    # Several markers: each partition starts at the smallest offset any of them gives.
    both = store_opener()
    both.rebuild([later, initial, marker])
    assert {sk.agent_key for sk, _ in both.states()} == {"before", "after"}


def test_rebuild_reads_only_the_partitions_asked_for(store_opener: StoreOpener) -> None:
    writer = store_opener()
    mine = keys_in_partition(1, 3)
    theirs = keys_in_partition(2, 3)
    for key in mine + theirs:
        writer.put(key, 1, "a", EVENT, make_state(EVENT))

    reader = store_opener()
    report = reader.rebuild(partitions=[1])
    assert report.partitions == [1]
    assert sorted(sk.agent_key for sk, _ in reader.states()) == sorted(mine)


def test_rebuild_merges_into_the_view(store_opener: StoreOpener) -> None:
    writer = store_opener()
    writer.put("theirs", 1, "a", EVENT, make_state(EVENT))
    reader = store_opener()
    reader.put("mine", 1, "a", EVENT, make_state(EVENT))
    reader.rebuild()
    assert {sk.agent_key for sk, _ in reader.states()} == {"mine", "theirs"}


def test_a_rebuild_applies_tombstones_to_the_view(store_opener: StoreOpener) -> None:
    reader = store_opener()
    writer = store_opener()
    writer.put("k", 1, "a", EVENT, make_state(EVENT))
    reader.rebuild()
    assert reader.get("k", 1, "a", EVENT) is not None
    writer.prune("k", 1)
    reader.rebuild()
    assert reader.get("k", 1, "a", EVENT) is None


# -- states() ----------------------------------------------------------------------------


def test_states_is_a_snapshot_of_the_view(store: ActionStateStore) -> None:
    state = make_state(EVENT, note="x")
    store.put("k", 1, "a", EVENT, state)
    snapshot = store.states()
    store.put("k", 2, "a", EVENT, state)

    [(key, stored)] = snapshot
    assert isinstance(key, StateKey)
    assert (key.agent_key, key.seq) == ("k", 1)
    assert key == parse_state_key(str(key))
    assert same(stored, state)
    assert len(store.states()) == 2


# -- signing -----------------------------------------------------------------------------


def test_signed_records_rebuild_with_the_same_secret(store_opener: StoreOpener) -> None:
    store_opener(signing_secret="s3cret").put("k", 1, "a", EVENT, make_state(EVENT))
    reader = store_opener(signing_secret="s3cret")
    report = reader.rebuild()
    assert report.bad_records == 0
    assert reader.get("k", 1, "a", EVENT) is not None


def test_a_secret_refuses_unsigned_and_foreign_records(store_opener: StoreOpener) -> None:
    store_opener().put("unsigned", 1, "a", EVENT, make_state(EVENT))
    store_opener(signing_secret="other").put("foreign", 1, "a", EVENT, make_state(EVENT))
    reader = store_opener(signing_secret="s3cret")
    report = reader.rebuild()
    assert report.bad_records == 2
    assert {bad.reason for bad in report.bad_samples} == {"signature"}
    assert reader.states() == []


# -- lifecycle and argument errors -----------------------------------------------------


def test_a_closed_store_refuses_work(store_opener: StoreOpener) -> None:
    with store_opener() as store:
        store.put("k", 1, "a", EVENT, make_state(EVENT))
    with pytest.raises(StoreError, match="closed"):
        store.put("k", 2, "a", EVENT, make_state(EVENT))
    with pytest.raises(StoreError, match="closed"):
        store.get("k", 1, "a", EVENT)
    store.close()  # closing twice is harmless


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (1, InvalidStateKeyError, "agent key must be a str"),
        (b"k", InvalidStateKeyError, "agent key must be a str"),
        ("a_b", InvalidStateKeyError, "contains '_'"),
        ("", InvalidStateKeyError, "must not be empty"),
    ],
)
def test_bad_agent_keys_are_refused(
    store: ActionStateStore, key: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.put(key, 1, "a", EVENT, make_state(EVENT))
    with pytest.raises(error, match=match):
        store.get(key, 1, "a", EVENT)
    with pytest.raises(error, match=match):
        store.prune(key, 1)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("k", "1", "a", EVENT), TypeError, "seq must be an int"),
        (("k", True, "a", EVENT), TypeError, "seq must be an int"),
        (("k", -1, "a", EVENT), ValueError, "seq must be between"),
        (("k", 1, "", EVENT), TypeError, "action must be a non-empty str"),
        (("k", 1, 7, EVENT), TypeError, "action must be a non-empty str"),
        (("k", 1, "a", {"order": 1}), TypeError, "event must be"),
    ],
)
def test_bad_put_and_get_arguments_are_named(
    store: ActionStateStore, args: tuple[Any, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.put(*args, make_state(EVENT))
    with pytest.raises(error, match=match):
        store.get(*args)


def test_a_state_that_is_not_an_action_state_is_refused(store: ActionStateStore) -> None:
    with pytest.raises(TypeError, match="state must be"):
        store.put("k", 1, "a", EVENT, {"completed": True})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="up_to_seq must be an int"):
        store.prune("k", "2")  # type: ignore[arg-type]


def test_bad_rebuild_arguments_are_named(store: ActionStateStore) -> None:
    with pytest.raises(ValueError, match="partitions"):
        store.rebuild(partitions=[PARTITIONS])
    with pytest.raises(TypeError, match="partitions"):
        store.rebuild(partitions=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="recovery_markers"):
        store.rebuild(recovery_markers={0: 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recovery_markers"):
        store.rebuild(recovery_markers=[{0: -1}])


def test_every_backend_satisfies_the_protocol(store: ActionStateStore) -> None:
    assert isinstance(store, ActionStateStore)


# -- the memory log ----------------------------------------------------------------------


def test_memory_rebuild_skips_and_counts_bad_records() -> None:
    log = MemoryLog(PARTITIONS)
    writer = MemoryStore(log)
    writer.put("k", 1, "a", EVENT, make_state(EVENT, note="good"))
    [(good_key, _)] = writer.states()
    log.append(0, b"not-a-state-key", b"{}", None)
    log.append(0, None, b"{}", None)
    log.append(partition_for("k", PARTITIONS), str(good_key).encode(), b"\xff garbage", None)

    reader = MemoryStore(log)
    report = reader.rebuild()
    assert report.bad_records == 3
    assert {bad.reason for bad in report.bad_samples} == {"key", "value"}
    # The garbage written over a good record is skipped: the good one stays.
    assert same(reader.get("k", 1, "a", EVENT), make_state(EVENT, note="good"))


# -- signing over a log that can be appended to directly (memory, Kafka) -----------------


@dataclass
class RawBacking:
    """A backend's stores plus direct access to its log, as an attacker with write access
    to the topic (but not the secret) has."""

    open: StoreOpener
    records: Callable[[], list[RawRecord]]
    append: Callable[[RawRecord, bytes | None, HeaderList | None], None]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def raw_backing(request: pytest.FixtureRequest) -> RawBacking:
    opener: StoreOpener = request.getfixturevalue(STORE_BACKENDS[request.param])
    if request.param == "memory":
        log = opener().log  # type: ignore[attr-defined]

        def memory_records() -> list[RawRecord]:
            ends = log.end_offsets()
            return [r for p in range(log.partitions) for r in log.read(p, 0, ends[p])]

        def memory_append(
            record: RawRecord, value: bytes | None, headers: HeaderList | None
        ) -> None:
            log.append(record.partition() or 0, record.key(), value, headers)

        return RawBacking(opener, memory_records, memory_append)
    settings = request.getfixturevalue("kafka_settings")
    producer = raw_producer(settings.bootstrap_servers)

    def kafka_append(record: RawRecord, value: bytes | None, headers: HeaderList | None) -> None:
        producer.produce(
            settings.topic, value, key=record.key(), partition=record.partition(), headers=headers
        )
        assert producer.flush(30) == 0

    def kafka_records() -> list[RawRecord]:
        return list(read_raw(settings.bootstrap_servers, settings.topic))

    return RawBacking(opener, kafka_records, kafka_append)


def _records_of(backing: RawBacking, agent_key: str) -> list[RawRecord]:
    found = [r for r in backing.records() if (r.key() or b"").startswith(f"{agent_key}_".encode())]
    return sorted(found, key=lambda r: r.offset() or 0)


def _reasons(report: RebuildReport) -> list[str]:
    return sorted(bad.reason for bad in report.bad_samples)


def test_an_unsigned_tombstone_does_not_delete_a_signed_state(raw_backing: RawBacking) -> None:
    writer = raw_backing.open(signing_secret="s3cret")
    done = make_state(EVENT, note="done", done=True)
    writer.put("k", 1, "a", EVENT, done)
    [record] = _records_of(raw_backing, "k")
    raw_backing.append(record, None, None)  # unsigned
    skey = (record.key() or b"").decode()
    forged = tombstone_meta(skey, secret=b"not-the-secret", version=2**62)
    raw_backing.append(record, None, [*forged.to_headers()])

    reader = raw_backing.open(signing_secret="s3cret")
    report = reader.rebuild()
    assert _reasons(report) == ["signature", "signature"]
    assert report.tombstones == 0
    # The completed state stays: an idempotent re-submit replays it instead of running again.
    assert same(reader.get("k", 1, "a", EVENT), done)

    # A tombstone the writer signs (prune) does delete.
    assert writer.prune("k", 1) == 1
    after = raw_backing.open(signing_secret="s3cret")
    report = after.rebuild()
    assert after.get("k", 1, "a", EVENT) is None
    assert report.tombstones == 1


def test_an_older_signed_record_appended_again_is_refused(raw_backing: RawBacking) -> None:
    writer = raw_backing.open(signing_secret="s3cret")
    writer.put("k", 1, "a", EVENT, make_state(EVENT, note="pending"))
    done = make_state(EVENT, note="done", done=True)
    writer.put("k", 1, "a", EVENT, done)
    pending, _done = _records_of(raw_backing, "k")
    raw_backing.append(pending, pending.value(), list(pending.headers() or []))

    reader = raw_backing.open(signing_secret="s3cret")
    report = reader.rebuild()
    assert _reasons(report) == ["version"]
    assert "not above version" in report.bad_samples[0].detail
    assert same(reader.get("k", 1, "a", EVENT), done)
    # The writer's next version is above every version it saw: its next write is accepted.
    later = make_state(EVENT, note="again", done=True)
    writer.put("k", 1, "a", EVENT, later)
    again = raw_backing.open(signing_secret="s3cret")
    again.rebuild()
    assert same(again.get("k", 1, "a", EVENT), later)


def test_a_swapped_codec_header_is_refused(raw_backing: RawBacking) -> None:
    writer = raw_backing.open(signing_secret="s3cret")
    first = make_state(EVENT, note="first")
    writer.put("k", 1, "a", EVENT, first)
    writer.put("k", 1, "a", EVENT, make_state(EVENT, note="second"))
    _first, second = _records_of(raw_backing, "k")
    swapped = [
        (name, b"json" if name == HEADER_CODEC else value) for name, value in second.headers() or []
    ]
    assert swapped != list(second.headers() or [])
    raw_backing.append(second, second.value(), swapped)  # type: ignore[arg-type]

    reader = raw_backing.open(signing_secret="s3cret")
    report = reader.rebuild()
    assert _reasons(report) == ["signature"]
    [(_key, stored)] = reader.stored_states()
    assert stored.codec == "cloudpickle"
    assert same(stored.state, make_state(EVENT, note="second"))


def test_unsigned_logs_keep_the_latest_record_as_before(raw_backing: RawBacking) -> None:
    writer = raw_backing.open()
    writer.put("k", 1, "a", EVENT, make_state(EVENT, note="old"))
    writer.put("k", 1, "a", EVENT, make_state(EVENT, note="new"))
    old, _new = _records_of(raw_backing, "k")
    assert HEADER_VERSION not in dict(old.headers() or [])
    raw_backing.append(old, old.value(), None)  # as Java writes it: no headers

    reader = raw_backing.open()
    report = reader.rebuild()
    assert report.bad_records == 0
    assert same(reader.get("k", 1, "a", EVENT), make_state(EVENT, note="old"))
