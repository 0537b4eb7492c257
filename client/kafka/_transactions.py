"""Fenced writes: one transactional producer per owned partition, with group commit.

The broker enforces ownership through the transactional id's epoch (KIP-98): the id of
partition ``p`` is ``<prefix>-<topic>-<p>``, so when a new owner claims ``p`` its
``init_transactions()`` bumps the epoch, aborts whatever the previous owner left open and
makes the broker refuse every later write of that owner. A worker that stalled past its
session timeout (a zombie) therefore cannot overwrite the new owner's records, which
compaction would otherwise let win.

A write returns once its transaction committed, so a journal write that precedes a side
effect is durable before the side effect runs. Writes of one partition that arrive while
a commit is in flight wait for it and then share the next transaction (group commit):
under load a commit carries many writes instead of paying one round trip each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from actionstate.client._errors import FencedError, PartitionNotOwnedError, StoreWriteError
from actionstate.client.kafka._errors import (
    RecordLimits,
    describe,
    error_of,
    new_client,
    record_size,
    topic_limit_lookup,
    write_error,
)
from actionstate.client.kafka._settings import KafkaConnection
from actionstate.serde import HeaderList

__all__ = ["TransactionalWriter", "transactional_id"]

_log = logging.getLogger("actionstate.client.kafka")
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")

_FULL_QUEUE_WAIT_S = 0.005
_RETRY_WAIT_S = 0.05
_DELIVERY_SLICE_S = 0.1
_MAX_PARALLEL_CLAIMS = 8

# The broker (or librdkafka on its behalf) says another producer owns the transactional id.
_FENCED_CODES = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)

Record = tuple[str, bytes | None, HeaderList]


def transactional_id(prefix: str, topic: str, partition: int) -> str:
    """The transactional id that owns ``partition`` of ``topic``: the same in every worker,
    so each new owner fences the previous one."""
    return f"{prefix}-{topic}-{partition}"


def _fail_future(future: Future[int], error: BaseException) -> None:
    # A caller that stopped waiting (a cancelled task) cancelled its future: nothing to tell.
    if future.set_running_or_notify_cancel():
        future.set_exception(error)


def _retriable(exc: KafkaException) -> bool:
    # librdkafka's own verdict on a transactional call: retriable means "call it again".
    err = error_of(exc)
    return err is not None and err.retriable()


def _fenced(err: KafkaError | None) -> bool:
    return err is not None and (err.code() in _FENCED_CODES or err.fatal())


@dataclass
class _Write:
    skey: str
    value: bytes | None
    headers: HeaderList
    future: Future[int] = field(default_factory=Future)
    offset: int = -1
    error: KafkaError | None = None
    refused: bool = False  # produce() refused it (above the producer's size limit)

    def too_large(self) -> bool:
        return self.error is not None and self.error.code() == KafkaError.MSG_SIZE_TOO_LARGE


class _Partition:
    """One owned partition: its transactional producer and the thread that commits its
    writes, as many as have queued up per transaction."""

    def __init__(self, writer: TransactionalWriter, partition: int, producer: Producer) -> None:
        self.partition = partition
        self._writer = writer
        self._producer = producer
        self._cond = threading.Condition()
        self._queue: list[_Write] = []
        self._closed = False
        self.fenced: FencedError | None = None
        self.commits = 0
        self._thread = threading.Thread(
            target=self._run,
            name=f"actionstate-txn-{writer.topic}-{partition}",
            daemon=True,
        )
        self._thread.start()

    def submit(self, write: _Write) -> None:
        with self._cond:
            if self.fenced is not None:
                _fail_future(write.future, self.fenced)
            elif self._closed:
                _fail_future(write.future, self._writer.not_owned(self.partition, write.skey))
            else:
                self._queue.append(write)
                self._cond.notify()

    def close(self) -> None:
        """Refuse new writes, let the commit in flight finish, fail what is still queued."""
        with self._cond:
            self._closed = True
            left, self._queue = self._queue, []
            self._cond.notify()
        for write in left:
            _fail_future(write.future, self._writer.not_owned(self.partition, write.skey))
        self._thread.join(self._writer.timeout + 5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                taken, self._queue = self._queue, []
            # Running futures cannot be cancelled any more; cancelled ones are not written.
            batch = [w for w in taken if w.future.set_running_or_notify_cancel()]
            if batch:
                self._commit(batch)
            if self.fenced is not None:
                return

    def _commit(self, batch: list[_Write]) -> None:
        producer = self._producer
        try:
            producer.begin_transaction()
            for write in batch:
                self._produce(write)
        except KafkaException as exc:
            self._fail(batch, exc, unknown=False)
            return
        try:
            refused = self._deliver(batch)
        except KafkaException as exc:  # fenced (fatal) while waiting: not committed
            self._fail(batch, exc, unknown=False)
            return
        if refused is not None:
            self._fail(batch, KafkaException(refused), unknown=False)
            return
        failed = self._resume(producer.commit_transaction, self._writer.timeout)
        if failed is not None:
            self._fail(batch, failed, unknown=_retriable(failed))
            return
        producer.poll(0)  # serves any delivery report the commit's flush left queued
        self.commits += 1
        for write in batch:
            if write.error is not None or write.offset < 0:
                # A record refused as too large was never sent; any other failure is not
                # expected after a successful commit: never report a write it did not make.
                cause = write.error or KafkaError(KafkaError._FAIL, "no delivery report")
                write.future.set_exception(self._writer.error(write, cause))
            else:
                write.future.set_result(write.offset)

    def _deliver(self, batch: list[_Write]) -> KafkaError | None:
        """Wait (up to the timeout) for the batch's delivery reports, as the commit would;
        the error of a record the broker refused as too large, if one was. The commit would
        wait out its whole timeout instead: the records behind a refused one are never sent
        until the transaction is aborted."""
        producer = self._producer
        deadline = time.monotonic() + self._writer.timeout
        while True:
            for write in batch:
                if write.too_large() and not write.refused:
                    return write.error
            if not len(producer) or time.monotonic() >= deadline:
                return None
            producer.flush(_DELIVERY_SLICE_S)

    def _produce(self, write: _Write) -> None:
        def done(err: KafkaError | None, msg: Message) -> None:
            write.error = err
            offset = msg.offset()
            write.offset = -1 if err is not None or offset is None else offset

        while True:
            try:
                self._producer.produce(
                    self._writer.topic,
                    write.value,
                    key=write.skey,
                    partition=self.partition,
                    headers=write.headers,
                    on_delivery=done,
                )
                return
            except BufferError:
                self._producer.poll(_FULL_QUEUE_WAIT_S)
            except KafkaException as exc:
                err = error_of(exc)
                if err is None or err.code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                # Only this record fails; the others of the transaction still commit.
                write.error, write.refused = err, True
                return

    def _resume(self, call: Callable[[float], None], within: float | None) -> KafkaException | None:
        """Call a transactional API (``commit_transaction``, ``abort_transaction``) until it
        succeeds (None), fails for good, or ``within`` seconds passed (its error). librdkafka
        resumes a call that timed out when it is made again, and refuses any other
        transactional call until it has ended."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            left = self._writer.timeout if deadline is None else deadline - time.monotonic()
            try:
                call(max(0.1, left))
                return None
            except KafkaException as exc:
                expired = deadline is not None and time.monotonic() >= deadline
                if not _retriable(exc) or expired or self._closed:
                    return exc
            time.sleep(_RETRY_WAIT_S)

    def _fail(self, batch: list[_Write], exc: KafkaException, *, unknown: bool) -> None:
        """Fail ``batch``, and end its transaction so the next one can begin.

        ``unknown``: the commit did not answer in time, so its writes may still be stored;
        the commit is resumed until it ends. Otherwise the transaction is aborted, and none
        of its writes is stored.
        """
        err = error_of(exc)
        if _fenced(err):
            self._fence(describe(exc), batch)
            return
        refused = [w for w in batch if w.too_large() and not w.refused]
        if refused and not unknown and self._renew():
            # Only the records the broker refused as too large fail; the others of the
            # aborted transaction (none of them stored) go again in a new one.
            for write in refused:
                write.future.set_exception(self._writer.error(write, write.error or exc.args[0]))
            rest = [w for w in batch if w not in refused]
            for write in rest:
                write.error, write.offset = None, -1
            if rest and self.fenced is None:
                self._commit(rest)
            return
        topic, timeout = self._writer.topic, self._writer.timeout
        cause = err or KafkaError(KafkaError._FAIL, str(exc))
        for write in batch:
            error = write_error(topic, write.skey, cause, timeout)
            # An aborted write is definitely not stored, so trying again is safe; one whose
            # commit did not answer may be, which a retry through the journal handles too.
            error.retriable = not unknown
            write.future.set_exception(error)
        if unknown:
            _log.warning(
                "the commit of %d writes to %s[%d] did not answer within %gs; resuming it",
                len(batch),
                topic,
                self.partition,
                timeout,
            )
            exc_after = self._resume(self._producer.commit_transaction, None)
            if exc_after is None:
                return
            err = error_of(exc_after)
            if _fenced(err):
                self._fence(describe(exc_after), [])
                return
        ended = self._resume(self._producer.abort_transaction, None)
        if ended is not None and _fenced(error_of(ended)):
            self._fence(describe(ended), [])
        elif ended is not None:
            _log.warning(
                "aborting a transaction on %s[%d] failed: %s",
                topic,
                self.partition,
                describe(ended),
            )

    def _renew(self) -> bool:
        """Abort the transaction and replace the producer: a record the broker refused
        still used up a sequence number, and only a new epoch (a new ``init_transactions``
        of the same id) starts the sequence again. False when that failed."""
        ended = self._resume(self._producer.abort_transaction, None)
        if ended is not None:
            return False
        try:
            self._producer = self._writer.new_producer(self.partition)
        except StoreWriteError as exc:
            _log.warning(
                "renewing the producer of %s[%d] failed: %s",
                self._writer.topic,
                self.partition,
                exc,
            )
            return False
        return True

    def _fence(self, cause: str, batch: list[_Write]) -> None:
        fenced = self._writer.fenced_error(self.partition, cause)
        with self._cond:
            self.fenced = fenced
            left, self._queue = self._queue, []
        for write in batch:
            write.future.set_exception(fenced)
        for write in left:
            _fail_future(write.future, fenced)
        self._writer.on_fenced(self.partition)


