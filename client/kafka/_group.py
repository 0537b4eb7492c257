"""Membership of a consumer group: the partitions the group assigns, their records from the
group's committed offsets, and offset commits. The group protocol decides who owns what;
nothing here stands in for it.

Every method is called from one thread (the worker's consumer thread); the rebalance
callbacks run inside :meth:`GroupConsumer.poll` and :meth:`GroupConsumer.close` on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from actionstate.client.kafka._errors import ReadEvent, classify, describe, new_client, read_error
from actionstate.client.kafka._settings import KafkaConnection

__all__ = ["GroupConsumer", "PartitionsCallback"]

_log = logging.getLogger("actionstate.client.kafka")
_librdkafka_log = logging.getLogger("actionstate.client.kafka.librdkafka")

PartitionsCallback = Callable[[list[int]], None]
"""Told the partition numbers a rebalance assigned, revoked or lost."""


class GroupConsumer:
    """A member of consumer group ``group`` reading ``topic``.

    ``on_assign``/``on_revoke`` get the partitions a rebalance adds and takes away
    (incrementally, with the cooperative-sticky assignor the connection configures);
    ``on_lost`` gets those taken away without a revocation (the session expired), which
    may already belong to another member. Offsets are committed only by :meth:`commit`.
    """

    def __init__(
        self,
        conn: KafkaConnection,
        topic: str,
        group: str,
        *,
        on_assign: PartitionsCallback,
        on_revoke: PartitionsCallback,
        on_lost: PartitionsCallback,
    ) -> None:
        self.topic = topic
        self.group = group
        config: dict[str, Any] = {
            **conn.kafka_config("consumer", group=group),
            "logger": _librdkafka_log,
            "error_cb": self._on_error,
        }
        self._consumer = new_client(Consumer, config)
        self._callbacks = (on_assign, on_revoke, on_lost)
        self._closed = False

    def _on_error(self, err: KafkaError) -> None:
        _log.warning("consumer group %s on topic %s: %s", self.group, self.topic, err.str())

    def subscribe(self) -> None:
        """Join the group; assignments arrive through the callbacks during :meth:`poll`."""
        on_assign, on_revoke, on_lost = self._callbacks

        def numbers(partitions: list[TopicPartition]) -> list[int]:
            return sorted(tp.partition for tp in partitions if tp.topic == self.topic)

        self._consumer.subscribe(
            [self.topic],
            on_assign=lambda _c, tps: on_assign(numbers(tps)),
            on_revoke=lambda _c, tps: on_revoke(numbers(tps)),
            on_lost=lambda _c, tps: on_lost(numbers(tps)),
        )

    def poll(self, batch: int, wait: float) -> list[Message]:
        """Up to ``batch`` records, waiting up to ``wait`` seconds; rebalance callbacks run
        in here. A fatal consumer error raises ``StoreReadError``; transient ones are logged
        (librdkafka retries them)."""
        records: list[Message] = []
        for msg in self._consumer.consume(batch, wait):
            err = msg.error()
            if err is None:
                records.append(msg)
            elif classify(err) is ReadEvent.FATAL:
                raise read_error(f"the consumer group {self.group!r} on {self.topic!r}", err)
            elif err.code() != KafkaError._PARTITION_EOF:
                _log.warning("consumer group %s: %s (retrying)", self.group, err.str())
        return records

    def assignment(self) -> list[int]:
        """The partitions assigned to this member now."""
        return sorted(tp.partition for tp in self._consumer.assignment())

    def pause(self, partitions: Collection[int]) -> None:
        """Stop fetching ``partitions`` (the assignment is kept)."""
        if partitions:
            self._consumer.pause(self._tps(partitions))

    def resume(self, partitions: Collection[int]) -> None:
        """Fetch ``partitions`` again."""
        if partitions:
            self._consumer.resume(self._tps(partitions))

    def commit(self, offsets: Mapping[int, int]) -> bool:
        """Commit ``offsets`` (partition → next offset to read) for the group and wait for
        the answer; False (logged) when the broker refused them, e.g. because this member
        is no longer in the group's current generation."""
        if not offsets:
            return True
        tps = [TopicPartition(self.topic, p, o) for p, o in offsets.items()]
        try:
            answered = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            _log.warning(
                "consumer group %s: committing offsets of %s failed: %s",
                self.group,
                sorted(offsets),
                describe(exc),
            )
            return False
        failed = [tp for tp in answered or [] if tp.error is not None]
        for tp in failed:
            _log.warning(
                "consumer group %s: committing %s[%d] failed: %s",
                self.group,
                self.topic,
                tp.partition,
                tp.error,
            )
        return not failed

    def lag(self) -> dict[int, int]:
        """Records not yet read per assigned partition, from the last fetched high
        watermarks (no request to the broker)."""
        out: dict[int, int] = {}
        assigned = self._consumer.assignment()
        if not assigned:
            return out
        for tp in self._consumer.position(assigned):
            try:
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0 and tp.offset >= 0:
                out[tp.partition] = max(0, high - tp.offset)
        return out

    def close(self) -> None:
        """Leave the group (the last revocation runs its callback here); once."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def _tps(self, partitions: Collection[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in partitions]
