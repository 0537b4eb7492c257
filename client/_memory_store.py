"""A store kept in process memory, with the same semantics as the Kafka store."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator

from actionstate.serde import DEFAULT_CODEC, HeaderList, LogRecord, RawRecord, VersionWatch

from ._base import ScanResult, ViewStore
from ._errors import StoreWriteError

__all__ = ["MemoryLog", "MemoryStore"]


class MemoryLog:
    """An append-only, partitioned, never-compacted log: a topic in memory.

    Several ``MemoryStore`` instances given the same log see each other's writes after a
    ``rebuild``, like stores sharing a Kafka topic.
    """

    def __init__(self, partitions: int = 4) -> None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        self._lock = threading.Lock()
        self._partitions: list[list[LogRecord]] = [[] for _ in range(partitions)]

    @property
    def partitions(self) -> int:
        """The number of partitions."""
        return len(self._partitions)

    def append(
        self, partition: int, key: bytes | None, value: bytes | None, headers: HeaderList | None
    ) -> int:
        """Append a record and return its offset."""
        with self._lock:
            records = self._partitions[partition]
            offset = len(records)
            records.append(LogRecord(key, value, headers, partition, offset))
            return offset

    def end_offsets(self) -> dict[int, int]:
        """The next offset of every partition."""
        with self._lock:
            return {p: len(records) for p, records in enumerate(self._partitions)}

    def read(self, partition: int, start: int, end: int) -> list[LogRecord]:
        """The records of ``partition`` with ``start`` ≤ offset < ``end``."""
        with self._lock:
            return self._partitions[partition][start:end]


class MemoryStore(ViewStore):
    """An ``ActionStateStore`` over a ``MemoryLog``: for tests and local experiments.

    ``MemoryStore(log=other.log)`` opens a second store on the same log.
    """

    def __init__(
        self,
        log: MemoryLog | None = None,
        *,
        partitions: int = 4,
        topic: str = "memory",
        codec: str = DEFAULT_CODEC,
        signing_secret: bytes | str | None = None,
    ) -> None:
        secret = signing_secret.encode() if isinstance(signing_secret, str) else signing_secret
        super().__init__(topic=topic, codec=codec, secret=secret)
        self.log = log if log is not None else MemoryLog(partitions)

    def _partition_count(self) -> int:
        return self.log.partitions

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        return self.log.append(partition, skey.encode(), value, headers)

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        return self._write(partition, skey, value, headers)

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        for skey in skeys:
            self.log.append(partition, skey.encode(), None, self._tombstone_headers(skey))
        return skeys, None

    def _scan(self, starts: dict[int, int]) -> ScanResult:
        ends = self.log.end_offsets()
        scan = ScanResult()
        watch = None if self._secret is None else VersionWatch()
        for partition, start in starts.items():
            records = self.log.read(partition, start, ends[partition])
            for record in records:
                key = record.key()
                if key is None:
                    scan.keyless.append(record)
                    continue
                scan.latest[key] = record
                if watch is not None:
                    watch.see(key, record.headers())
            scan.records_read += len(records)
        if watch is not None:
            scan.regressed = watch.regressed
        return scan

    def _reread(self, starts: dict[int, int], partitions: Collection[int]) -> Iterator[RawRecord]:
        ends = self.log.end_offsets()
        for partition in sorted(partitions):
            yield from self.log.read(partition, starts[partition], ends[partition])

    def recovery_marker(self) -> dict[int, int]:
        """The log's end offset per partition."""
        self._check_open()
        return self.log.end_offsets()
