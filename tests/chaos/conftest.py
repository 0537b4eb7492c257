"""The chaos suite: real brokers and worker processes, killed and restarted under load.

Every test here runs in two sizes: the bounded one ``.ci/run`` runs, and the long one
``scripts/chaos`` runs (``--chaos-long``); ``chaos_long`` tells a test which. A test
records its counts with ``chaos_summary(kills=..., requests=..., acked=..., lost=...)``:
the session prints them as a table and a totals line at its end, and appends them to
``$CHAOS_SUMMARY_FILE`` when set (``scripts/chaos`` prints the totals from it last).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.chaos._summary import Record, Row, table, totals_line
from tests.fleet.conftest import fleet  # noqa: F401  (the fleet tests' fixture, shared)

# A hang guard per test, by size (a test's own timeout marker wins).
CI_TIMEOUT_S = 600
LONG_TIMEOUT_S = 3600

_ROWS = pytest.StashKey[list[Row]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each chaos test the hang guard of the run's size."""
    long = bool(config.getoption("--chaos-long"))
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S if long else CI_TIMEOUT_S))


@pytest.fixture(scope="session")
def chaos_long(request: pytest.FixtureRequest) -> bool:
    """Whether this is the long run (``--chaos-long``)."""
    return bool(request.config.getoption("--chaos-long"))


@pytest.fixture
def chaos_summary(request: pytest.FixtureRequest) -> Record:
    """``chaos_summary(kills=, requests=, acked=, lost=, bad_records=, seed=)``: record the
    test's counts (call it once, when the counts are known; the time is measured here)."""
    started = time.monotonic()

    def record(
        *,
        kills: int = 0,
        requests: int = 0,
        acked: int = 0,
        lost: int = 0,
        bad_records: int = 0,
        seed: int | None = None,
    ) -> Row:
        row = Row(
            request.node.name,
            kills=kills,
            requests=requests,
            acked=acked,
            lost=lost,
            bad_records=bad_records,
            seed=seed,
            seconds=time.monotonic() - started,
        )
        request.config.stash.setdefault(_ROWS, []).append(row)
        target = os.environ.get("CHAOS_SUMMARY_FILE")
        if target:
            with Path(target).open("a") as out:
                out.write(row.to_json() + "\n")
        return row

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The chaos counts of this session, as a table and a totals line."""
    rows = terminalreporter.config.stash.get(_ROWS, [])
    if not rows:
        return
    terminalreporter.section("chaos counts")
    terminalreporter.write_line(table(rows))
    terminalreporter.write_line(totals_line(rows))
