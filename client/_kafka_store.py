"""The Kafka store: the journal in a compacted topic, a view of it in memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from ._base import ScanResult, ViewStore
from ._errors import StoreReadError, StoreWriteError
from ._kafka_topic import end_offsets, ensure_topic, partition_count
from ._kafka_writer import KafkaWriter
from ._records import Headers, RawRecord, VersionWatch
from ._settings import KafkaStoreSettings

__all__ = ["KafkaStore"]

_log = logging.getLogger("actionstate.client.kafka")
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")

_BATCH = 10_000
_CONSUME_WAIT_S = 0.1


class KafkaStore(ViewStore):
    """An ``ActionStateStore`` journaling to a compacted Kafka topic.

    ``KafkaStore(bootstrap_servers="127.0.0.1:9092", topic="orders-state")`` or
    ``KafkaStore(KafkaStoreSettings(...))``; keyword overrides win over the settings.
    Writes use an idempotent producer with ``acks=all`` and the partition Flink Agents
    computes for the agent key; ``put`` returns once the broker acknowledged the record.
    The view starts empty: call ``rebuild()`` to load the topic.
    """

    def __init__(self, settings: KafkaStoreSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = KafkaStoreSettings(**overrides)
        elif overrides:
            settings = KafkaStoreSettings.model_validate(
                {**settings.model_dump(exclude_unset=True), **overrides}
            )
        self.settings = settings
        super().__init__(
            topic=settings.topic, codec=settings.payload_codec, secret=settings.secret_bytes
        )
        admin_config = {**settings.kafka_config("admin"), "logger": _librdkafka_log}
        self._admin = AdminClient(admin_config)
        self._partitions = ensure_topic(self._admin, settings)
        producer_config = {
            **settings.kafka_config("producer"),
            "error_cb": self._on_error,
            "logger": _librdkafka_log,
        }
        self._writer = KafkaWriter(self.topic, producer_config, settings.timeout_s)
        self._consumer: Consumer | None = None

    # -- writing -----------------------------------------------------------------------

    def _on_error(self, err: KafkaError) -> None:
        # Connection trouble surfaces here; writes in flight are retried by librdkafka
        # until delivery.timeout.ms and then fail through their own delivery reports.
        _log.warning("kafka client error on topic %s: %s", self.topic, err.str())

    def _partition_count(self) -> int:
        return self._partitions

    def _write(self, partition: int, skey: str, value: bytes, headers: Headers) -> int:
        return self._writer.write(partition, skey, value, headers)

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: Headers) -> int:
        return await self._writer.awrite(partition, skey, value, headers)

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        records: list[tuple[str, bytes | None, Headers]] = [
            (skey, None, self._tombstone_headers(skey)) for skey in skeys
        ]
        results = self._writer.write_all(partition, records)
        acked = [skey for skey, error in results if error is None]
        errors = [error for _, error in results if error is not None]
        return acked, (errors[0] if errors else None)

    # -- reading ----------------------------------------------------------------------

    def recovery_marker(self) -> dict[int, int]:
        """The topic's end offset per partition, to pass to a later ``rebuild``."""
        self._check_open()
        self._refresh_partitions()
        partitions = list(range(self._partitions))
        return end_offsets(self._admin, self.topic, partitions, self.settings.timeout_s)

    def _refresh_partitions(self) -> None:
        count = partition_count(self._admin, self.topic, self.settings.timeout_s)
        if count is None:
            raise StoreReadError(f"topic {self.topic!r} no longer exists")
        self._partitions = count

    def _rebuild_consumer(self) -> Consumer:
        if self._consumer is None:
            consumer_config = {**self.settings.kafka_config("consumer"), "logger": _librdkafka_log}
            self._consumer = Consumer(consumer_config)
        return self._consumer

    def _ranges(self, starts: dict[int, int]) -> dict[int, tuple[int, int]]:
        ends = end_offsets(self._admin, self.topic, list(starts), self.settings.timeout_s)
        return {p: (start, ends[p]) for p, start in starts.items() if ends[p] > start}

    def _batches(
        self, ranges: dict[int, tuple[int, int]], scan: ScanResult
    ) -> Iterator[tuple[list[Message], dict[int | None, int]]]:
        """Consumed batches of the partitions in ``ranges``, with the end offset of each
        partition not finished yet; the caller removes a partition once it reached it."""
        if not ranges:
            return
        consumer = self._rebuild_consumer()
        consumer.assign([TopicPartition(self.topic, p, start) for p, (start, _) in ranges.items()])
        remaining: dict[int | None, int] = {p: end for p, (_, end) in ranges.items()}
        stalled_since = time.monotonic()
        try:
            while remaining:
                batch = consumer.consume(_BATCH, _CONSUME_WAIT_S)
                if batch:
                    stalled_since = time.monotonic()
                    scan.last_record_at = time.perf_counter()
                    yield batch, remaining
                elif time.monotonic() - stalled_since > self.settings.timeout_s:
                    raise StoreReadError(
                        f"rebuild of topic {self.topic!r} received nothing for "
                        f"{self.settings.timeout_s}s with partitions {list(remaining)} "
                        "unfinished; check the brokers"
                    )
        finally:
            consumer.unassign()

    def _read(
        self,
        ranges: dict[int, tuple[int, int]],
        scan: ScanResult,
        history: list[RawRecord] | None = None,
    ) -> None:
        """Read every record with start ≤ offset < end of ``ranges``: the latest per key
        into ``scan``, or all of them, in order, into ``history``.

        A partition is done at its record at ``end - 1`` or at an end-of-partition event:
        compaction and transaction markers leave offset gaps, so that record may not exist.
        """
        latest, keyless = scan.latest, scan.keyless
        watch = None if self._secret is None or history is not None else VersionWatch()
        count = 0
        # The hot loop of a rebuild: it runs once per record, so it stays inline.
        for batch, remaining in self._batches(ranges, scan):
            for msg in batch:
                err = msg.error()
                if err is not None:
                    self._consume_error(err, msg, remaining)
                    continue
                partition = msg.partition()
                end = remaining.get(partition)
                if end is None:
                    continue
                offset = msg.offset() or 0  # never None on a record without an error
                if offset >= end - 1:
                    del remaining[partition]
                    if offset >= end:
                        continue
                if history is not None:
                    history.append(msg)
                    continue
                key = msg.key()
                if key is None:
                    keyless.append(msg)
                else:
                    latest[key] = msg
                    if watch is not None:
                        watch.see(key, msg.headers())
                count += 1
        scan.records_read += count
        if watch is not None:
            scan.regressed = watch.regressed

    def _consume_error(
        self, err: KafkaError, msg: Message, remaining: dict[int | None, int]
    ) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            remaining.pop(msg.partition(), None)
        elif err.fatal() or err.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise StoreReadError(f"rebuild of topic {self.topic!r} failed: {err.str()}")
        else:
            _log.warning("rebuild of topic %s: %s (retrying)", self.topic, err.str())

    def _scan(self, starts: dict[int, int]) -> ScanResult:
        scan = ScanResult()
        self._read(self._ranges(starts), scan)
        return scan

    def _reread(self, starts: dict[int, int], partitions: Collection[int]) -> Iterator[RawRecord]:
        history: list[RawRecord] = []
        self._read(self._ranges({p: starts[p] for p in partitions}), ScanResult(), history)
        return iter(history)

    def _prepare_rebuild(self) -> None:
        self._refresh_partitions()

    # -- lifecycle --------------------------------------------------------------------

    def _release(self) -> None:
        self._writer.close()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
