"""Polling helpers for tests (wait for a condition instead of sleeping), and a reader of
what a topic really holds.

Import from tests as ``from _helpers import assert_eventually`` (pytest puts ``tests/`` on
``sys.path`` because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from actionstate.service._topic_reader import RawRecord, TopicReader

__all__ = ["assert_eventually", "async_assert_eventually", "read_topic", "returns_within"]

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


def returns_within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` run on a thread, as a hang guard: its result (or exception), or an
    ``AssertionError`` if it has not returned after ``seconds``. A call still hanging
    keeps its thread until whatever it waits for ends."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except FutureTimeout:
        raise AssertionError(f"still not returned after {seconds}s") from None
    finally:
        pool.shutdown(wait=False)


def read_topic(bootstrap: str, topic: str) -> list[RawRecord]:
    """Every record ``topic`` holds now (up to the high watermarks), in (partition, offset)
    order: what the broker really stored, tombstones included."""
    with TopicReader({"bootstrap.servers": bootstrap}, topic) as reader:
        records = [raw for raw in reader.read() if raw is not None]
    return sorted(records, key=lambda raw: (raw.partition, raw.offset))
