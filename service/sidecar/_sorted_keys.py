"""An ordered set of strings in chunks: add, remove and a range scan cost O(log n + chunk),
never a re-sort of every key (the listing runs on the event loop).

Strings compare in C (``bisect`` on plain lists), so the view orders its keys through
:func:`order_key`, a string whose plain order is the listing order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

__all__ = ["SortedKeys", "agent_bounds", "order_key", "state_key_of"]

_CHUNK = 1000  # a chunk splits at twice this many keys
_END = "\x00"  # ends the agent part: below every character an agent key may hold ...
_ESCAPED = "\x00\xff"  # ... except NUL itself, written so that it sorts after _END + length
_SEQ_WIDTH_MAX = 20  # chr(1..20): the length of the seq, before its digits
_UUIDS = 74  # "_<eventUUID>_<actionUUID>"
_DIGITS = frozenset("0123456789")


def order_key(skey: str) -> str:
    """A string whose plain order is the listing order of state keys: agent key, then
    seq as a number, then the UUIDs (the order of ``(agent, int(seq), rest)``)."""
    agent, seq, rest = skey.split("_", 2)
    # Seqs are canonical (no leading zeros), so the shorter seq is the smaller number.
    return _agent_part(agent) + chr(len(seq)) + seq + "_" + rest


def state_key_of(okey: str) -> str:
    """The state key an :func:`order_key` was made from."""
    # After the agent part: chr(len(seq)), the seq's digits, then "_" and 73 UUID characters;
    # chr(len(seq)) is no digit, so the digits before the UUIDs are exactly the seq's.
    end = len(okey) - _UUIDS
    start = end
    while okey[start - 1] in _DIGITS:
        start -= 1
    agent = okey[: start - 2]
    if _ESCAPED in agent:
        agent = agent.replace(_ESCAPED, "\x00")
    return agent + "_" + okey[start:]


def agent_bounds(agent_key: str, up_to_seq: int | None = None) -> tuple[str, str]:
    """The order keys of ``agent_key``'s states (with seq ≤ ``up_to_seq``) lie in
    ``[low, high)``."""
    part = _agent_part(agent_key)
    if up_to_seq is None:
        return part + "\x01", part + chr(_SEQ_WIDTH_MAX + 1)
    seq = str(up_to_seq)
    # Every UUID character ([0-9a-f-_]) is below "\x7f".
    return part + "\x01", part + chr(len(seq)) + seq + "_\x7f"


def _agent_part(agent: str) -> str:
    if _END in agent:
        agent = agent.replace("\x00", _ESCAPED)
    return agent + _END


class SortedKeys:
    """A set of strings kept in order, in chunks of about ``_CHUNK`` (not thread-safe:
    the view's lock guards it)."""

    def __init__(self) -> None:
        self._chunks: list[list[str]] = []
        self._maxes: list[str] = []  # the last key of each chunk
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        i = bisect.bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return False
        chunk = self._chunks[i]
        j = bisect.bisect_left(chunk, key)
        return j < len(chunk) and chunk[j] == key

    def add(self, key: str) -> None:
        """Add ``key`` (no effect when present)."""
        if not self._chunks:
            self._chunks.append([key])
            self._maxes.append(key)
            self._len = 1
            return
        i = min(bisect.bisect_left(self._maxes, key), len(self._maxes) - 1)
        chunk = self._chunks[i]
        j = bisect.bisect_left(chunk, key)
        if j < len(chunk) and chunk[j] == key:
            return
        chunk.insert(j, key)
        self._maxes[i] = chunk[-1]
        self._len += 1
        if len(chunk) > 2 * _CHUNK:
            self._chunks[i : i + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            self._maxes[i : i + 1] = [chunk[_CHUNK - 1], chunk[-1]]

    def discard(self, key: str) -> None:
        """Remove ``key`` if present."""
        i = bisect.bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return
        chunk = self._chunks[i]
        j = bisect.bisect_left(chunk, key)
        if j == len(chunk) or chunk[j] != key:
            return
        del chunk[j]
        self._len -= 1
        if chunk:
            self._maxes[i] = chunk[-1]
        else:
            del self._chunks[i]
            del self._maxes[i]

    def scan(
        self, start: str | None = None, *, inclusive: bool = False, below: str | None = None
    ) -> Iterator[str]:
        """Keys from ``start`` on (above it, or at or above it when ``inclusive``; all
        when None) and below ``below`` (no bound when None), in order. The set must not
        change while the iterator is used."""
        if start is None:
            i, j = 0, 0
        else:
            find = bisect.bisect_left if inclusive else bisect.bisect_right
            i = find(self._maxes, start)
            j = find(self._chunks[i], start) if i < len(self._chunks) else 0
        for n in range(i, len(self._chunks)):
            chunk = self._chunks[n]
            for key in chunk[j:] if j else chunk:
                if below is not None and key >= below:
                    return
                yield key
            j = 0
