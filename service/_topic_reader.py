"""Read partitions of a topic directly, up to the high watermark taken at start or on.

Used by ``inspect``: no consumer group commits, a read that never stops on one record,
and a clear error when the broker, the topic or a partition is not there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from actionstate.client import StoreReadError

__all__ = ["Headers", "PartitionRange", "RawRecord", "TopicReader", "parse_offsets"]

Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


@dataclass(frozen=True)
class RawRecord:
    """One record as read from the topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None


@dataclass(frozen=True)
class PartitionRange:
    """Where reading a partition starts, and the high watermark taken when reading began."""

    partition: int
    start: int
    high: int


def parse_offsets(text: str) -> dict[int, int]:
    """Parse ``"0:120,3:7"`` into ``{0: 120, 3: 7}``; ValueError naming the bad item."""
    offsets: dict[int, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        part, sep, off = item.partition(":")
        try:
            if not sep:
                raise ValueError(item)
            p, o = int(part), int(off)
        except ValueError:
            raise ValueError(
                f"bad offset {item[:40]!r}: write PARTITION:OFFSET, e.g. 0:120,3:7"
            ) from None
        if p < 0 or o < 0:
            raise ValueError(f"bad offset {item[:40]!r}: partitions and offsets are >= 0")
        offsets[p] = o
    if not offsets:
        raise ValueError("no offsets given: write PARTITION:OFFSET, e.g. 0:120,3:7")
    return offsets


class TopicReader:
    """Reads partitions of one topic from given offsets, up to the high watermark taken at
    start (or on, with ``follow``), without a consumer group commit.

    ``config`` is the confluent-kafka client config (bootstrap servers and any security
    settings); the reader adds its own consumer settings.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        partitions: Collection[int] | None = None,
        start_offsets: Mapping[int, int] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.topic = topic
        self._partitions = None if partitions is None else set(partitions)
        self._start_offsets = dict(start_offsets or {})
        self._timeout = timeout
        conf: dict[str, Any] = dict(config)
        conf.update(
            {
                "group.id": f"actionstate-inspect-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
            }
        )
        self._consumer = Consumer(conf)
        self.ranges: list[PartitionRange] = []

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def open(self) -> list[PartitionRange]:
        """Find the partitions and their watermarks, and assign them; StoreReadError if the
        broker cannot be reached, the topic is missing or a partition asked for is not there."""
        try:
            md = self._consumer.list_topics(self.topic, timeout=self._timeout)
        except KafkaException as exc:
            raise StoreReadError(
                f"cannot list topic {self.topic!r}: {exc}; check --bootstrap-servers"
            ) from exc
        tmd = md.topics.get(self.topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            raise StoreReadError(
                f"topic {self.topic!r} does not exist on the broker; check --topic"
            )
        available = sorted(tmd.partitions)
        if self._partitions is not None:
            missing = self._partitions - set(available)
            if missing:
                raise StoreReadError(
                    f"topic {self.topic!r} has partitions {available}, "
                    f"not {sorted(missing)}; check --partition"
                )
            available = [p for p in available if p in self._partitions]
        ranges: list[PartitionRange] = []
        for p in available:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=self._timeout
                )
            except KafkaException as exc:
                raise StoreReadError(
                    f"cannot read the offsets of {self.topic}[{p}]: {exc}"
                ) from exc
            ranges.append(PartitionRange(p, max(low, self._start_offsets.get(p, low)), high))
        self._consumer.assign(
            [
                TopicPartition(
                    self.topic, r.partition, r.start if r.start > 0 else OFFSET_BEGINNING
                )
                for r in ranges
            ]
        )
        self.ranges = ranges
        return ranges

    def read(self, *, follow: bool = False) -> Iterator[RawRecord | None]:
        """Yield the records in offset order per partition.

        ``None`` is yielded once when every partition reached its starting high watermark
        (then the read ends unless ``follow``) and, when following, each time a poll comes
        back empty after new records, so a caller can flush what it has buffered.
        """
        if not self.ranges:
            self.open()
        highs = {r.partition: r.high for r in self.ranges}
        pending = {r.partition: r.high for r in self.ranges if r.start < r.high}
        caught_up = False
        last_progress = time.monotonic()
        fresh = False
        while True:
            if not pending and not caught_up:
                caught_up = True
                yield None
                if not follow:
                    return
            msgs = self._consumer.consume(num_messages=500, timeout=0.5)
            if not msgs:
                if caught_up and fresh:
                    fresh = False
                    yield None
                if not caught_up and time.monotonic() - last_progress > self._timeout:
                    raise StoreReadError(
                        f"no progress reading {self.topic!r} for {self._timeout:.0f}s "
                        f"(partitions {sorted(pending)} not at their high watermark)"
                    )
                continue
            for msg in msgs:
                record = self._record(msg, pending)
                # records written after the read began are left for --follow
                if record is None or (not follow and record.offset >= highs[record.partition]):
                    continue
                last_progress = time.monotonic()
                fresh = caught_up
                yield record

    def _record(self, msg: Message, pending: dict[int, int]) -> RawRecord | None:
        """The record of a message, or None for an event; ends partitions in ``pending``."""
        err = msg.error()
        # A message always carries its partition and offset (events too, EOF included).
        p, offset = cast(int, msg.partition()), cast(int, msg.offset())
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                if p in pending and offset >= pending[p]:
                    del pending[p]
                return None
            if err.fatal() or err.code() in (
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError._UNKNOWN_PARTITION,
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
            ):
                raise StoreReadError(f"reading {self.topic!r} failed: {err.str()}")
            return None  # transient: librdkafka retries by itself
        high = pending.get(p)
        if high is not None and offset >= high - 1:
            del pending[p]
        ts_type, ts = msg.timestamp()
        return RawRecord(
            partition=p,
            offset=offset,
            key=msg.key(),
            value=msg.value(),
            headers=msg.headers(),
            timestamp_ms=ts if ts_type else None,
        )
