"""The ``fleet`` fixture: worker processes on fresh topics, all stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet._fleet import Fleet


@pytest.fixture
def fleet(kafka_bootstrap: str, topic_name: str, tmp_path: Path) -> Iterator[Fleet]:
    """A fleet of 12 partitions on fresh topics (created by the test or its first worker);
    every worker still running at teardown is stopped, and its log tail printed."""
    f = Fleet(kafka_bootstrap, topic_name, tmp_path)
    try:
        yield f
    finally:
        print(f.tails())  # shown by pytest when the test failed
        f.close()
