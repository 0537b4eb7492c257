"""Read a state topic directly and describe each record: the engine behind ``inspect``.

Nothing here unpickles a payload unless the caller asks for it, and a record that cannot be
decoded becomes a ``bad`` record view instead of an exception, so one corrupt record never
stops a read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from actionstate.client import StoreReadError
from actionstate.serde import (
    ActionState,
    CallResult,
    CallStatus,
    RecordMeta,
    SerdeError,
    decode_action_state,
    get_codec,
    parse_state_key,
    verify_record,
)

Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None

__all__ = [
    "CallView",
    "PartitionRange",
    "PayloadView",
    "RawRecord",
    "RecordView",
    "StatusFilter",
    "Summary",
    "TopicReader",
    "describe_record",
    "parse_offsets",
]

_PICKLE_CODEC = "cloudpickle"
_JSON_CODEC = "json"


class StatusFilter(StrEnum):
    """Which states a listing keeps."""

    PENDING = "pending"  # at least one call slot is PENDING
    INCOMPLETE = "incomplete"  # the action has not completed
    COMPLETED = "completed"


@dataclass(frozen=True)
class PayloadView:
    """A call's payload as inspect shows it: decoded when that is safe, described otherwise."""

    size: int
    codec: str | None
    decoded: bool = False
    value: Any = None  # the decoded JSON value, or a repr() of an unpickled object
    unpickled: bool = False  # value is the repr() of an unpickled object
    note: str = ""  # why the payload was not decoded, or how it was guessed


@dataclass(frozen=True)
class CallView:
    """One call result of a state record."""

    index: int
    function_id: str
    args_digest: str
    status: CallStatus  # effective status (legacy records infer it)
    legacy: bool  # the record carried no status field
    kind: Literal["result", "exception"] | None
    payload: PayloadView | None


@dataclass(frozen=True)
class RecordView:
    """One record of the topic: a state, a tombstone, or a record that could not be decoded."""

    kind: Literal["state", "tombstone", "bad"]
    partition: int
    offset: int
    timestamp_ms: int | None
    key: str | None
    agent_key: str | None
    seq: int | None
    size: int  # value bytes
    meta: RecordMeta | None = None
    state: ActionState | None = None
    calls: tuple[CallView, ...] = ()
    verified: bool | None = None  # None: no signing secret configured
    error: str = ""

    @property
    def pending_calls(self) -> int:
        """How many call slots of this state are PENDING."""
        return sum(1 for c in self.calls if c.status is CallStatus.PENDING)

    def matches_status(self, status: StatusFilter | None) -> bool:
        """Whether this record passes a ``--status`` filter (bad records always pass)."""
        if status is None or self.kind == "bad":
            return True
        if self.state is None:
            return False
        if status is StatusFilter.COMPLETED:
            return self.state.completed
        if status is StatusFilter.INCOMPLETE:
            return not self.state.completed
        return self.pending_calls > 0


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
                f"bad offset {item!r}: write PARTITION:OFFSET, e.g. 0:120,3:7"
            ) from None
        if p < 0 or o < 0:
            raise ValueError(f"bad offset {item!r}: partitions and offsets are >= 0")
        offsets[p] = o
    if not offsets:
        raise ValueError("no offsets given: write PARTITION:OFFSET, e.g. 0:120,3:7")
    return offsets


def _describe_payload(
    data: bytes,
    codec: str | None,
    *,
    unpickle: bool,
    trusted: bool | None,
) -> PayloadView:
    name = codec
    note = ""
    if name is None:
        # Java writes Jackson JSON and no header; Python writers always name their codec.
        if data[:1] == b"\x80":
            name, note = _PICKLE_CODEC, "no codec header; looks like a pickle"
        else:
            name, note = _JSON_CODEC, "no codec header; read as JSON"
    if name == _PICKLE_CODEC:
        if not unpickle:
            return PayloadView(len(data), codec, note=note or "not unpickled (--unpickle)")
        if trusted is False:
            return PayloadView(len(data), codec, note="not unpickled: signature missing or invalid")
    try:
        value = get_codec(name).decode(data)
    except SerdeError as exc:
        return PayloadView(len(data), codec, note=f"undecodable: {exc}")
    except Exception as exc:  # an unpickled object may raise anything while loading
        return PayloadView(len(data), codec, note=f"undecodable: {type(exc).__name__}: {exc}")
    if name != _JSON_CODEC:
        return PayloadView(
            len(data), codec, decoded=True, value=repr(value), unpickled=True, note=note
        )
    return PayloadView(len(data), codec, decoded=True, value=value, note=note)


