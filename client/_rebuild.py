"""The backend-independent half of a rebuild: from "latest record per key" to the view.

A backend scans its partitions keeping only the latest record per key (the cheap part
that touches every record) and hands them here. Only those records are checked; when
the latest one of a key is bad, the backend re-reads that key's partitions so the
newest record that *is* good (or a tombstone) wins, as if the bad ones were never
written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable

from ._records import RawRecord, check_record, split_state_key
from ._store import BadRecord
from ._view import Entry, StateView

__all__ = ["RebuildResult", "finish_rebuild"]

_log = logging.getLogger("actionstate.client.rebuild")

MAX_SAMPLES = 100
_MAX_LOGGED = 20

Reread = Callable[[Collection[int]], Iterable[RawRecord]]


def _partition(record: RawRecord) -> int:
    partition = record.partition()
    return -1 if partition is None else partition


def _offset(record: RawRecord) -> int:
    offset = record.offset()
    return -1 if offset is None else offset


class RebuildResult:
    """Counts and samples a rebuild produced (folded into a ``RebuildReport``)."""

    __slots__ = ("bad_records", "bad_samples", "states_live", "tombstones")

    def __init__(self) -> None:
        self.states_live = 0
        self.tombstones = 0
        self.bad_records = 0
        self.bad_samples: list[BadRecord] = []


class _Finisher:
    def __init__(self, topic: str, secret: bytes | None) -> None:
        self.topic = topic
        self.secret = secret
        self.result = RebuildResult()
        self.live: list[tuple[str, int, str, Entry]] = []
        self.deleted: list[tuple[str, str]] = []

    def bad(self, record: RawRecord, reason: str, detail: str) -> None:
        result = self.result
        result.bad_records += 1
        sample = BadRecord(self.topic, _partition(record), _offset(record), reason, detail)
        if len(result.bad_samples) < MAX_SAMPLES:
            result.bad_samples.append(sample)
        if result.bad_records <= _MAX_LOGGED:
            _log.warning(
                "skipped a bad record: topic=%s partition=%d offset=%d reason=%s (%s)",
                sample.topic,
                sample.partition,
                sample.offset,
                reason,
                detail,
            )

    def parse_key(self, record: RawRecord) -> tuple[str, str, int] | None:
        raw = record.key()
        if raw is None:
            self.bad(record, "key", "record has no key")
            return None
        try:
            skey = raw.decode()
            agent_key, seq = split_state_key(skey)
        except (UnicodeDecodeError, ValueError) as exc:
            detail = "key is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            self.bad(record, "key", detail)
            return None
        return skey, agent_key, seq

    def accept(self, record: RawRecord, skey: str, agent_key: str, seq: int) -> bool:
        """Add ``record`` to the result if it is good; False (and counted) if bad."""
        value = record.value()
        if value is None:
            self.deleted.append((agent_key, skey))
            return True
        checked = check_record(skey, value, record.headers(), self.secret)
        if checked.reason is not None:
            self.bad(record, checked.reason, checked.detail)
            return False
        entry = Entry(value, checked.codec, _partition(record), _offset(record))
        self.live.append((agent_key, seq, skey, entry))
        return True


def finish_rebuild(
    latest: dict[bytes, RawRecord],
    keyless: list[RawRecord],
    *,
    topic: str,
    secret: bytes | None,
    view: StateView,
    reread: Reread,
) -> RebuildResult:
    """Check the latest record of every key, repair keys whose latest is bad, load ``view``."""
    finisher = _Finisher(topic, secret)
    for record in keyless:
        finisher.bad(record, "key", "record has no key")
    repair: dict[bytes, tuple[str, str, int, int]] = {}
    for raw, record in latest.items():
        parsed = finisher.parse_key(record)
        if parsed is None:
            continue
        skey, agent_key, seq = parsed
        if not finisher.accept(record, skey, agent_key, seq):
            repair[raw] = (skey, agent_key, seq, _offset(record))
    if repair:
        _repair(finisher, repair, latest, reread)
    result = finisher.result
    if result.bad_records > _MAX_LOGGED:
        _log.warning(
            "rebuild of topic %s skipped %d bad records (the first %d are logged above)",
            topic,
            result.bad_records,
            _MAX_LOGGED,
        )
    result.states_live = len(finisher.live)
    result.tombstones = len(finisher.deleted)
    view.load(finisher.live, finisher.deleted)
    return result


def _repair(
    finisher: _Finisher,
    repair: dict[bytes, tuple[str, str, int, int]],
    latest: dict[bytes, RawRecord],
    reread: Reread,
) -> None:
    # Newest good record (or tombstone) per key, among those older than the bad latest.
    chosen: dict[bytes, RawRecord] = {}
    partitions = {_partition(latest[raw]) for raw in repair}
    for record in reread(partitions):
        raw = record.key()
        if raw is None or raw not in repair:
            continue
        skey, _agent, _seq, bad_offset = repair[raw]
        if _offset(record) >= bad_offset:
            continue
        value = record.value()
        if value is None:
            chosen[raw] = record
            continue
        checked = check_record(skey, value, record.headers(), finisher.secret)
        if checked.reason is None:
            chosen[raw] = record
        else:
            finisher.bad(record, checked.reason, checked.detail)
    for raw, record in chosen.items():
        skey, agent_key, seq, _bad_offset = repair[raw]
        finisher.accept(record, skey, agent_key, seq)
