"""Acknowledged writes to Kafka, for blocking callers and for asyncio callers.

Two idempotent producers, created on first use: blocking writes poll theirs from the
calling thread, so a ``put`` costs what ``produce()`` + ``flush()`` costs with no thread
hand-off; asyncio writes are acknowledged by a delivery thread that hands results to
the caller's event loop, so many can be in flight without blocking it. Every write of
one state key is acknowledged before the next is issued, so using two producers never
reorders a key's records.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from actionstate.client._errors import StoreWriteError
from actionstate.client.kafka._errors import (
    RecordLimits,
    new_client,
    record_size,
    topic_limit_lookup,
    write_error,
)
from actionstate.client.kafka._settings import KafkaConnection
from actionstate.serde import HeaderList

__all__ = ["KafkaWriter"]

_log = logging.getLogger("actionstate.client.kafka")
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")

_SLICE_S = (
    0.002  # a blocking writer polls in slices so another thread serving its report costs little
)
_POLL_WAIT_S = 0.1
_FULL_QUEUE_WAIT_S = 0.005

Delivery = Callable[[KafkaError | None, Message], None]
Outcome = tuple[KafkaError | None, int]
_Settled = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Outcome]", Outcome]


def _settle_all(items: list[_Settled]) -> None:
    for _loop, future, outcome in items:
        if not future.done():  # a cancelled caller no longer waits
            future.set_result(outcome)


def _outcome(err: KafkaError | None, msg: Message) -> Outcome:
    offset = msg.offset()
    return err, (-1 if err is not None or offset is None else offset)


class KafkaWriter:
    """Writes records to ``topic`` through the idempotent producer of ``conn`` and reports
    each one's offset once acknowledged. A value of None writes a tombstone."""

    def __init__(self, conn: KafkaConnection, topic: str) -> None:
        self.topic = topic
        self._config: dict[str, Any] = {
            **conn.kafka_config("producer"),
            "error_cb": self._on_error,
            "logger": _librdkafka_log,
        }
        # librdkafka fails each write after this (message.timeout.ms); closing waits as long.
        self._timeout = conn.timeout_s
        self._limits = RecordLimits(
            producer=int(self._config["message.max.bytes"]),
            lookup_topic=topic_limit_lookup(conn, topic),
        )
        self._lock = threading.Lock()
        self._sync: Producer | None = None
        self._async: Producer | None = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        # Filled and drained on the delivery thread only (callbacks run inside its poll()).
        self._settled: list[_Settled] = []

    def _on_error(self, err: KafkaError) -> None:
        # Connection trouble surfaces here; writes in flight are retried by librdkafka
        # until delivery.timeout.ms and then fail through their own delivery reports.
        _log.warning("kafka client error on topic %s: %s", self.topic, err.str())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- producers ---------------------------------------------------------------------

    def _sync_producer(self) -> Producer:
        with self._lock:
            self._check_open("")
            if self._sync is None:
                self._sync = new_client(Producer, self._config)
            return self._sync

    def _async_producer(self) -> Producer:
        with self._lock:
            self._check_open("")
            if self._async is None:
                producer = new_client(Producer, self._config)
                self._poller = threading.Thread(
                    target=self._deliver,
                    args=(producer,),
                    name=f"actionstate-deliveries-{self.topic}",
                    daemon=True,
                )
                self._async = producer
                self._poller.start()
            return self._async

    def _deliver(self, producer: Producer) -> None:
        # All async delivery reports are served here, so handing them over needs no lock.
        while not self._stop.is_set():
            producer.poll(_POLL_WAIT_S)
            self._hand_over()
        deadline = time.monotonic() + self._timeout
        while len(producer) and time.monotonic() < deadline:
            producer.poll(_POLL_WAIT_S)
            self._hand_over()
        if len(producer):
            self._give_up(producer)
        self._hand_over()

    def _hand_over(self) -> None:
        # Reports served by one poll() reach each event loop in one wake-up, not one per
        # write: with many writes in flight that is most of the cost.
        if not self._settled:
            return
        batch, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for item in batch:
            by_loop.setdefault(item[0], []).append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, items)
            except RuntimeError:
                _log.warning("%d deliveries arrived after their event loop closed", len(items))

    def _give_up(self, producer: Producer) -> None:
        _log.warning(
            "closing the store for topic %s with %d writes unacknowledged",
            self.topic,
            len(producer),
        )
        producer.purge()
        producer.poll(0)  # serves the purged writes' failure reports

    def _check_open(self, skey: str) -> None:
        if self._closed:
            raise StoreWriteError(
                f"the store for topic {self.topic!r} is closed; the write of {skey!r} "
                "may or may not have been stored",
                topic=self.topic,
                key=skey,
                cause="store closed",
            )

    def _produce(
        self,
        producer: Producer,
        partition: int,
        skey: str | bytes | None,
        value: bytes | None,
        headers: HeaderList,
        *,
        done: Delivery,
    ) -> None:
        """Queue one record; BufferError when librdkafka's queue is full."""
        try:
            producer.produce(
                self.topic, value, key=skey, partition=partition, headers=headers, on_delivery=done
            )
        except KafkaException as exc:
            raise self._error(skey, value, headers, exc.args[0], local=True) from exc

    def _error(
        self,
        skey: str | bytes | None,
        value: bytes | None,
        headers: HeaderList,
        err: KafkaError,
        *,
        local: bool = False,
    ) -> StoreWriteError:
        size = record_size(skey, value, headers)
        return write_error(
            self.topic, skey, err, self._timeout, size=size, limits=self._limits, local=local
        )

    def _produce_blocking(
        self,
        producer: Producer,
        partition: int,
        skey: str,
        value: bytes | None,
        headers: HeaderList,
    ) -> list[Outcome]:
        outcome: list[Outcome] = []

        def done(err: KafkaError | None, msg: Message) -> None:
            outcome.append(_outcome(err, msg))

        while True:
            try:
                self._produce(producer, partition, skey, value, headers, done=done)
                return outcome
            except BufferError:
                producer.poll(_FULL_QUEUE_WAIT_S)

    # -- writes ------------------------------------------------------------------------

    def write(self, partition: int, skey: str, value: bytes | None, headers: HeaderList) -> int:
        """Write one record and return its offset once acknowledged."""
        producer = self._sync
        if producer is None or self._closed:  # the lock only until the producer exists
            producer = self._sync_producer()
        outcome = self._produce_blocking(producer, partition, skey, value, headers)
        # librdkafka reports every message, success or failure, within delivery.timeout.ms.
        while not outcome:
            producer.poll(_SLICE_S)
        err, offset = outcome[0]
        if err is not None:
            raise self._error(skey, value, headers, err)
        return offset

    def write_all(
        self, partition: int, records: list[tuple[str, bytes | None, HeaderList]]
    ) -> list[tuple[str, StoreWriteError | None]]:
        """Write several records at once; each key with its error, None when acknowledged."""
        producer = self._sync_producer()
        pending: list[tuple[tuple[str, bytes | None, HeaderList], list[Outcome]]] = []
        results: list[tuple[str, StoreWriteError | None]] = []
        for record in records:
            skey, value, headers = record
            try:
                pending.append(
                    (record, self._produce_blocking(producer, partition, skey, value, headers))
                )
            except StoreWriteError as exc:
                results.append((skey, exc))
        for (skey, value, headers), outcome in pending:
            while not outcome:
                producer.poll(_SLICE_S)
            err = outcome[0][0]
            error = None if err is None else self._error(skey, value, headers, err)
            results.append((skey, error))
        return results

    async def awrite(
        self, partition: int, skey: str | bytes | None, value: bytes | None, headers: HeaderList
    ) -> int:
        """Write one record; the offset once acknowledged, without blocking the loop."""
        producer = self._async
        if producer is None or self._closed:
            producer = self._async_producer()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def done(err: KafkaError | None, msg: Message) -> None:
            self._settled.append((loop, future, _outcome(err, msg)))

        while True:
            try:
                self._produce(producer, partition, skey, value, headers, done=done)
                break
            except BufferError:
                await asyncio.sleep(_FULL_QUEUE_WAIT_S)
        err, offset = await future
        if err is not None:
            raise self._error(skey, value, headers, err)
        return offset

    def warm(self) -> None:
        """Connect both producers and fetch the topic's partition leaders now, so the first
        write does not wait for them (nor for the idempotent producer id, asked for on
        connecting). Best effort: a failure is left for the writes to report."""
        try:
            for producer in (self._sync_producer(), self._async_producer()):
                producer.list_topics(self.topic, timeout=self._timeout)
        except (KafkaException, StoreWriteError) as exc:
            _log.debug("warming the producers of topic %s failed: %s", self.topic, exc)

    def close(self) -> None:
        """Wait (up to the close timeout) for writes in flight, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._sync is not None and self._sync.flush(self._timeout):
            self._give_up(self._sync)
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
