"""The sidecar's materialized view of the state topic: latest live record per state key.

Records are checked the way the stores check them on rebuild (key, headers, signature
when a secret is set, value; tombstones too) and decoded once, so listings can filter on
status. With a secret, a record must also carry a higher write version than the key's
current record, so an older signed record appended again is refused. A bad record is
counted and located, and leaves the key's previous good version in place, as if it had
never been written. Tombstones are remembered (key and offset) so a client
rebuilding through the sidecar learns about deletions too.

The sidecar's own writes are applied as soon as the broker acknowledges them, and the
follower applies every record it reads; offsets decide which version wins (a key always
lives in one partition, so its offsets are ordered).
"""

from __future__ import annotations

import bisect
import threading
from array import array
from dataclasses import dataclass

from actionstate.serde import (
    ActionState,
    BadReason,
    CallStatus,
    Checked,
    Headers,
    RecordMeta,
    check_key,
    check_record,
)
from actionstate.service.sidecar._metrics import SidecarMetrics

__all__ = [
    "BadSample",
    "LiveState",
    "MaterializedView",
    "Tombstone",
    "sort_key",
]

_MAX_BAD_KEPT = 10_000  # located bad records kept per partition; counting never stops


def sort_key(skey: str) -> tuple[str, int, str]:
    """Listing order: agent key, then seq as a number, then the UUIDs."""
    agent, seq, rest = skey.split("_", 2)
    return agent, int(seq), rest


