"""The Kafka store: the journal in a compacted topic, a view of it in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from actionstate.client._base import ScanResult, ViewStore
from actionstate.client._errors import PartitionNotOwnedError, StoreReadError, StoreWriteError
from actionstate.client.kafka._admin import KafkaAdmin
from actionstate.client.kafka._reader import PartitionReader, ReadEnd
from actionstate.client.kafka._settings import KafkaStoreSettings
from actionstate.client.kafka._transactions import TransactionalWriter
from actionstate.client.kafka._writer import KafkaWriter
from actionstate.serde import HeaderList, LogRecord, RawRecord, VersionWatch
from actionstate.serde._records import codec_headers

__all__ = ["KafkaStore"]


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
        self._admin = KafkaAdmin(settings)
        self._partitions = self._admin.ensure_topic(settings)
        self._writer: KafkaWriter | TransactionalWriter = KafkaWriter(settings, self.topic)
        self._reader: PartitionReader | None = None
        self._owned: set[int] | None = None  # None: every partition is writable
        self._warming: threading.Thread | None = None

    # -- ownership (a worker fleet) ----------------------------------------------------

    @property
    def admin(self) -> KafkaAdmin:
        """The admin helper of this store's connection."""
        return self._admin

    @property
    def partition_count(self) -> int:
        """The state topic's partition count as last read."""
        return self._partitions

    @property
    def fenced(self) -> bool:
        """Whether writes go through transactions that fence earlier owners."""
        return isinstance(self._writer, TransactionalWriter)

    def own_partitions(
        self,
        *,
        transactional_id_prefix: str | None = None,
        on_fenced: Callable[[int], None] | None = None,
    ) -> None:
        """Write only to the partitions later ``claim``-ed: what a member of a worker fleet
        does. With ``transactional_id_prefix`` every write is a transaction that the broker
        refuses once a newer owner claimed the partition (``on_fenced`` is told);
        without it a write to an unclaimed partition is refused here, by this process only.
        """
        self._check_open()
        if self._owned is not None:
            raise StoreWriteError(f"the store for topic {self.topic!r} already owns partitions")
        self._owned = set()
        if transactional_id_prefix is not None:
            self._writer.close()
            self._writer = TransactionalWriter(
                self.settings, self.topic, id_prefix=transactional_id_prefix, on_fenced=on_fenced
            )

    def claim(self, partitions: Collection[int]) -> None:
        """Take ``partitions`` over: fence their earlier owners (transactions) and allow
        writes to them. Call before rebuilding them."""
        self._check_open()
        if self._owned is None:
            raise StoreWriteError("call own_partitions() before claim()")
        if isinstance(self._writer, TransactionalWriter):
            self._writer.claim(partitions)
        self._owned.update(partitions)

    def release(self, partitions: Collection[int]) -> int:
        """Give ``partitions`` up: later writes to them are refused and their states leave
        the view (the topic keeps them). Returns how many states left the view."""
        if self._owned is not None:
            self._owned.difference_update(partitions)
        if isinstance(self._writer, TransactionalWriter):
            self._writer.release(partitions)
        return self._view.forget_partitions(partitions)

    def _check_owned(self, partition: int, skey: str) -> None:
        owned = self._owned
        if owned is not None and partition not in owned:
            raise PartitionNotOwnedError(
                f"partition {partition} of topic {self.topic!r} is not owned by this worker; "
                f"the write of {skey!r} was not sent. The partition's owner runs its actions.",
                topic=self.topic,
                key=skey,
                cause="partition not owned",
            )

    # -- writing -----------------------------------------------------------------------

    def _partition_count(self) -> int:
        return self._partitions

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        self._check_owned(partition, skey)
        return self._writer.write(partition, skey, value, headers)

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        self._check_owned(partition, skey)
        return await self._writer.awrite(partition, skey, value, headers)

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        if skeys:
            self._check_owned(partition, skeys[0])
        records: list[tuple[str, bytes | None, HeaderList]] = [
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
        return self._admin.end_offsets(self.topic, list(range(self._partitions)))

    def _refresh_partitions(self) -> None:
        count = self._admin.partition_count(self.topic)
        if count is None:
            raise StoreReadError(f"topic {self.topic!r} no longer exists")
        self._partitions = count

    def _rebuild_reader(self) -> PartitionReader:
        if self._reader is None:
            self._reader = PartitionReader(self.settings, self.topic, purpose="rebuild")
        return self._reader

    def _ranges(self, starts: dict[int, int]) -> dict[int, tuple[int, int]]:
        ends = self._admin.end_offsets(self.topic, list(starts))
        return {p: (start, ends[p]) for p, start in starts.items() if ends[p] > start}

    def _batches(
        self, ranges: dict[int, tuple[int, int]], scan: ScanResult
    ) -> Iterator[tuple[list[Any], ReadEnd]]:
        """Consumed batches of the partitions in ``ranges``, with their :class:`ReadEnd`."""
        if not ranges:
            return
        reader = self._rebuild_reader()
        reader.assign({p: start for p, (start, _) in ranges.items()})
        end = ReadEnd({p: stop for p, (_, stop) in ranges.items()})
        try:
            for batch in reader.batches(end):
                scan.last_record_at = time.perf_counter()
                yield batch, end
        finally:
            reader.unassign()

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
        reader = self._rebuild_reader()
        for batch, read_end in self._batches(ranges, scan):
            remaining = read_end.remaining
            for msg in batch:
                err = msg.error()
                if err is not None:
                    reader.on_error(err, msg, read_end)
                    continue
                partition = msg.partition()
                end = remaining.get(partition)
                if end is None:
                    continue
                offset = msg.offset() or 0  # never None on a record without an error
                # ReadEnd.record's rule, inline: this loop runs once per record.
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
                elif watch is None:
                    # Only what the check reads, not the Message: a Message holds its
                    # headers and topic name, about twice the memory of its value.
                    latest[key] = LogRecord(
                        key, msg.value(), codec_headers(msg.headers()), partition or 0, offset
                    )
                else:
                    headers = msg.headers()
                    latest[key] = LogRecord(key, msg.value(), headers, partition or 0, offset)
                    watch.see(key, headers)
                count += 1
        scan.records_read += count
        if watch is not None:
            scan.regressed = watch.regressed

    def _scan(self, starts: dict[int, int]) -> ScanResult:
        scan = ScanResult()
        self._read(self._ranges(starts), scan)
        return scan

    def _reread(self, starts: dict[int, int], partitions: Collection[int]) -> Iterator[RawRecord]:
        history: list[RawRecord] = []
        self._read(self._ranges({p: starts[p] for p in partitions}), ScanResult(), history)
        return iter(history)

    def _prepare_rebuild(self) -> None:
        self._warm_writer()
        self._refresh_partitions()

    def _warm_writer(self) -> None:
        # The first write after a rebuild would otherwise pay for connecting and the
        # idempotent producer id (~0.5 s); a fenced writer is warm once it claimed.
        writer = self._writer
        if self._warming is not None or not isinstance(writer, KafkaWriter):
            return
        self._warming = threading.Thread(
            target=writer.warm, name=f"actionstate-warm-{self.topic}", daemon=True
        )
        self._warming.start()

    # -- lifecycle --------------------------------------------------------------------

    def _release(self) -> None:
        self._writer.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
