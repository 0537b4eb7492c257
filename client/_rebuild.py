"""The backend-independent half of a rebuild: from "latest record per key" to the view.

A backend scans its partitions keeping only the latest record per key (the cheap part
that touches every record) and hands them here. Only those records are checked; when
the latest one of a key is bad, or (with a signing secret) the key's write versions did
not rise through the log, the backend re-reads that key's partitions and its records are
walked in order: each good record whose version is above the last one accepted wins, so
the result is as if the bad and the replayed records were never written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable

from actionstate.serde import BadReason, Checked, RawRecord, check_key, check_record

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

    def bad(self, record: RawRecord, reason: BadReason, detail: str) -> None:
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
        parts = check_key(record.key())
        if isinstance(parts, Checked):
            self.bad(record, BadReason.KEY, parts.detail)
            return None
        return parts

    def accept(self, record: RawRecord, skey: str, agent_key: str, seq: int) -> bool:
        """Add ``record`` to the result if it is good; False (and counted) if bad."""
        checked = check_record(skey, record.value(), record.headers(), self.secret)
        if checked.reason is not None:
            self.bad(record, checked.reason, checked.detail)
            return False
        self.add(record, checked, skey, agent_key, seq)
        return True

    def add(self, record: RawRecord, checked: Checked, skey: str, agent_key: str, seq: int) -> None:
        value = record.value()
        if value is None:
            self.deleted.append((agent_key, skey))
            return
        entry = Entry(value, checked.codec, _partition(record), _offset(record), checked.version)
        self.live.append((agent_key, seq, skey, entry))


def finish_rebuild(
    latest: dict[bytes, RawRecord],
    keyless: list[RawRecord],
    *,
    topic: str,
    secret: bytes | None,
    view: StateView,
    reread: Reread,
    regressed: Collection[bytes] = (),
) -> RebuildResult:
    """Check the latest record of every key, repair keys whose latest is bad or whose
    write versions did not rise (``regressed``), load ``view``."""
    finisher = _Finisher(topic, secret)
    for record in keyless:
        finisher.bad(record, BadReason.KEY, "record has no key")
    # key -> (state key, agent key, seq, offset the walk stops before)
    repair: dict[bytes, tuple[str, str, int, int]] = {}
    for raw, record in latest.items():
        parsed = finisher.parse_key(record)
        if parsed is None:
            continue
        skey, agent_key, seq = parsed
        if raw in regressed:
            repair[raw] = (skey, agent_key, seq, _offset(record) + 1)
        elif not finisher.accept(record, skey, agent_key, seq):
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
    # The last good record (or tombstone) of each key, walking its records in log order;
    # with a secret a record must also carry a higher write version than the last accepted.
    chosen: dict[bytes, tuple[RawRecord, Checked]] = {}
    partitions = {_partition(latest[raw]) for raw in repair}
    for record in reread(partitions):
        raw = record.key()
        if raw is None or raw not in repair:
            continue
        skey, _agent, _seq, until = repair[raw]
        if _offset(record) >= until:
            continue
        checked = check_record(skey, record.value(), record.headers(), finisher.secret)
        if checked.reason is not None:
            finisher.bad(record, checked.reason, checked.detail)
            continue
        last = chosen.get(raw)
        if finisher.secret is not None and last is not None:
            before = last[1].version or 0
            if (checked.version or 0) <= before:
                detail = (
                    f"write version {checked.version} is not above version {before} at offset "
                    f"{_offset(last[0])}: an older record of the key appended again"
                )
                finisher.bad(record, BadReason.VERSION, detail)
                continue
        chosen[raw] = (record, checked)
    for raw, (record, checked) in chosen.items():
        skey, agent_key, seq, _until = repair[raw]
        finisher.add(record, checked, skey, agent_key, seq)
