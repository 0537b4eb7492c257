"""Acknowledged writes, logged by the writer and checked against what the topic holds.

The writer side is :class:`AckedKafkaStore`: a ``KafkaStore`` whose write hooks append one
JSON line per acknowledged record to a log file, ``{"p": partition, "o": offset, "k":
state key, "d": sha256 of the value (null: a tombstone)}``. The line is written after the
broker acknowledged the record (for a fenced store: after its transaction committed) and
before ``put`` returns to user code, with one ``write(2)`` on an ``O_APPEND`` descriptor:
no user-space buffer, so a SIGKILL loses at most the line being written, and a write whose
line is missing or torn never returned to its caller. Each process writes its own file
(:func:`ack_log_for`), so a torn last line cannot corrupt another process's lines.

A record committed and not logged (the process died between the two) is on the topic
without being counted as acknowledged: that is what a caller sees too, and the checker
tolerates it (it only asks that every *logged* write is there).

The checker side is :func:`check_acked` (reads the topic back: committed records only) and
:func:`judge` (the rule, pure): an acknowledged write is kept when the record at its
offset is the same (key and digest), or, when that offset holds nothing (the log cleaner
removed it), when a later record of the same key is on the topic, or an acknowledged
tombstone of the key at or after it was written (the cleaner drops tombstones too after
``delete.retention.ms``). Anything else is lost: a different record at its offset (a
truncated and rewritten log), or an offset past the partition's last record (a truncated
log: the cleaner never touches the active segment, so it never removes the last record).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionstate.client import KafkaStore, KafkaStoreSettings, StoreWriteError
from actionstate.serde import HeaderList
from tests._support.kafka import read_raw

__all__ = [
    "Ack",
    "AckReport",
    "AckedKafkaStore",
    "Lost",
    "TopicRecord",
    "ack_log_for",
    "ack_logs",
    "check_acked",
    "digest",
    "judge",
    "read_acks",
    "topic_records",
]


def digest(value: bytes | None) -> str | None:
    """The sha256 of a record value, hex; None for a tombstone."""
    return None if value is None else hashlib.sha256(value).hexdigest()


def ack_log_for(folder: Path, pid: int | None = None) -> Path:
    """The ack log of process ``pid`` (this one by default) in ``folder``."""
    return folder / f"acked-{os.getpid() if pid is None else pid}.jsonl"


def ack_logs(folder: Path) -> list[Path]:
    """Every ack log in ``folder``."""
    return sorted(folder.glob("acked-*.jsonl"))


class AckedKafkaStore(KafkaStore):
    """A ``KafkaStore`` that logs every acknowledged write to ``ack_log`` before the write
    returns. Tombstones (``prune``) are written one at a time so each has its offset."""

    def __init__(
        self, settings: KafkaStoreSettings | None = None, *, ack_log: Path, **overrides: Any
    ) -> None:
        super().__init__(settings, **overrides)
        ack_log.parent.mkdir(parents=True, exist_ok=True)
        self.ack_log = ack_log
        self._ack_fd = os.open(ack_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _acked(self, partition: int, offset: int, skey: str, value: bytes | None) -> None:
        line = {"p": partition, "o": offset, "k": skey, "d": digest(value)}
        os.write(self._ack_fd, json.dumps(line, separators=(",", ":")).encode() + b"\n")

    def _write(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        offset = super()._write(partition, skey, value, headers)
        self._acked(partition, offset, skey, value)
        return offset

    async def _awrite(self, partition: int, skey: str, value: bytes, headers: HeaderList) -> int:
        offset = await super()._awrite(partition, skey, value, headers)
        self._acked(partition, offset, skey, value)
        return offset

    def _write_tombstones(
        self, partition: int, skeys: list[str]
    ) -> tuple[list[str], StoreWriteError | None]:
        acked: list[str] = []
        first: StoreWriteError | None = None
        for skey in skeys:
            self._check_owned(partition, skey)
            try:
                offset = self._writer.write(partition, skey, None, self._tombstone_headers(skey))
            except StoreWriteError as exc:
                first = first or exc
                continue
            self._acked(partition, offset, skey, None)
            acked.append(skey)
        return acked, first

    def _release(self) -> None:
        try:
            super()._release()
        finally:
            os.close(self._ack_fd)


# -- the checker -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledged write as logged."""

    partition: int
    offset: int
    key: str
    digest: str | None


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record read back from the topic."""

    partition: int
    offset: int
    key: str | None
    digest: str | None


@dataclass(frozen=True, slots=True)
class Lost:
    """An acknowledged write the topic does not keep, and what is there instead."""

    ack: Ack
    found: TopicRecord | None

    def __str__(self) -> str:
        a = self.ack
        there = "nothing" if self.found is None else f"{self.found.key!r} {self.found.digest}"
        return f"{a.key!r} at {a.partition}:{a.offset} ({a.digest}): the topic has {there}"


@dataclass(slots=True)
class AckReport:
    """What :func:`judge` found: ``checked`` acknowledged writes, of which ``present`` are
    at their offset, ``superseded`` were compacted under a later record of their key,
    ``deleted`` were compacted under a tombstone, and ``lost`` are gone."""

    checked: int = 0
    present: int = 0
    superseded: int = 0
    deleted: int = 0
    torn_lines: int = 0
    lost: list[Lost] = field(default_factory=list)
    # The last record of each key on the topic, and the last acknowledged write of each key
    # (a digest of None: a tombstone).
    topic_latest: dict[str, TopicRecord] = field(default_factory=dict)
    acked_latest: dict[str, Ack] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: the counts, and the first lost writes if any."""
        line = (
            f"acknowledged writes checked: {self.checked} (at their offset {self.present}, "
            f"compacted under a later record {self.superseded}, under a tombstone "
            f"{self.deleted}); lost: {len(self.lost)}"
        )
        if self.torn_lines:
            line += f"; torn last lines skipped: {self.torn_lines}"
        if self.lost:
            line += "\n" + "\n".join(f"  lost: {lost}" for lost in self.lost[:20])
        return line


