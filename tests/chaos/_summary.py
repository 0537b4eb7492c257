"""The chaos suite's counts: one row per test, a table, and the totals line.

Each test records a :class:`Row` (the ``chaos_summary`` fixture); the session prints the
table at its end, and appends the rows as JSON lines to ``$CHAOS_SUMMARY_FILE`` when set,
which ``scripts/chaos`` reads to print the totals as its last line:
``python -m tests.chaos._summary FILE``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Record", "Row", "read_rows", "table", "totals_line"]


@dataclass(frozen=True, slots=True)
class Row:
    """What one chaos test did: kills, requests, acknowledged writes checked, lost ones."""

    test: str
    kills: int = 0
    requests: int = 0
    acked: int = 0
    lost: int = 0
    bad_records: int = 0
    seed: int | None = None
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))


Record = Callable[..., Row]
"""The ``chaos_summary`` fixture: records a test's counts (keywords of :class:`Row`)."""


def read_rows(path: Path) -> list[Row]:
    """The rows a run appended to ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table."""
    head = f"{'test':<78} {'kills':>6} {'requests':>9} {'acked':>8} {'lost':>5} {'bad':>6} {'s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.test[:78]:<78} {r.kills:>6} {r.requests:>9} {r.acked:>8} {r.lost:>5} "
            f"{r.bad_records:>6} {r.seconds:>7.1f}" + ("" if r.seed is None else f"  seed {r.seed}")
        )
    return "\n".join(lines)


def totals_line(rows: list[Row]) -> str:
    """The counts over every row, in one line."""
    return (
        f"chaos: {len(rows)} tests, kills {sum(r.kills for r in rows)}, requests "
        f"{sum(r.requests for r in rows)}, acknowledged writes checked "
        f"{sum(r.acked for r in rows)}, bad records {sum(r.bad_records for r in rows)}, "
        f"lost: {sum(r.lost for r in rows)}"
    )


if __name__ == "__main__":
    found = read_rows(Path(sys.argv[1]))
    print(table(found))
    print(totals_line(found))
