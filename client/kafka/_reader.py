"""The one partition reader: partitions of a topic read by assignment, bounded to end offsets
taken at start, or following on.

No consumer group commits, an end rule that survives compaction gaps, one set of fatal
errors, and a clear error when the broker, the topic or a partition is not there. Used by a
store's rebuild, the sidecar's follower and ``inspect``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as TP

from actionstate.client._errors import StoreReadError
from actionstate.client.kafka._errors import (
    ReadEvent,
    classify,
    kafka_store_error,
    new_client,
    read_error,
)
from actionstate.client.kafka._settings import KafkaConnection

__all__ = ["KafkaMessage", "PartitionRange", "PartitionReader", "ReadEnd", "parse_offsets"]

_log = logging.getLogger("actionstate.client.kafka")
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")

KafkaMessage = Message
"""A record or event as the reader's consumer hands it over (confluent-kafka's ``Message``)."""

_BATCH = 10_000
_CONSUME_WAIT_S = 0.1
_FOLLOW_BATCH = 500
_FOLLOW_WAIT_S = 0.5


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


class ReadEnd:
    """The partitions not yet read up to their end offset (exclusive), and the one rule that
    ends them: a record at ``end - 1`` or an end-of-partition event at ``end`` or later.
    Compaction and transaction markers leave offset gaps, so that record may not exist.

    ``remaining`` (partition → end) is public for a hot loop that applies the rule inline.
    """

    __slots__ = ("remaining",)

    def __init__(self, ends: Mapping[int, int]) -> None:
        self.remaining: dict[int | None, int] = dict(ends.items())

    @property
    def done(self) -> bool:
        """Whether every partition reached its end."""
        return not self.remaining

    def record(self, partition: int | None, offset: int) -> bool:
        """Note a record read; whether it lies before its partition's end."""
        end = self.remaining.get(partition)
        if end is None:
            return False
        if offset >= end - 1:
            del self.remaining[partition]
            return offset < end
        return True

    def eof(self, partition: int | None, offset: int | None) -> None:
        """Note an end-of-partition event at ``offset``."""
        end = self.remaining.get(partition)
        if end is not None and offset is not None and offset >= end:
            del self.remaining[partition]


