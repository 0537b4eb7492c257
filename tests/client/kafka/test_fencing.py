"""Fenced writes on a real broker: the newer owner of a partition makes the broker refuse
the older owner's writes, nothing of a refused write is stored, and concurrent writes of a
partition share transactions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from actionstate.client import (
    FencedError,
    KafkaStore,
    KafkaStoreSettings,
    PartitionNotOwnedError,
    StoreWriteError,
)
from actionstate.client._locate import partition_of
from actionstate.client.kafka import TransactionalWriter, transactional_id
from actionstate.serde import ActionState, Event, MemoryUpdate, decode_action_state
from tests._support import assert_eventually, returns_within
from tests._support.kafka import read_raw

PARTITIONS = 4
EVENT = Event.input({"order": 42})


def noted(note: str) -> ActionState:
    return ActionState(
        task_event=EVENT, short_term_memory_updates=[MemoryUpdate(path="note", value=note)]
    )


@pytest.fixture
def settings(kafka_bootstrap: str, topic_name: str) -> KafkaStoreSettings:
    return KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS, timeout_s=20
    )


@pytest.fixture
def open_fenced(settings: KafkaStoreSettings) -> Iterator[Callable[..., KafkaStore]]:
    stores: list[KafkaStore] = []

    def open_store(prefix: str | None = "test", **kw: object) -> KafkaStore:
        store = KafkaStore(settings)
        store.own_partitions(transactional_id_prefix=prefix, **kw)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def test_a_new_owner_fences_the_old_one_and_its_write_is_refused(
    open_fenced: Callable[..., KafkaStore], settings: KafkaStoreSettings
) -> None:
    fenced: list[int] = []
    old = open_fenced(on_fenced=fenced.append)
    p = partition_of("order-1", PARTITIONS)
    old.claim([p])
    old.put("order-1", 0, "charge", EVENT, noted("old"))

    new = open_fenced()
    new.claim([p])  # bumps the transactional id's epoch
    new.put("order-1", 0, "charge", EVENT, noted("new"))

    with pytest.raises(FencedError) as info:
        returns_within(30, lambda: old.put("order-1", 0, "charge", EVENT, noted("zombie")))
    assert info.value.partition == p
    assert "another worker claimed it" in str(info.value)
    assert fenced == [p]
    # Later writes are refused at once, without a broker round trip.
    with pytest.raises(FencedError):
        old.put("order-1", 0, "charge", EVENT, noted("zombie again"))

    # What a read-committed reader sees last is the new owner's record (a transaction's
    # records reach such readers a moment after its commit: the markers are written after).
    def last_is_new() -> None:
        records = [r for r in read_raw(settings.bootstrap_servers, settings.topic) if r.value()]
        last = decode_action_state(records[-1].value())
        assert last.short_term_memory_updates[0].value == "new"

    assert_eventually(last_is_new)
    with KafkaStore(settings) as fresh:
        fresh.rebuild()
        got = fresh.get("order-1", 0, "charge", EVENT)
        assert got is not None
        assert got.short_term_memory_updates[0].value == "new"


def test_an_async_write_of_a_fenced_owner_is_refused_too(
    open_fenced: Callable[..., KafkaStore],
) -> None:
    old, new = open_fenced(), open_fenced()
    p = partition_of("order-2", PARTITIONS)
    old.claim([p])
    new.claim([p])

    async def write() -> None:
        await old.aput("order-2", 0, "charge", EVENT, noted("zombie"))

    with pytest.raises(FencedError):
        returns_within(30, lambda: asyncio.run(write()))


def test_writes_to_partitions_not_claimed_or_released_are_refused_unsent(
    open_fenced: Callable[..., KafkaStore], settings: KafkaStoreSettings
) -> None:
    store = open_fenced()
    p = partition_of("order-3", PARTITIONS)
    with pytest.raises(PartitionNotOwnedError, match="not owned by this worker"):
        store.put("order-3", 0, "charge", EVENT, noted("x"))
    store.claim([p])
    store.put("order-3", 0, "charge", EVENT, noted("mine"))
    assert store.get("order-3", 0, "charge", EVENT) is not None
    assert store.release([p]) == 1  # its state left the view
    assert store.get("order-3", 0, "charge", EVENT) is None
    with pytest.raises(PartitionNotOwnedError):
        store.put("order-3", 1, "charge", EVENT, noted("late"))
    assert_eventually(
        lambda: (
            len([r for r in read_raw(settings.bootstrap_servers, settings.topic) if r.value()]) == 1
        )
    )


def test_without_fencing_unclaimed_partitions_are_refused_by_the_store_only(
    open_fenced: Callable[..., KafkaStore],
) -> None:
    store = open_fenced(prefix=None)
    assert not store.fenced
    with pytest.raises(PartitionNotOwnedError):
        store.put("order-4", 0, "charge", EVENT, noted("x"))
    store.claim([partition_of("order-4", PARTITIONS)])
    store.put("order-4", 0, "charge", EVENT, noted("x"))


def test_own_partitions_twice_and_claim_before_it_are_refused(
    settings: KafkaStoreSettings,
) -> None:
    with KafkaStore(settings) as store:
        with pytest.raises(StoreWriteError, match="own_partitions"):
            store.claim([0])
        store.own_partitions()
        with pytest.raises(StoreWriteError, match="already owns"):
            store.own_partitions()


def test_concurrent_writes_of_a_partition_share_transactions(
    open_fenced: Callable[..., KafkaStore], settings: KafkaStoreSettings
) -> None:
    store = open_fenced()
    keys = [f"k{i}" for i in range(400)]
    p = partition_of(keys[0], PARTITIONS)
    mine = [k for k in keys if partition_of(k, PARTITIONS) == p][:64]
    store.claim([p])
    writer = store._writer
    assert isinstance(writer, TransactionalWriter)

    async def write_all() -> None:
        await asyncio.gather(*(store.aput(k, 0, "charge", EVENT, noted(k)) for k in mine))

    returns_within(60, lambda: asyncio.run(write_all()))
    assert writer.commits() < len(mine)  # group commit: fewer transactions than writes
    with KafkaStore(settings) as fresh:
        fresh.rebuild()
        assert all(fresh.get(k, 0, "charge", EVENT) is not None for k in mine)


def test_sync_writers_in_threads_share_transactions(
    open_fenced: Callable[..., KafkaStore],
) -> None:
    store = open_fenced()
    p = partition_of("t0", PARTITIONS)
    mine = [k for k in (f"t{i}" for i in range(400)) if partition_of(k, PARTITIONS) == p][:32]
    store.claim([p])
    errors: list[BaseException] = []

    def put(key: str) -> None:
        try:
            store.put(key, 0, "charge", EVENT, noted(key))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(k,)) for k in mine]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(store.get(k, 0, "charge", EVENT) is not None for k in mine)


def test_release_fails_queued_writes_and_claim_again_works(
    open_fenced: Callable[..., KafkaStore],
) -> None:
    store = open_fenced()
    p = partition_of("order-5", PARTITIONS)
    store.claim([p])
    store.release([p])
    with pytest.raises(PartitionNotOwnedError):
        store.put("order-5", 0, "charge", EVENT, noted("x"))
    store.claim([p])
    store.put("order-5", 0, "charge", EVENT, noted("x"))
    assert_eventually(lambda: store.get("order-5", 0, "charge", EVENT) is not None)


def test_the_transactional_id_names_topic_and_partition() -> None:
    assert transactional_id("actionstate", "orders-state", 7) == "actionstate-orders-state-7"
