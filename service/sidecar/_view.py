"""The sidecar's materialized view of the state topic: latest live record per state key.

Records are checked the way the stores check them on rebuild (key, headers, signature
when a secret is set, value; tombstones too). A record is decoded once, to check it and
to note its status (completed, PENDING calls); the view then keeps only its bytes, its
metadata and where it sits, and decodes again on demand (:attr:`LiveState.state`). With a
secret, a record must also carry a higher write version than the key's current record,
so an older signed record appended again is refused. A bad record is counted and
located, and leaves the key's previous good version in place, as if it had never been
written.

Tombstones are remembered (key, offset, metadata) for ``tombstone_retention_s`` after
they were applied, and at least until the follower read past them, so a client
rebuilding through the sidecar from a recent marker learns about deletions too (Kafka's
own ``delete.retention.ms`` makes the same promise to readers of the topic). The offsets
read are kept as runs of consecutive offsets, enough to count the records read after a
marker.

The sidecar's own writes are applied as soon as the broker acknowledges them, and the
follower applies every record it reads; offsets decide which version wins (a key always
lives in one partition, so its offsets are ordered).
"""

from __future__ import annotations

import bisect
import heapq
import re
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice

from actionstate.serde import (
    ActionState,
    BadReason,
    CallStatus,
    Checked,
    Headers,
    RecordMeta,
    check_key,
    check_record,
    decode_action_state,
    split_state_key,
)
from actionstate.service.inspect import StatusFilter
from actionstate.service.sidecar._metrics import SidecarMetrics
from actionstate.service.sidecar._sorted_keys import (
    SortedKeys,
    agent_bounds,
    order_key,
    state_key_of,
)

__all__ = [
    "DEFAULT_TOMBSTONE_RETENTION_S",
    "BadSample",
    "LiveState",
    "MaterializedView",
    "Tombstone",
    "pending_calls",
]

DEFAULT_TOMBSTONE_RETENTION_S = 86_400.0  # Kafka's default delete.retention.ms
_MAX_BAD_KEPT = 10_000  # located bad records kept per partition; counting never stops
_MAX_SHARED_METAS = 10_000
_DIGEST_RE = re.compile("[0-9a-f]{64}")


def pending_calls(state: ActionState) -> int:
    """How many call slots of ``state`` are PENDING."""
    return sum(1 for c in state.call_results if c.effective_status is CallStatus.PENDING)


@dataclass(frozen=True, slots=True)
class LiveState:
    """The latest live record of one state key: its bytes, metadata, place and status."""

    key: str
    value: bytes  # the record as stored: wire-format JSON
    meta: RecordMeta
    partition: int
    offset: int
    completed: bool
    pending_calls: int

    @property
    def agent_key(self) -> str:
        """The agent key of :attr:`key`."""
        return split_state_key(self.key)[0]

    @property
    def seq(self) -> int:
        """The sequence number of :attr:`key`."""
        return split_state_key(self.key)[1]

    @property
    def state(self) -> ActionState:
        """The record decoded (each call decodes :attr:`value` again)."""
        return decode_action_state(self.value)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted state key, where its tombstone sits, and the tombstone's metadata."""

    key: str
    partition: int
    offset: int
    meta: RecordMeta


@dataclass(frozen=True, slots=True)
class BadSample:
    """A record that could not be used: where it sits and why (never its contents).

    ``reason`` is the record rule it broke, as the stores report it.
    """

    partition: int
    offset: int
    key: str | None
    reason: BadReason
    detail: str


@dataclass(slots=True)
class _Held:
    """What the view keeps of a live record (its key is the dict's key)."""

    value: bytes
    base: RecordMeta  # shared by the records of equal metadata
    partition: int
    offset: int
    completed: bool
    pending: int

    @property
    def meta(self) -> RecordMeta:
        return self.base


@dataclass(slots=True)
class _SignedHeld(_Held):
    """A signed record: its version and signature (the digest's 32 bytes) apart from the
    shared metadata."""

    version: int | None
    digest: bytes

    @property
    def meta(self) -> RecordMeta:
        return replace(self.base, version=self.version, signature=self.digest.hex())


