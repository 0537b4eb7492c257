"""Fixtures for the interop tests.

Tests that check the committed golden vectors need no JVM and run everywhere. Tests that
run Flink Agents 0.3.0's classes through the Java harness are marked ``java``: they need
``interop/java/target/actionstate-interop.jar`` (``mvn -q -B -f interop/java/pom.xml
package``) and fail, never skip, without it. Tests that run the real 0.2.0 classes are
marked ``java`` and ``java020`` and are part of the default run: ``scripts/bootstrap``
builds their harness (``scripts/flink-agents-jars``); they too fail, never skip, without
it. Collection refuses a test that asks for a harness without its markers, so a plain run
never needs a JVM by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.interop._jvm import Checker, HarnessError, ensure_jar, harness_020

# fixture -> the markers a test using it must carry
_HARNESS_FIXTURES = {
    "harness_jar": ("java",),
    "checker": ("java",),
    "harness_020_command": ("java", "java020"),
    "checker_020": ("java", "java020"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that uses a harness without the markers that select it."""
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            for marker in _HARNESS_FIXTURES.get(name, ()):
                if item.get_closest_marker(marker) is None:
                    raise pytest.UsageError(
                        f"{item.nodeid} uses the Java harness fixture {name} but is not "
                        f"marked @pytest.mark.{marker}"
                    )


T = TypeVar("T")


def _harness_or_fail(build: Callable[[], T], deselect: str) -> T:
    try:
        return build()
    except HarnessError as e:
        problem = str(e)
    # outside the except block, so the report is this one line without a chained traceback
    pytest.fail(f"{problem}; or deselect these tests with -m {deselect!r}", pytrace=False)


@pytest.fixture(scope="session")
def harness_jar() -> str:
    """Path of the built harness jar; fails the test, saying how to build it, when missing."""
    return str(_harness_or_fail(ensure_jar, "not java"))


@pytest.fixture(scope="session")
def harness_020_command() -> list[str]:
    """The command running the Flink Agents 0.2.0 harness; fails the test, saying how to
    build it, when missing."""
    return _harness_or_fail(harness_020, "not java020")


@pytest.fixture(scope="module")
def checker_020(harness_020_command: list[str]) -> Iterator[Checker]:
    """One 0.2.0 ``check`` JVM per test module."""
    proc = Checker(harness_020_command)
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="session")
def checker(harness_jar: str) -> Iterator[Checker]:
    """One ``check`` JVM for the whole session."""
    proc = Checker()
    try:
        yield proc
    finally:
        proc.close()