def read_acks(paths: Iterable[Path]) -> tuple[list[Ack], int]:
    """The acknowledged writes the logs hold, and how many torn last lines were skipped
    (a process killed while writing a line: that write never returned to its caller)."""
    acks: list[Ack] = []
    torn = 0
    for path in paths:
        data = path.read_bytes()
        lines = data.split(b"\n")
        if lines[-1]:
            torn += 1
        for line in lines[:-1]:
            row = json.loads(line)
            acks.append(Ack(row["p"], row["o"], row["k"], row["d"]))
    return acks, torn


def topic_records(bootstrap: str, topic: str) -> list[TopicRecord]:
    """Every committed record of ``topic`` (read_committed: aborted transactions are not
    read), as the checker compares them."""
    out = []
    for msg in read_raw(bootstrap, topic, isolation="read_committed"):
        key = msg.key()
        out.append(
            TopicRecord(
                msg.partition() or 0,
                msg.offset() or 0,
                None if key is None else key.decode(errors="replace"),
                digest(msg.value()),
            )
        )
    return out


def judge(acks: Sequence[Ack], records: Collection[TopicRecord], torn: int = 0) -> AckReport:
    """Which of ``acks`` the topic (``records``) keeps, by the rule of this module."""
    at = {(r.partition, r.offset): r for r in records}
    last_on_topic: dict[tuple[int, str], int] = {}
    log_end: dict[int, int] = {}  # the last record offset read per partition
    report = AckReport(torn_lines=torn)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        log_end[r.partition] = r.offset
        if r.key is not None:
            last_on_topic[(r.partition, r.key)] = r.offset
            report.topic_latest[r.key] = r
    last_tombstone: dict[tuple[int, str], int] = {}
    for a in acks:
        if a.digest is None:
            where = (a.partition, a.key)
            last_tombstone[where] = max(a.offset, last_tombstone.get(where, -1))
        if a.key not in report.acked_latest or a.offset > report.acked_latest[a.key].offset:
            report.acked_latest[a.key] = a
    for a in acks:
        report.checked += 1
        found = at.get((a.partition, a.offset))
        if a.offset > log_end.get(a.partition, -1):
            # Past the last record: the cleaner never removes the log's end, so it was cut.
            report.lost.append(Lost(a, None))
        elif found is not None:
            if found.key == a.key and found.digest == a.digest:
                report.present += 1
            else:
                report.lost.append(Lost(a, found))
        elif last_on_topic.get((a.partition, a.key), -1) > a.offset:
            report.superseded += 1
        elif last_tombstone.get((a.partition, a.key), -1) >= a.offset:
            report.deleted += 1
        else:
            report.lost.append(Lost(a, None))
    return report


def check_acked(bootstrap: str, topic: str, log_paths: Iterable[Path]) -> AckReport:
    """Read ``topic`` back and judge every write the ack logs at ``log_paths`` hold."""
    acks, torn = read_acks(log_paths)
    return judge(acks, topic_records(bootstrap, topic), torn)