@dataclass(slots=True)
class _Gone:
    """What the view keeps of a tombstone, and when it was applied (monotonic)."""

    partition: int
    offset: int
    meta: RecordMeta
    at: float


class _ReadOffsets:
    """The offsets read from one partition, ascending, as runs of consecutive offsets."""

    __slots__ = ("_before", "_starts", "count", "last")

    def __init__(self) -> None:
        self._starts = array("q")  # first offset of each run
        self._before = array("q")  # records read before each run
        self.last = -2
        self.count = 0

    def add(self, offset: int) -> None:
        if offset != self.last + 1:
            self._starts.append(offset)
            self._before.append(self.count)
        self.last = offset
        self.count += 1

    def at_or_after(self, start: int) -> int:
        """How many of the offsets read are ``start`` or above."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0:
            return self.count
        end = self._before[i + 1] if i + 1 < len(self._before) else self.count
        before = self._before[i] + min(start - self._starts[i], end - self._before[i])
        return self.count - before


class MaterializedView:
    """State key → latest live record, kept in listing order; thread-safe."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        metrics: SidecarMetrics | None = None,
        tombstone_retention_s: float = DEFAULT_TOMBSTONE_RETENTION_S,
    ):
        self._secret = secret
        self._metrics = metrics
        self._retention = tombstone_retention_s
        self._lock = threading.Lock()
        # Keyed by order_key(state key): one string per state serves the dict and the order.
        self._entries: dict[str, _Held] = {}
        self._completed = SortedKeys()
        self._incomplete = SortedKeys()
        self._pending_keys = SortedKeys()
        self._tombstones: OrderedDict[str, _Gone] = OrderedDict()  # oldest applied first
        self._read: dict[int, _ReadOffsets] = {}
        self._bad: dict[int, list[BadSample]] = {}
        self._metas: dict[RecordMeta, RecordMeta] = {}
        self.records_read = 0
        self.tombstones_read = 0
        self.bad_records = 0

    # -- reading ---------------------------------------------------------------------------

    def get(self, skey: str) -> LiveState | None:
        """The live record of a state key, or None."""
        held = self._entries.get(order_key(skey))
        return None if held is None else _live(skey, held)

    def version(self, skey: str) -> int | None:
        """The write version of the key's current record (live or tombstone), if any."""
        okey = order_key(skey)
        current = self._entries.get(okey) or self._tombstones.get(okey)
        return None if current is None else current.meta.version

    def page(
        self,
        *,
        agent_key: str | None = None,
        status: StatusFilter | None = None,
        after: str | None = None,
        limit: int,
    ) -> tuple[list[LiveState], bool]:
        """Up to ``limit`` live states in listing order (of ``agent_key``, passing
        ``status``, after the state key ``after``), and whether more follow.

        O(log n + limit): each status keeps its keys in order.
        """
        low, below = (None, None) if agent_key is None else agent_bounds(agent_key)
        start = None if after is None else order_key(after)
        inclusive = False
        if low is not None and (start is None or start < low):
            start, inclusive = low, True
        with self._lock:
            scans = [
                keys.scan(start, inclusive=inclusive, below=below)
                for keys in self._sets_for(status)
            ]
            okeys = list(islice(heapq.merge(*scans) if len(scans) > 1 else scans[0], limit + 1))
            held = [self._entries[k] for k in okeys]
        items = [_live(state_key_of(k), h) for k, h in zip(okeys[:limit], held, strict=False)]
        return items, len(okeys) > limit

    def _sets_for(self, status: StatusFilter | None) -> list[SortedKeys]:
        if status is StatusFilter.COMPLETED:
            return [self._completed]
        if status is StatusFilter.INCOMPLETE:
            return [self._incomplete]
        if status is StatusFilter.PENDING:
            return [self._pending_keys]
        return [self._completed, self._incomplete]

    def keys_up_to(self, agent_key: str, up_to_seq: int) -> list[str]:
        """Live state keys of ``agent_key`` with seq ≤ ``up_to_seq``, in order."""
        low, below = agent_bounds(agent_key, up_to_seq)
        with self._lock:
            okeys = heapq.merge(
                self._completed.scan(low, inclusive=True, below=below),
                self._incomplete.scan(low, inclusive=True, below=below),
            )
            return [state_key_of(k) for k in okeys]

    def snapshot(
        self, starts: dict[int, int]
    ) -> tuple[Iterator[LiveState], list[Tombstone], list[BadSample], int]:
        """Live entries (made as they are iterated), tombstones and bad records at or
        after ``starts`` (partition → offset), and how many records were read there."""
        never = 1 << 62
        with self._lock:
            # References only: the records themselves are not copied.
            picked = [
                (k, h)
                for k, h in self._entries.items()
                if h.offset >= starts.get(h.partition, never)
            ]
            tombs = [
                Tombstone(state_key_of(k), t.partition, t.offset, t.meta)
                for k, t in self._tombstones.items()
                if t.offset >= starts.get(t.partition, never)
            ]
            bad = [
                b for p, start in starts.items() for b in self._bad.get(p, ()) if b.offset >= start
            ]
            count = sum(
                self._read[p].at_or_after(start) for p, start in starts.items() if p in self._read
            )
        entries = (_live(state_key_of(k), h) for k, h in picked)
        return entries, tombs, bad, count

    def bad_samples(self, limit: int) -> list[BadSample]:
        """Up to ``limit`` located bad records, oldest first per partition."""
        with self._lock:
            return [b for p in sorted(self._bad) for b in self._bad[p]][:limit]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def pending_count(self) -> int:
        """Live states with a PENDING call."""
        return len(self._pending_keys)

    @property
    def incomplete_count(self) -> int:
        """Live states whose action has not completed."""
        return len(self._incomplete)

    @property
    def tombstone_count(self) -> int:
        """Deleted state keys whose tombstone the view still holds (see the module)."""
        return len(self._tombstones)

    # -- applying records ------------------------------------------------------------------

    def apply_record(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
    ) -> None:
        """Apply one record read from the topic (the follower calls this, in offset order
        per partition); bad records are counted, located and skipped."""
        with self._lock:
            self.records_read += 1
            read = self._read.get(partition)
            if read is None:
                read = self._read[partition] = _ReadOffsets()
            read.add(offset)
        if self._metrics is not None:
            self._metrics.records_read.inc()
        parts = check_key(key)
        if isinstance(parts, Checked):
            self._count_bad(BadSample(partition, offset, _text(key), BadReason.KEY, parts.detail))
            return
        skey = parts[0]
        if value is None:
            self.tombstones_read += 1
            if self._metrics is not None:
                self._metrics.tombstones_read.inc()
        # The stores' check, decoding once: the verdict carries the headers and the state.
        checked = check_record(skey, value, headers, self._secret, decode=True)
        if checked.reason is not None:
            self._count_bad(BadSample(partition, offset, skey, checked.reason, checked.detail))
            return
        meta = checked.meta or RecordMeta()
        okey = order_key(skey)
        record: _Held | _Gone
        if value is None or checked.state is None:
            record = _Gone(partition, offset, self._shared(meta), time.monotonic())
        else:
            st = checked.state
            record = self._hold(
                value,
                meta,
                partition=partition,
                offset=offset,
                completed=st.completed,
                pending=pending_calls(st),
            )
        stale = self._apply_if_newer(okey, record)
        if stale is not None:
            self._count_bad(BadSample(partition, offset, skey, BadReason.VERSION, stale))

    def _apply_if_newer(self, okey: str, record: _Held | _Gone) -> str | None:
        """Apply a record read from the topic; with a secret, one whose write version is
        not above the key's current record's is refused: the reason, None when applied."""
        with self._lock:
            if self._newer_known(okey, record.partition, record.offset):
                return None  # applied already: the sidecar's own acknowledged write
            current = self._entries.get(okey) or self._tombstones.get(okey)
            if self._secret is not None and current is not None:
                before, version = current.meta.version or 0, record.meta.version or 0
                if version <= before:
                    return (
                        f"write version {version} is not above version {before} at offset "
                        f"{current.offset}: an older record of the key appended again"
                    )
            if isinstance(record, _Gone):
                self._delete(okey, record)
            else:
                self._write(okey, record)
        return None

    def apply_write(self, entry: LiveState) -> None:
        """Make ``entry`` the key's state unless a newer record of the key is applied."""
        okey = order_key(entry.key)
        held = self._hold(
            # orjson's output (an unsigned PUT's re-encoded record) reserves ~4 KiB whatever
            # its length: keep an exact-size copy.
            bytes(memoryview(entry.value)),
            entry.meta,
            partition=entry.partition,
            offset=entry.offset,
            completed=entry.completed,
            pending=entry.pending_calls,
        )
        with self._lock:
            if not self._newer_known(okey, entry.partition, entry.offset):
                self._write(okey, held)

    def apply_delete(self, tomb: Tombstone) -> None:
        """Delete the key unless a newer record of it is applied."""
        okey = order_key(tomb.key)
        gone = _Gone(tomb.partition, tomb.offset, self._shared(tomb.meta), time.monotonic())
        with self._lock:
            if not self._newer_known(okey, tomb.partition, tomb.offset):
                self._delete(okey, gone)

    def _write(self, okey: str, held: _Held) -> None:
        self._tombstones.pop(okey, None)
        old = self._entries.get(okey)
        if old is not None:
            self._unindex(okey, old)
        self._entries[okey] = held
        (self._completed if held.completed else self._incomplete).add(okey)
        if held.pending:
            self._pending_keys.add(okey)
        self._expire_tombstones()

    def _delete(self, okey: str, gone: _Gone) -> None:
        self._tombstones.pop(okey, None)  # a newer tombstone: its retention starts again
        self._tombstones[okey] = gone
        old = self._entries.pop(okey, None)
        if old is not None:
            self._unindex(okey, old)
        self._expire_tombstones()

    def _unindex(self, okey: str, held: _Held) -> None:
        (self._completed if held.completed else self._incomplete).discard(okey)
        if held.pending:
            self._pending_keys.discard(okey)

    def _expire_tombstones(self) -> None:
        """Forget tombstones older than the retention that the follower read past (before
        that, an older record of the key read later must still lose to the tombstone)."""
        cutoff = time.monotonic() - self._retention
        tombs = self._tombstones
        while tombs:
            okey, oldest = next(iter(tombs.items()))
            read = self._read.get(oldest.partition)
            if oldest.at > cutoff or read is None or read.last < oldest.offset:
                return
            del tombs[okey]

    def _newer_known(self, okey: str, partition: int, offset: int) -> bool:
        current = self._entries.get(okey) or self._tombstones.get(okey)
        return current is not None and current.partition == partition and current.offset >= offset

    def _hold(
        self,
        value: bytes,
        meta: RecordMeta,
        *,
        partition: int,
        offset: int,
        completed: bool,
        pending: int,
    ) -> _Held:
        """The least the view needs to keep of a live record."""
        signature = meta.signature
        if signature is None:
            return _Held(value, self._shared(meta), partition, offset, completed, pending)
        if _DIGEST_RE.fullmatch(signature) is None:  # not one of ours: kept as it came
            return _Held(value, meta, partition, offset, completed, pending)
        base = self._shared(replace(meta, version=None, signature=None))
        digest = bytes.fromhex(signature)
        return _SignedHeld(value, base, partition, offset, completed, pending, meta.version, digest)

    def _shared(self, meta: RecordMeta) -> RecordMeta:
        """One object for equal metadata (the records of a writer mostly share it)."""
        shared = self._metas.get(meta)
        if shared is not None:
            return shared
        if meta.signature is None and len(self._metas) < _MAX_SHARED_METAS:
            self._metas[meta] = meta
        return meta

    def _count_bad(self, sample: BadSample) -> None:
        with self._lock:
            self.bad_records += 1
            kept = self._bad.setdefault(sample.partition, [])
            if len(kept) < _MAX_BAD_KEPT:
                kept.append(sample)
        if self._metrics is not None:
            self._metrics.bad_records.inc()


def _live(skey: str, held: _Held) -> LiveState:
    return LiveState(
        skey, held.value, held.meta, held.partition, held.offset, held.completed, held.pending
    )


def _text(key: bytes | None) -> str | None:
    """A bad record's key as text, when it is UTF-8."""
    try:
        return None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        return None
