"""The in-memory view of the journal that every backend serves reads from.

States are kept as the record bytes plus a small index and decoded when read, so a
rebuilt view costs little more memory than the records themselves.
"""

from __future__ import annotations

import bisect
import sys
import threading
from collections.abc import Collection, Iterable
from typing import NamedTuple

from actionstate.serde import ActionState, SerdeError, decode_action_state

from ._errors import StoreReadError

__all__ = ["Entry", "StateView"]


class Entry(NamedTuple):
    """A live state: its record value, where the record sits, and whether it is completed
    (known from the record check, so recovery lists unfinished states without decoding)."""

    value: bytes
    codec: str | None
    partition: int
    offset: int
    version: int | None = None  # the record's write version (signed records only)
    completed: bool = False


class _AgentIndex:
    """The states of one agent key by sequence number, the seqs kept sorted: the divergence
    rule and prune find what they need in O(log n), not by scanning every state of the key.

    A seq almost always has one state: it maps to that state key itself, and to a set only
    when a second one arrives (a set costs more than the state key it holds).
    """

    __slots__ = ("by_seq", "seqs")

    def __init__(self) -> None:
        self.by_seq: dict[int, str | set[str]] = {}
        self.seqs: list[int] = []  # sorted, one entry per key of by_seq

    def add(self, skey: str, seq: int) -> None:
        keys = self.by_seq.get(seq)
        if keys is None:
            self.by_seq[seq] = skey
            seqs = self.seqs
            if not seqs or seqs[-1] < seq:
                seqs.append(seq)  # the common case: a rebuild meets a key's seqs in order
            else:
                bisect.insort(seqs, seq)
        elif isinstance(keys, str):
            if keys != skey:
                self.by_seq[seq] = {keys, skey}
        else:
            keys.add(skey)

    def discard(self, skey: str, seq: int) -> None:
        keys = self.by_seq.get(seq)
        if keys is None:
            return
        if isinstance(keys, str):
            if keys != skey:
                return
        else:
            keys.discard(skey)
            if len(keys) > 1:
                return
            if keys:
                self.by_seq[seq] = next(iter(keys))
                return
        del self.by_seq[seq]
        del self.seqs[bisect.bisect_left(self.seqs, seq)]

    def count(self, seq: int) -> int:
        """How many states share ``seq``."""
        keys = self.by_seq.get(seq)
        return 0 if keys is None else 1 if isinstance(keys, str) else len(keys)

    def _keys(self, seqs: list[int]) -> list[str]:
        out: list[str] = []
        for s in seqs:
            keys = self.by_seq[s]
            if isinstance(keys, str):
                out.append(keys)
            else:
                out.extend(keys)
        return out

    def above(self, seq: int) -> list[str]:
        """The state keys with a seq above ``seq``."""
        return self._keys(self.seqs[bisect.bisect_right(self.seqs, seq) :])

    def up_to(self, seq: int) -> list[str]:
        """The state keys with a seq of at most ``seq``."""
        return self._keys(self.seqs[: bisect.bisect_right(self.seqs, seq)])

    def __bool__(self) -> bool:
        return bool(self.seqs)


