"""Shared test helpers: polling (wait for a condition instead of sleeping), a reader of
what a topic really holds, and the check every package's exports test makes.

Import them as ``from tests._support import assert_eventually``: ``tests/`` is a package, so
pytest puts the repository root on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from types import ModuleType
from typing import Any, TypeVar

from actionstate.client.kafka import KafkaConnection, PartitionReader
from actionstate.serde import RawRecord

__all__ = [
    "Tracked",
    "assert_eventually",
    "async_assert_eventually",
    "check_exports",
    "read_topic",
    "returns_within",
]

T = TypeVar("T")


def assert_eventually(
    check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call ``check`` until it stops raising ``AssertionError``, and return its result.

    ``check`` states its expectation with ``assert``, or returns a bool (``lambda: n == 3``):
    ``False`` counts as not yet, never as a pass. After ``timeout`` seconds the last
    ``AssertionError`` propagates, so the failure says what was still wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is False:
                raise AssertionError(f"still False after {timeout}s: {check!r}")
            return result
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
    conn = KafkaConnection(bootstrap_servers=bootstrap)
    with PartitionReader(conn, topic, purpose="test") as reader:
        partitions = reader.partitions()
        assert partitions is not None, f"topic {topic!r} does not exist"
        records = [raw for raw in reader.read(reader.ranges(partitions)) if raw is not None]
    return sorted(records, key=lambda raw: (raw.partition() or 0, raw.offset() or 0))


def check_exports(module: ModuleType, public: set[str]) -> None:
    """Assert that ``module.__all__`` is exactly ``public``, in ruff's RUF022 order, and that
    every exported class and function has a docstring."""
    exported = list(module.__all__)
    assert set(exported) == public
    assert len(exported) == len(public)

    # isort-style order (constants, classes, functions), as ruff's RUF022 keeps it
    def style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert exported == sorted(exported, key=style)
    # Constants and type aliases cannot carry a docstring of their own; classes and
    # functions must.
    for name in public:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            assert obj.__doc__, name


class Tracked:
    """A side-effecting call that counts how often it really ran."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0
        self.__qualname__ = f"Tracked.{fn.__qualname__}"
        self.__module__ = fn.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)