def _describe_call(
    index: int, call: CallResult, codec: str | None, *, unpickle: bool, trusted: bool | None
) -> CallView:
    kind: Literal["result", "exception"] | None = None
    data: bytes | None = None
    if call.exception_payload is not None:
        kind, data = "exception", call.exception_payload
    elif call.result_payload is not None:
        kind, data = "result", call.result_payload
    payload = (
        None if data is None else _describe_payload(data, codec, unpickle=unpickle, trusted=trusted)
    )
    return CallView(
        index=index,
        function_id=call.function_id,
        args_digest=call.args_digest,
        status=call.effective_status,
        legacy=call.status is None,
        kind=kind,
        payload=payload,
    )


def describe_record(
    raw: RawRecord, *, unpickle: bool = False, secret: bytes | None = None
) -> RecordView:
    """Describe one raw Kafka record; never raises for bad content.

    With ``secret`` the record's signature is checked, and an unverified cloudpickle payload
    is never unpickled even when ``unpickle`` is set.
    """
    key, value, headers = raw.key, raw.value, raw.headers
    size = 0 if value is None else len(value)
    base: dict[str, Any] = {
        "partition": raw.partition,
        "offset": raw.offset,
        "timestamp_ms": raw.timestamp_ms,
        "size": size,
    }
    if key is None:
        return RecordView(
            kind="bad", key=None, agent_key=None, seq=None, error="record has no key", **base
        )
    try:
        text_key = key.decode("utf-8")
    except UnicodeDecodeError:
        return RecordView(
            kind="bad",
            key=key.decode("utf-8", "replace"),
            agent_key=None,
            seq=None,
            error="record key is not UTF-8",
            **base,
        )
    agent_key: str | None = text_key.split("_", 1)[0]
    seq: int | None = None
    try:
        parsed = parse_state_key(text_key)
        agent_key, seq = parsed.agent_key, parsed.seq
        if value is None:
            return RecordView(kind="tombstone", key=text_key, agent_key=agent_key, seq=seq, **base)
        meta = RecordMeta.from_headers(headers or [])
        state = decode_action_state(value)
    except (SerdeError, ValueError) as exc:
        return RecordView(
            kind="bad", key=text_key, agent_key=agent_key, seq=seq, error=str(exc), **base
        )
    trusted = None if secret is None else verify_record(text_key, value, meta.signature, secret)
    calls = tuple(
        _describe_call(i, c, meta.codec, unpickle=unpickle, trusted=trusted)
        for i, c in enumerate(state.call_results)
    )
    return RecordView(
        kind="state",
        key=text_key,
        agent_key=agent_key,
        seq=seq,
        meta=meta,
        state=state,
        calls=calls,
        verified=trusted,
        **base,
    )


@dataclass
class _Counts:
    records: int = 0
    live_keys: int = 0
    tombstones: int = 0
    bad_records: int = 0
    actions_incomplete: int = 0
    calls_pending: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Summary:
    """Counts over the records read; live-key counts follow the latest record of each key.

    ``status`` narrows the live-key counts (live keys, actions incomplete, calls pending) to
    keys whose latest state passes the filter; the raw record counts are never narrowed.
    """

    status: StatusFilter | None = None
    _raw: dict[int, _Counts] = field(default_factory=dict)
    # latest view per key: (partition, incomplete, pending calls); None for a tombstone
    _latest: dict[str, tuple[int, bool, int] | None] = field(default_factory=dict)

    def add(self, view: RecordView) -> None:
        """Count one record."""
        counts = self._raw.setdefault(view.partition, _Counts())
        counts.records += 1
        counts.bytes += view.size
        if view.kind == "bad":
            counts.bad_records += 1
            return
        assert view.key is not None
        if view.kind == "tombstone":
            counts.tombstones += 1
            self._latest[view.key] = None
        elif view.state is not None:
            if view.matches_status(self.status):
                self._latest[view.key] = (
                    view.partition,
                    not view.state.completed,
                    view.pending_calls,
                )
            else:
                self._latest[view.key] = None

    def partitions(self) -> dict[int, dict[str, int]]:
        """The counts of each partition seen, by partition number."""
        per: dict[int, _Counts] = {p: _Counts(**c.as_dict()) for p, c in self._raw.items()}
        for latest in self._latest.values():
            if latest is None:
                continue
            partition, incomplete, pending = latest
            c = per.setdefault(partition, _Counts())
            c.live_keys += 1
            c.actions_incomplete += int(incomplete)
            c.calls_pending += pending
        return {p: per[p].as_dict() for p in sorted(per)}

    def totals(self) -> dict[str, int]:
        """The counts over every partition."""
        total = _Counts()
        for counts in self.partitions().values():
            for name, n in counts.items():
                setattr(total, name, getattr(total, name) + n)
        return total.as_dict()


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
