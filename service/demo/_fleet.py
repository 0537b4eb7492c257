"""The demo's fleet members: ``actionstate worker`` processes, and what their logs tell.

A member's stderr (the worker loop's one line per rebalance) and stdout (the demo app's
JSON events) go to one log file; the demo learns from it which partitions the member owns
and what its actions did, exactly as a person reading the log would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionstate.service.demo._checks import parse_events
from actionstate.service.demo._procs import Child

__all__ = ["Member", "Rebalance"]

_REBALANCE = re.compile(r"\b(assigned|revoked|lost) \[([0-9, ]*)\][^\n]*")


@dataclass(frozen=True)
class Rebalance:
    """One rebalance line of a member's log: its kind, the partitions, the whole message."""

    kind: str
    partitions: list[int]
    line: str
    at: int
    """Where the line starts in the log (a character offset)."""


class Member:
    """One worker process of the fleet, named for the narration ("worker A")."""

    def __init__(self, name: str, child: Child) -> None:
        self.name = name
        self.child = child

    @property
    def pid(self) -> int:
        """The process id."""
        return self.child.pid

    @property
    def log(self) -> Path:
        """The member's log file."""
        return self.child.log

    def text(self) -> str:
        """The log so far."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def rebalances(self, start: int = 0) -> list[Rebalance]:
        """The rebalances logged from character ``start`` on, in order."""
        return [
            Rebalance(
                kind=m[1],
                partitions=[int(p) for p in m[2].split(",") if p.strip()],
                line=m[0],
                at=m.start(),
            )
            for m in _REBALANCE.finditer(self.text(), start)
        ]

    def owned(self) -> set[int]:
        """The partitions the member owns now, as its log tells."""
        held: set[int] = set()
        for r in self.rebalances():
            if r.kind == "assigned":
                held.update(r.partitions)
            else:
                held.difference_update(r.partitions)
        return held

    def events(self, agent_key: str | None = None) -> list[dict[str, Any]]:
        """The app's JSON events in the log (of ``agent_key`` when given)."""
        events = parse_events(self.log.read_bytes()) if self.log.exists() else []
        return [e for e in events if agent_key is None or e.get("agent_key") == agent_key]