@dataclass(frozen=True, slots=True)
class LiveState:
    """The latest live record of one state key."""

    key: str
    agent_key: str
    seq: int
    state: ActionState
    value: bytes  # the record as stored: wire-format JSON
    meta: RecordMeta
    partition: int
    offset: int

    @property
    def pending_calls(self) -> int:
        """How many call slots are PENDING."""
        return sum(1 for c in self.state.call_results if c.effective_status is CallStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted state key, where its tombstone sits, and the tombstone's metadata."""

    key: str
    agent_key: str
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


class MaterializedView:
    """State key → latest live record, with an index by agent key; thread-safe."""

    def __init__(self, *, secret: bytes | None = None, metrics: SidecarMetrics | None = None):
        self._secret = secret
        self._metrics = metrics
        self._lock = threading.Lock()
        self._entries: dict[str, LiveState] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self._by_agent: dict[str, set[str]] = {}
        self._read: dict[int, array[int]] = {}  # offsets read, per partition, ascending
        self._bad: dict[int, list[BadSample]] = {}
        self._sorted: list[str] | None = None  # every key in listing order, until a change
        self.records_read = 0
        self.tombstones_read = 0
        self.bad_records = 0
        self._pending = 0
        self._incomplete = 0

    # -- reading ---------------------------------------------------------------------------

    def get(self, skey: str) -> LiveState | None:
        """The live record of a state key, or None."""
        return self._entries.get(skey)

    def version(self, skey: str) -> int | None:
        """The write version of the key's current record (live or tombstone), if any."""
        current = self._entries.get(skey) or self._tombstones.get(skey)
        return None if current is None else current.meta.version

    def sorted_keys(self, agent_key: str | None) -> list[str]:
        """Live state keys in listing order, of one agent key or of all."""
        with self._lock:
            if agent_key is not None:
                return sorted(self._by_agent.get(agent_key, ()), key=sort_key)
            if self._sorted is None:
                self._sorted = sorted(self._entries, key=sort_key)
            return self._sorted

    def keys_up_to(self, agent_key: str, up_to_seq: int) -> list[str]:
        """Live state keys of ``agent_key`` with seq ≤ ``up_to_seq``."""
        with self._lock:
            keys = self._by_agent.get(agent_key, ())
            return [k for k in keys if self._entries[k].seq <= up_to_seq]

    def snapshot(
        self, starts: dict[int, int]
    ) -> tuple[list[LiveState], list[Tombstone], list[BadSample], int]:
        """Live entries, tombstones and bad records at or after ``starts`` (partition →
        offset), and how many records were read there."""
        with self._lock:
            entries = [
                e for e in self._entries.values() if e.offset >= starts.get(e.partition, 1 << 62)
            ]
            tombs = [
                t for t in self._tombstones.values() if t.offset >= starts.get(t.partition, 1 << 62)
            ]
            bad = [
                b for p, start in starts.items() for b in self._bad.get(p, ()) if b.offset >= start
            ]
            count = 0
            for p, start in starts.items():
                offsets = self._read.get(p)
                if offsets is not None:
                    count += len(offsets) - bisect.bisect_left(offsets, start)
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
        return self._pending

    @property
    def incomplete_count(self) -> int:
        """Live states whose action has not completed."""
        return self._incomplete

    @property
    def tombstone_count(self) -> int:
        """State keys whose latest record is a tombstone."""
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
        self.records_read += 1
        self._read.setdefault(partition, array("q")).append(offset)
        if self._metrics is not None:
            self._metrics.records_read.inc()
        parts = check_key(key)
        if isinstance(parts, Checked):
            self._count_bad(BadSample(partition, offset, _text(key), BadReason.KEY, parts.detail))
            return
        skey, agent_key, seq = parts
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
        record: LiveState | Tombstone
        if value is None or checked.state is None:
            record = Tombstone(skey, agent_key, partition, offset, meta)
        else:
            record = LiveState(skey, agent_key, seq, checked.state, value, meta, partition, offset)
        stale = self._apply_if_newer(record)
        if stale is not None:
            self._count_bad(BadSample(partition, offset, skey, BadReason.VERSION, stale))

    def _apply_if_newer(self, record: LiveState | Tombstone) -> str | None:
        """Apply a record read from the topic; with a secret, one whose write version is
        not above the key's current record's is refused: the reason, None when applied."""
        k = record.key
        with self._lock:
            if self._newer_known(k, record.partition, record.offset):
                return None  # applied already: the sidecar's own acknowledged write
            current = self._entries.get(k) or self._tombstones.get(k)
            if self._secret is not None and current is not None:
                before, version = current.meta.version or 0, record.meta.version or 0
                if version <= before:
                    return (
                        f"write version {version} is not above version {before} at offset "
                        f"{current.offset}: an older record of the key appended again"
                    )
            if isinstance(record, Tombstone):
                self._delete(record)
            else:
                self._write(record)
        return None

    def apply_write(self, entry: LiveState) -> None:
        """Make ``entry`` the key's state unless a newer record of the key is applied."""
        with self._lock:
            if not self._newer_known(entry.key, entry.partition, entry.offset):
                self._write(entry)

    def apply_delete(self, tomb: Tombstone) -> None:
        """Delete the key unless a newer record of it is applied."""
        with self._lock:
            if not self._newer_known(tomb.key, tomb.partition, tomb.offset):
                self._delete(tomb)

    def _write(self, entry: LiveState) -> None:
        k = entry.key
        self._tombstones.pop(k, None)
        old = self._entries.get(k)
        self._account(old, -1)
        if old is None:
            self._sorted = None
        self._entries[k] = entry
        self._by_agent.setdefault(entry.agent_key, set()).add(k)
        self._account(entry, +1)

    def _delete(self, tomb: Tombstone) -> None:
        k = tomb.key
        self._tombstones[k] = tomb
        old = self._entries.pop(k, None)
        if old is None:
            return
        self._sorted = None
        self._account(old, -1)
        agent = self._by_agent[old.agent_key]
        agent.discard(k)
        if not agent:
            del self._by_agent[old.agent_key]

    def _newer_known(self, k: str, partition: int, offset: int) -> bool:
        current = self._entries.get(k) or self._tombstones.get(k)
        return current is not None and current.partition == partition and current.offset >= offset

    def _count_bad(self, sample: BadSample) -> None:
        with self._lock:
            self.bad_records += 1
            kept = self._bad.setdefault(sample.partition, [])
            if len(kept) < _MAX_BAD_KEPT:
                kept.append(sample)
        if self._metrics is not None:
            self._metrics.bad_records.inc()

    def _account(self, entry: LiveState | None, sign: int) -> None:
        if entry is None:
            return
        if entry.pending_calls:
            self._pending += sign
        if not entry.state.completed:
            self._incomplete += sign


def _text(key: bytes | None) -> str | None:
    """A bad record's key as text, when it is UTF-8."""
    try:
        return None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        return None