class PartitionReader:
    """Reads partitions of ``topic`` by assignment, with the consumer settings of ``conn``
    (its group id names ``purpose``; offsets are never committed)."""

    def __init__(self, conn: KafkaConnection, topic: str, *, purpose: str) -> None:
        self.topic = topic
        self.purpose = purpose
        self.timeout = conn.timeout_s
        config = {**conn.kafka_config("consumer", purpose=purpose), "logger": _librdkafka_log}
        self._consumer = new_client(Consumer, config)
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the consumer (once)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    # -- metadata --------------------------------------------------------------------------

    def partitions(self) -> list[int] | None:
        """The topic's partitions, None when the topic does not exist."""
        try:
            md = self._consumer.list_topics(self.topic, timeout=self.timeout)
        except KafkaException as exc:
            raise kafka_store_error(
                exc, f"cannot list topic {self.topic!r}", "check the bootstrap servers"
            ) from exc
        tmd = md.topics.get(self.topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            return None
        return sorted(tmd.partitions)

    def watermarks(self, partition: int, *, cached: bool = False) -> tuple[int, int]:
        """The low and high watermark of a partition (``cached``: the last ones fetched,
        without asking the broker)."""
        try:
            if cached:
                low, high = self._consumer.get_watermark_offsets(
                    TP(self.topic, partition), cached=True
                )
            else:
                low, high = self._consumer.get_watermark_offsets(
                    TP(self.topic, partition), timeout=self.timeout
                )
        except KafkaException as exc:
            raise kafka_store_error(
                exc, f"cannot read the offsets of {self.topic}[{partition}]"
            ) from exc
        return low, high

    # -- reading ---------------------------------------------------------------------------

    def assign(self, starts: Mapping[int, int]) -> None:
        """Read the partitions in ``starts`` from their start offsets (0: the beginning)."""
        self._consumer.assign(
            [
                TP(self.topic, p, start if start > 0 else OFFSET_BEGINNING)
                for p, start in starts.items()
            ]
        )

    def unassign(self) -> None:
        """Stop reading every partition."""
        self._consumer.unassign()

    def poll(self, batch: int = _BATCH, wait: float = _CONSUME_WAIT_S) -> list[KafkaMessage]:
        """Up to ``batch`` messages (records and events), waiting up to ``wait`` seconds."""
        return self._consumer.consume(batch, wait)

    def on_error(self, err: KafkaError, msg: KafkaMessage, end: ReadEnd | None = None) -> ReadEvent:
        """Handle a consumer's error event: an end of partition is noted in ``end``, a
        fatal error raises ``StoreReadError``, a transient one is logged (librdkafka retries)."""
        kind = classify(err)
        if kind is ReadEvent.EOF:
            if end is not None:
                end.eof(msg.partition(), msg.offset())
        elif kind is ReadEvent.FATAL:
            raise read_error(f"the {self.purpose} read of topic {self.topic!r} failed", err)
        else:
            _log.warning("%s read of topic %s: %s (retrying)", self.purpose, self.topic, err.str())
        return kind

    def batches(self, end: ReadEnd) -> Iterator[list[KafkaMessage]]:
        """Consumed batches until every partition of ``end`` reached its end; the caller
        applies the end rule to each message. ``StoreReadError`` when nothing arrives for
        the timeout while partitions are unfinished."""
        stalled_since = time.monotonic()
        while not end.done:
            batch = self._consumer.consume(_BATCH, _CONSUME_WAIT_S)
            if batch:
                stalled_since = time.monotonic()
                yield batch
            elif time.monotonic() - stalled_since > self.timeout:
                unfinished = sorted(p for p in end.remaining if p is not None)
                raise StoreReadError(
                    f"the {self.purpose} read of topic {self.topic!r} received nothing for "
                    f"{self.timeout}s with partitions {unfinished} unfinished; check the brokers"
                )

    def ranges(
        self, partitions: list[int], start_offsets: Mapping[int, int] | None = None
    ) -> list[PartitionRange]:
        """Each partition's start (its low watermark, or the later offset given) and its
        high watermark now."""
        starts = start_offsets or {}
        out: list[PartitionRange] = []
        for p in partitions:
            low, high = self.watermarks(p)
            out.append(PartitionRange(p, max(low, starts.get(p, low)), high))
        return out

    def read(
        self, ranges: list[PartitionRange], *, follow: bool = False
    ) -> Iterator[KafkaMessage | None]:
        """Assign ``ranges`` and yield their records in offset order per partition.

        ``None`` is yielded once when every partition reached its starting high watermark
        (then the read ends unless ``follow``) and, when following, each time a poll comes
        back empty after new records, so a caller can flush what it has buffered.
        """
        self.assign({r.partition: r.start for r in ranges})
        highs = {r.partition: r.high for r in ranges}
        end = ReadEnd({r.partition: r.high for r in ranges if r.start < r.high})
        for batch in self.batches(end):
            for msg in batch:
                err = msg.error()
                if err is not None:
                    self.on_error(err, msg, end)
                    continue
                # A record always carries its partition and offset.
                p, offset = cast(int, msg.partition()), cast(int, msg.offset())
                end.record(p, offset)
                # records written after the read began are left for follow
                if follow or offset < highs[p]:
                    yield msg
        yield None
        if not follow:
            return
        fresh = False
        while True:
            msgs = self._consumer.consume(_FOLLOW_BATCH, _FOLLOW_WAIT_S)
            if not msgs and fresh:
                fresh = False
                yield None
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    self.on_error(err, msg)
                    continue
                fresh = True
                yield msg
