"""Which offset of a partition may be committed: the lowest one not finished yet.

Requests of different agent keys finish out of order; the group's committed offset must
never pass one that is still running, or a crash would lose it.
"""

from __future__ import annotations

import heapq

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Offsets taken from one partition and not yet finished; what may be committed."""

    __slots__ = ("_done", "_heap", "_next", "_pending")

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._heap: list[int] = []
        self._done: set[int] = set()  # finished but still in the heap (removed lazily)
        self._next: int | None = None  # one past the highest offset taken

    def __len__(self) -> int:
        return len(self._pending)

    def take(self, offset: int) -> None:
        """Note that the record at ``offset`` is being worked on."""
        if offset in self._pending:
            return
        self._pending.add(offset)
        self._done.discard(offset)
        heapq.heappush(self._heap, offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def finish(self, offset: int) -> None:
        """Note that the record at ``offset`` is finished (its outcome is durable)."""
        if offset in self._pending:
            self._pending.discard(offset)
            self._done.add(offset)

    def committable(self) -> int | None:
        """The offset to commit (the next one to read after a restart), or None before any
        record was taken."""
        heap = self._heap
        while heap and heap[0] in self._done:
            self._done.discard(heapq.heappop(heap))
        if heap:
            return heap[0]
        return self._next
