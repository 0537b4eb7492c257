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


# Rows are loaded into the view in chunks, so the records they came from can go as the
# rows are made: the rebuild's peak holds a chunk of both, not every record and every row.
_CHUNK = 10_000


class _Finisher:
    def __init__(self, topic: str, secret: bytes | None, view: StateView) -> None:
        self.topic = topic
        self.secret = secret
        self.view = view
        self.result = RebuildResult()
        self.live: list[tuple[str, int, str, Entry]] = []
        self.deleted: list[tuple[str, str]] = []

    def flush(self) -> None:
        result = self.result
        result.states_live += len(self.live)
        result.tombstones += len(self.deleted)
        self.view.load(self.live, self.deleted)
        self.live = []
        self.deleted = []

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

    def add(self, record: RawRecord, checked: Checked, skey: str, agent_key: str, seq: int) -> None:
        value = record.value()
        if value is None:
            self.deleted.append((agent_key, skey))
        else:
            entry = Entry(
                value,
                checked.codec,
                _partition(record),
                _offset(record),
                checked.version,
                checked.completed is True,
            )
            self.live.append((agent_key, seq, skey, entry))
        if len(self.live) + len(self.deleted) >= _CHUNK:
            self.flush()


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
    write versions did not rise (``regressed``), load ``view``. ``latest`` is emptied:
    each record leaves it once its row is made."""
    finisher = _Finisher(topic, secret, view)
    for record in keyless:
        finisher.bad(record, BadReason.KEY, "record has no key")
    # key -> (state key, agent key, seq, partition, offset the walk stops before)
    repair: dict[bytes, tuple[str, str, int, int, int]] = {}
    # The loop of ``accept``/``add``, inline: it runs once per live state.
    live, deleted = finisher.live, finisher.deleted
    for raw in list(latest):  # in log order; each record is dropped as it is handled
        record = latest.pop(raw)
        parts = check_key(raw)
        if isinstance(parts, Checked):
            finisher.bad(record, BadReason.KEY, parts.detail)
            continue
        skey, agent_key, seq = parts
        if raw in regressed:
            repair[raw] = (skey, agent_key, seq, _partition(record), _offset(record) + 1)
            continue
        value = record.value()
        checked = check_record(skey, value, record.headers(), secret)
        if checked.reason is not None:
            finisher.bad(record, checked.reason, checked.detail)
            repair[raw] = (skey, agent_key, seq, _partition(record), _offset(record))
            continue
        if value is None:
            deleted.append((agent_key, skey))
        else:
            where, offset = _partition(record), _offset(record)
            done = checked.completed is True
            entry = Entry(value, checked.codec, where, offset, checked.version, done)
            live.append((agent_key, seq, skey, entry))
        if len(live) + len(deleted) >= _CHUNK:
            finisher.flush()
            live, deleted = finisher.live, finisher.deleted
    if repair:
        _repair(finisher, repair, reread)
    finisher.flush()
    result = finisher.result
    if result.bad_records > _MAX_LOGGED:
        _log.warning(
            "rebuild of topic %s skipped %d bad records (the first %d are logged above)",
            topic,
            result.bad_records,
            _MAX_LOGGED,
        )
    return result


def _repair(
    finisher: _Finisher,
    repair: dict[bytes, tuple[str, str, int, int, int]],
    reread: Reread,
) -> None:
    # The last good record (or tombstone) of each key, walking its records in log order;
    # with a secret a record must also carry a higher write version than the last accepted.
    chosen: dict[bytes, tuple[RawRecord, Checked]] = {}
    partitions = {where[3] for where in repair.values()}
    for record in reread(partitions):
        raw = record.key()
        if raw is None or raw not in repair:
            continue
        skey, _agent, _seq, _partition_of, until = repair[raw]
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
        skey, agent_key, seq, _partition_of, _until = repair[raw]
        finisher.add(record, checked, skey, agent_key, seq)
