"""The in-memory view of the journal that every backend serves reads from.

States are kept as the record bytes plus a small index and decoded when read, so a
rebuilt view costs little more memory than the records themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from typing import NamedTuple

from actionstate.serde import ActionState, SerdeError, decode_action_state

from ._errors import StoreReadError

__all__ = ["Entry", "StateView"]


class Entry(NamedTuple):
    """A live state: its record value and where the record sits."""

    value: bytes
    codec: str | None
    partition: int
    offset: int
    version: int | None = None  # the record's write version (signed records only)


class StateView:
    """Latest entry per state key, indexed by agent key; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        # agent key -> {state key: seq}; the divergence rule and prune work per agent key.
        self._agents: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, agent_key: str, seq: int, skey: str, entry: Entry) -> None:
        """Make ``entry`` the state of ``skey``."""
        with self._lock:
            self._put(agent_key, seq, skey, entry)

    def _put(self, agent_key: str, seq: int, skey: str, entry: Entry) -> None:
        self._entries[skey] = entry
        index = self._agents.get(agent_key)
        if index is None:
            self._agents[agent_key] = {skey: seq}
        else:
            index[skey] = seq

    def _remove(self, agent_key: str, skey: str) -> None:
        if self._entries.pop(skey, None) is None:
            return
        index = self._agents[agent_key]
        del index[skey]
        if not index:
            del self._agents[agent_key]

    def load(
        self,
        live: Iterable[tuple[str, int, str, Entry]],
        deleted: Iterable[tuple[str, str]],
    ) -> None:
        """Merge a rebuild's result: ``(agent, seq, skey, entry)`` rows and deleted keys."""
        with self._lock:
            for agent_key, seq, skey, entry in live:
                self._put(agent_key, seq, skey, entry)
            for agent_key, skey in deleted:
                self._remove(agent_key, skey)

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
            same_seq = sum(1 for s in index.values() if s == seq)
            if skey not in self._entries or same_seq > 1:
                for later in [k for k, s in index.items() if s > seq]:
                    self._remove(agent_key, later)
            return self._entries.get(skey)

    def keys_up_to(self, agent_key: str, up_to_seq: int) -> list[str]:
        """State keys of ``agent_key`` with seq ≤ ``up_to_seq``."""
        with self._lock:
            index = self._agents.get(agent_key, {})
            return [k for k, s in index.items() if s <= up_to_seq]

    def discard(self, agent_key: str, skeys: Iterable[str]) -> None:
        """Drop ``skeys`` (all of ``agent_key``) from the view."""
        with self._lock:
            for skey in skeys:
                self._remove(agent_key, skey)

    def forget_partitions(self, partitions: Collection[int]) -> int:
        """Drop every entry of ``partitions`` (the log keeps them); how many were dropped."""
        chosen = set(partitions)
        with self._lock:
            gone = [skey for skey, entry in self._entries.items() if entry.partition in chosen]
            for skey in gone:
                del self._entries[skey]
            if gone:
                dropped = set(gone)
                for agent_key in list(self._agents):
                    index = self._agents[agent_key]
                    for skey in dropped.intersection(index):
                        del index[skey]
                    if not index:
                        del self._agents[agent_key]
            return len(gone)

    def snapshot(self) -> list[tuple[str, Entry]]:
        """Every (state key, entry), copied under the lock."""
        with self._lock:
            return list(self._entries.items())

    def clear(self) -> None:
        """Forget every state."""
        with self._lock:
            self._entries.clear()
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
