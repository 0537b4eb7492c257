"""Fixtures for the interop tests.

Tests that check the committed golden vectors need no JVM and run everywhere. Tests that
run Flink Agents 0.3.0's classes through the Java harness are marked ``java``: they need
``interop/java/target/actionstate-interop.jar`` (``mvn -q -B -f interop/java/pom.xml
package``) and fail, never skip, without it. Collection refuses an unmarked test that asks
for the harness, so a plain run never needs a JVM by accident.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _jvm import Checker, HarnessError, ensure_jar

_HARNESS_FIXTURES = {"harness_jar", "checker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that uses the harness without the ``java`` marker."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _HARNESS_FIXTURES and item.get_closest_marker("java") is None:
            raise pytest.UsageError(
                f"{item.nodeid} uses the Java harness but is not marked @pytest.mark.java"
            )


@pytest.fixture(scope="session")
def harness_jar() -> str:
    """Path of the built harness jar; fails the test, saying how to build it, when missing."""
    try:
        return str(ensure_jar())
    except HarnessError as e:
        problem = str(e)
    # outside the except block, so the report is this one line without a chained traceback
    pytest.fail(f"{problem}; or deselect the harness tests with -m 'not java'", pytrace=False)


@pytest.fixture(scope="session")
def checker(harness_jar: str) -> Iterator[Checker]:
    """One ``check`` JVM for the whole session."""
    proc = Checker()
    try:
        yield proc
    finally:
        proc.close()
