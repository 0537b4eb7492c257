"""The thread that keeps the sidecar's view current with the topic.

It reads every partition from the beginning; once each reached the high watermark taken
at start, the sidecar is *ready*. It keeps reading new records after that, and anyone can
wait until it has read up to given offsets (a consistent snapshot for a client rebuild).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import cast

from actionstate.client import StoreReadError
from actionstate.client.kafka import (
    KafkaConnection,
    KafkaMessage,
    PartitionReader,
    ReadEnd,
    ReadEvent,
)
from actionstate.service.sidecar._view import MaterializedView

__all__ = ["ViewFollower"]

_log = logging.getLogger("actionstate.service.follower")
_BATCH = 1000
_POLL_S = 0.05
_WATERMARKS_EVERY_S = 1.0


class ViewFollower:
    """Reads every partition of the topic into a :class:`MaterializedView` on a thread.

    It reads through a :class:`PartitionReader` on ``conn`` (offsets are never committed).
    """

    def __init__(
        self,
        conn: KafkaConnection,
        topic: str,
        view: MaterializedView,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self.view = view
        self._on_ready = on_ready
        self._timeout = conn.timeout_s
        self._reader = PartitionReader(conn, topic, purpose="sidecar")
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._positions: dict[int, int] = {}
        self._highs: dict[int, int] = {}
        self._targets = ReadEnd({})  # partition -> end offset taken at start
        self.partitions: list[int] = []
        self.started_at = time.monotonic()
        self.caught_up_seconds: float | None = None
        self.ready_at: float | None = None  # monotonic
        self.error: str | None = None

    def start(self, ends: Mapping[int, int]) -> None:
        """Follow the partitions in ``ends`` from the beginning; ready once each was read
        up to its end offset given here (taken by the caller at start)."""
        self.partitions = sorted(ends)
        for p in self.partitions:
            self._positions[p] = 0
            self._highs[p] = ends[p]
        self._targets = ReadEnd({p: end for p, end in ends.items() if end > 0})
        self._reader.assign(dict.fromkeys(self.partitions, 0))
        self.started_at = time.monotonic()
        if self._targets.done:
            self._mark_ready()
        self._thread = threading.Thread(target=self._run, name="actionstate-view", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """Whether the view reached the high watermarks taken at start."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until ready (or the timeout); returns :attr:`ready`."""
        return self._ready.wait(timeout)

    def wait_for(self, offsets: Mapping[int, int], timeout: float) -> bool:
        """Block until every partition in ``offsets`` was read up to its offset."""
        with self._progress:
            return self._progress.wait_for(
                lambda: all(self._positions.get(p, 0) >= o for p, o in offsets.items()),
                timeout,
            )

    def reached(self, offsets: Mapping[int, int]) -> bool:
        """Whether every partition in ``offsets`` was read up to its offset."""
        positions = self._positions
        return all(positions.get(p, 0) >= o for p, o in offsets.items())

    def lag(self) -> int:
        """Records between the view's position and the last known high watermarks."""
        return sum(max(0, self._highs.get(p, 0) - pos) for p, pos in self._positions.items())

    @property
    def alive(self) -> bool:
        """Whether the following thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def abandon(self, reason: str) -> None:
        """Stop following for good because of ``reason`` (the topic is gone): the
        follower counts as dead, with ``reason`` as its error."""
        self.error = reason
        _log.error("the view follower of topic %s stops: %s", self.topic, reason)
        self._stop.set()

    def stop(self) -> None:
        """Stop the thread and close the reader."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout)
        self._reader.close()

    def _mark_ready(self) -> None:
        if not self._ready.is_set():
            self.ready_at = time.monotonic()
            self.caught_up_seconds = self.ready_at - self.started_at
            self._ready.set()
            if self._on_ready is not None:
                self._on_ready()

    def _advance(self, p: int, position: int) -> None:
        if position > self._positions.get(p, 0):
            self._positions[p] = position
        if not self._ready.is_set() and self._targets.done:
            self._mark_ready()

    def _run(self) -> None:
        last_watermarks = 0.0
        while not self._stop.is_set():
            try:
                msgs = self._reader.poll(_BATCH, _POLL_S)
                for msg in msgs:
                    self._apply(msg)
                now = time.monotonic()
                if now - last_watermarks >= _WATERMARKS_EVERY_S:
                    last_watermarks = now
                    self._refresh_watermarks()
            except Exception as exc:  # a dead follower must be visible, not silent
                self.error = f"{type(exc).__name__}: {exc}"
                _log.exception("the view follower of topic %s stopped", self.topic)
                return
            if msgs:
                with self._progress:
                    self._progress.notify_all()

    def _apply(self, msg: KafkaMessage) -> None:
        err = msg.error()
        # Records and partition events carry their partition and offset.
        p, offset = cast(int, msg.partition()), cast(int, msg.offset())
        if err is not None:
            # A fatal error raises (the follower stops, visibly); a transient one is logged.
            if self._reader.on_error(err, msg, self._targets) is ReadEvent.EOF:
                # Compaction leaves offset gaps: the end of a partition is its position.
                self._advance(p, offset)
            return
        self.view.apply_record(p, offset, msg.key(), msg.value(), msg.headers())
        self._highs[p] = max(self._highs.get(p, 0), offset + 1)
        self._targets.record(p, offset)
        self._advance(p, offset + 1)

    def _refresh_watermarks(self) -> None:
        for p in self.partitions:
            try:
                _low, high = self._reader.watermarks(p, cached=True)
            except StoreReadError:
                continue
            if high is not None and high >= 0:
                self._highs[p] = max(self._highs.get(p, 0), high)