class TransactionalWriter:
    """Writes records to the partitions of ``topic`` this worker claimed, each through the
    transactional producer that fences every earlier owner of its partition.

    ``claim`` before writing to a partition; ``release`` when the partition is given up.
    ``on_fenced(partition)`` is called (from a commit thread) when the broker refuses a
    partition's transaction because a newer owner claimed it.
    """

    def __init__(
        self,
        conn: KafkaConnection,
        topic: str,
        *,
        id_prefix: str,
        on_fenced: Callable[[int], None] | None = None,
    ) -> None:
        self.topic = topic
        self.id_prefix = id_prefix
        self.timeout = conn.timeout_s
        # A write waits for the commit in flight, then for its own: both bounded by timeout.
        self._wait_s = 2 * self.timeout + 5
        self._conn = conn
        self._limits = RecordLimits(
            producer=int(conn.kafka_config("producer")["message.max.bytes"]),
            lookup_topic=topic_limit_lookup(conn, topic),
        )
        self._fenced_cb = on_fenced
        self._lock = threading.Lock()
        self._partitions: dict[int, _Partition] = {}
        self._closed = False

    # -- ownership ---------------------------------------------------------------------

    def commits(self) -> int:
        """Transactions committed so far by the partitions owned now."""
        with self._lock:
            return sum(part.commits for part in self._partitions.values())

    def claim(self, partitions: Collection[int]) -> None:
        """Fence every earlier owner of ``partitions`` and make them writable.

        Returns once each partition's previous transactions are finished (committed or
        aborted), so a read of the partition that starts now sees everything they wrote.
        """
        with self._lock:
            if self._closed:
                raise self.not_owned(-1, "")
            todo = [p for p in partitions if p not in self._partitions or self._stale(p)]
        if not todo:
            return
        with ThreadPoolExecutor(min(_MAX_PARALLEL_CLAIMS, len(todo))) as pool:
            producers = list(pool.map(self.new_producer, todo))
        with self._lock:
            for p, producer in zip(todo, producers, strict=True):
                old = self._partitions.get(p)
                if old is not None:
                    old.close()
                self._partitions[p] = _Partition(self, p, producer)

    def _stale(self, partition: int) -> bool:
        return self._partitions[partition].fenced is not None

    def new_producer(self, partition: int) -> Producer:
        """A transactional producer owning ``partition`` (earlier owners fenced)."""
        tid = transactional_id(self.id_prefix, self.topic, partition)
        config: dict[str, Any] = {
            **self._conn.kafka_config("producer", transactional_id=tid),
            "logger": _librdkafka_log,
        }
        producer = new_client(Producer, config)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                producer.init_transactions(max(0.1, deadline - time.monotonic()))
                return producer
            except KafkaException as exc:
                err = error_of(exc)
                if err is None or not err.retriable() or time.monotonic() >= deadline:
                    raise StoreWriteError(
                        f"could not claim partition {partition} of topic {self.topic!r} "
                        f"(transactional id {tid!r}): {describe(exc)}; check that the "
                        "brokers are reachable and allow transactions",
                        topic=self.topic,
                        cause=describe(exc),
                    ) from exc
            time.sleep(_RETRY_WAIT_S)

    def release(self, partitions: Collection[int]) -> None:
        """Give ``partitions`` up: writes queued for them fail, later ones are refused."""
        with self._lock:
            parts = [self._partitions.pop(p) for p in partitions if p in self._partitions]
        for part in parts:
            part.close()

    # -- writes ------------------------------------------------------------------------

    def _submit(
        self, partition: int, skey: str, value: bytes | None, headers: HeaderList
    ) -> _Write:
        write = _Write(skey, value, headers)
        part = self._partitions.get(partition)
        if part is None:
            _fail_future(write.future, self.not_owned(partition, skey))
        else:
            part.submit(write)
        return write

    def write(self, partition: int, skey: str, value: bytes | None, headers: HeaderList) -> int:
        """Write one record; its offset once its transaction committed."""
        write = self._submit(partition, skey, value, headers)
        try:
            return write.future.result(self._wait_s)
        except TimeoutError:
            raise self._unanswered(write) from None

    async def awrite(
        self, partition: int, skey: str, value: bytes | None, headers: HeaderList
    ) -> int:
        """Write one record without blocking the event loop."""
        write = self._submit(partition, skey, value, headers)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(write.future), self._wait_s)
        except TimeoutError:
            raise self._unanswered(write) from None

    def _unanswered(self, write: _Write) -> StoreWriteError:
        # Cancelled before its transaction took it, it is never written; taken already, its
        # commit may still land: either way the caller must not assume it was stored or not.
        write.future.cancel()
        return write_error(
            self.topic,
            write.skey,
            KafkaError(KafkaError._TIMED_OUT, "the transaction did not answer"),
            self._wait_s,
        )

    def write_all(
        self, partition: int, records: list[Record]
    ) -> list[tuple[str, StoreWriteError | None]]:
        """Write several records, in as few transactions as the commit thread makes."""
        writes = [self._submit(partition, skey, value, headers) for skey, value, headers in records]
        results: list[tuple[str, StoreWriteError | None]] = []
        for write in writes:
            try:
                write.future.result(self._wait_s)
            except TimeoutError:
                results.append((write.skey, self._unanswered(write)))
            except StoreWriteError as exc:
                results.append((write.skey, exc))
            else:
                results.append((write.skey, None))
        return results

    def close(self) -> None:
        """Release every partition (waiting for commits in flight) and refuse later writes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            parts, self._partitions = list(self._partitions.values()), {}
        for part in parts:
            part.close()

    # -- errors ------------------------------------------------------------------------

    def error(self, write: _Write, err: KafkaError) -> StoreWriteError:
        """The error of one write that failed with ``err`` (a size limit named, if one)."""
        return write_error(
            self.topic,
            write.skey,
            err,
            self.timeout,
            size=record_size(write.skey, write.value, write.headers),
            limits=self._limits,
            local=write.refused,
        )

    def on_fenced(self, partition: int) -> None:
        """Note that ``partition`` was fenced (called from its commit thread)."""
        _log.warning(
            "partition %d of topic %s: the broker refused this worker's transaction (fenced "
            "by a newer owner); dropping the partition",
            partition,
            self.topic,
        )
        if self._fenced_cb is not None:
            self._fenced_cb(partition)

    def fenced_error(self, partition: int, cause: str) -> FencedError:
        """The error of a write to ``partition`` after a newer owner fenced this writer."""
        tid = transactional_id(self.id_prefix, self.topic, partition)
        return FencedError(
            f"the broker refused the write to partition {partition} of topic {self.topic!r}: "
            f"another worker claimed it (transactional id {tid!r} was fenced: {cause}). "
            "Nothing of the transaction is stored; the new owner recovers the partition.",
            topic=self.topic,
            cause=cause,
            partition=partition,
        )

    def not_owned(self, partition: int, skey: str) -> PartitionNotOwnedError:
        """The error of a write to a partition this writer has not claimed."""
        return PartitionNotOwnedError(
            f"partition {partition} of topic {self.topic!r} is not owned by this worker "
            "(never claimed, or released after a rebalance); the write of "
            f"{skey!r} was not sent. The partition's owner runs its actions.",
            topic=self.topic,
            key=skey,
            cause="partition not owned",
        )
