"""Polling helpers for tests: wait for a condition instead of sleeping.

Import from tests as ``from _helpers import assert_eventually`` (pytest puts ``tests/`` on
``sys.path`` because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["assert_eventually", "async_assert_eventually"]

T = TypeVar("T")


def assert_eventually(
    check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call ``check`` until it stops raising ``AssertionError``, and return its result.

    ``check`` states its expectation with ``assert``; after ``timeout`` seconds the last
    ``AssertionError`` propagates, so the failure says what was still wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


async def async_assert_eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """The ``async`` twin of :func:`assert_eventually`: awaits ``check()`` until it passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(interval)