class StateView:
    """Latest entry per state key, indexed by agent key; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._keys: dict[str, tuple[str, int]] = {}  # state key -> (agent key, seq)
        # agent key -> its states by seq; the divergence rule and prune work per agent key.
        self._agents: dict[str, _AgentIndex] = {}
        self._unfinished: set[str] = set()  # state keys whose entry is not completed

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, agent_key: str, seq: int, skey: str, entry: Entry) -> None:
        """Make ``entry`` the state of ``skey``."""
        with self._lock:
            self._put(agent_key, seq, skey, entry)

    def _put(self, agent_key: str, seq: int, skey: str, entry: Entry) -> None:
        self._entries[skey] = entry
        if entry.completed:
            self._unfinished.discard(skey)
        else:
            self._unfinished.add(skey)
        known = self._keys.get(skey)
        if known == (agent_key, seq):
            return
        if known is not None:
            self._unindex(skey, *known)
        agent_key = sys.intern(agent_key)  # one copy per agent key, not one per state
        index = self._agents.get(agent_key)
        if index is None:
            index = self._agents[agent_key] = _AgentIndex()
        index.add(skey, seq)
        self._keys[skey] = (agent_key, seq)

    def _unindex(self, skey: str, agent_key: str, seq: int) -> None:
        index = self._agents[agent_key]
        index.discard(skey, seq)
        if not index:
            del self._agents[agent_key]

    def _remove(self, skey: str) -> None:
        if self._entries.pop(skey, None) is not None:
            self._unfinished.discard(skey)
            self._unindex(skey, *self._keys.pop(skey))

    def load(
        self,
        live: Iterable[tuple[str, int, str, Entry]],
        deleted: Iterable[tuple[str, str]],
    ) -> None:
        """Merge a rebuild's result: ``(agent, seq, skey, entry)`` rows and deleted keys."""
        with self._lock:
            for agent_key, seq, skey, entry in live:
                self._put(agent_key, seq, skey, entry)
            for _agent_key, skey in deleted:
                self._remove(skey)

    def version(self, skey: str) -> int | None:
        """The write version of ``skey``'s record in the view, if it has one."""
        entry = self._entries.get(skey)
        return None if entry is None else entry.version

    def get(self, skey: str) -> Entry | None:
        """The entry of ``skey`` as the view holds it (no divergence rule applied)."""
        with self._lock:
            return self._entries.get(skey)

    def lookup(self, agent_key: str, seq: int, skey: str) -> Entry | None:
        """The entry of ``skey``, after applying Flink Agents' divergence rule.

        When ``skey`` is unknown, or several states share this (agent key, seq), the run
        took a different path than the journal recorded: the states of this agent key
        with a higher seq belong to the abandoned path and leave the view.
        """
        with self._lock:
            index = self._agents.get(agent_key)
            if index is None:
                return None
            if skey not in self._entries or index.count(seq) > 1:
                for later in index.above(seq):
                    self._remove(later)
            return self._entries.get(skey)

    def keys_up_to(self, agent_key: str, up_to_seq: int) -> list[str]:
        """State keys of ``agent_key`` with seq ≤ ``up_to_seq``."""
        with self._lock:
            index = self._agents.get(agent_key)
            return [] if index is None else index.up_to(up_to_seq)

    def discard(self, agent_key: str, skeys: Iterable[str]) -> None:
        """Drop ``skeys`` (all of ``agent_key``) from the view."""
        with self._lock:
            for skey in skeys:
                self._remove(skey)

    def forget_partitions(self, partitions: Collection[int]) -> int:
        """Drop every entry of ``partitions`` (the log keeps them); how many were dropped."""
        chosen = set(partitions)
        with self._lock:
            gone = [skey for skey, entry in self._entries.items() if entry.partition in chosen]
            for skey in gone:
                self._remove(skey)
            return len(gone)

    def unfinished(self) -> list[tuple[str, Entry]]:
        """Every (state key, entry) whose state is not completed, copied under the lock:
        O(unfinished states), the completed ones are not looked at."""
        with self._lock:
            return [(skey, self._entries[skey]) for skey in self._unfinished]

    def last_seqs(self) -> dict[str, int]:
        """The highest seq of every agent key in the view, from the index."""
        with self._lock:
            return {agent: index.seqs[-1] for agent, index in self._agents.items()}

    def snapshot(self) -> list[tuple[str, Entry]]:
        """Every (state key, entry), copied under the lock."""
        with self._lock:
            return list(self._entries.items())

    def clear(self) -> None:
        """Forget every state."""
        with self._lock:
            self._entries.clear()
            self._unfinished.clear()
            self._keys.clear()
            self._agents.clear()


def decode_entry(skey: str, entry: Entry, topic: str) -> ActionState:
    """Decode a view entry; a record that passed rebuild's checks but does not decode
    is reported with its location, never with its contents."""
    try:
        return decode_action_state(entry.value)
    except SerdeError as exc:
        raise StoreReadError(
            f"state {skey!r} (topic {topic!r}, partition {entry.partition}, offset "
            f"{entry.offset}) could not be decoded: {exc}. Inspect the record with "
            f"`actionstate inspect`; prune the key once it is understood."
        ) from exc
