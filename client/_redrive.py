"""Re-driving the runs recovery found: concurrently within a bound, one agent key at a time.

One agent key's states run one after another in seq order, as the fleet's per-key queues
run them (a later state of a key may depend on what an earlier one did); different keys
run side by side, sync actions on threads, async ones as tasks of one event loop. What each
run raised is collected and counted afterwards in the order of the runs, so the report is
the one a sequential recovery gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from actionstate.client._recovery import RecoveryReport, counted
from actionstate.client._runs import _Run

__all__ = ["RECOVERY_CONCURRENCY", "by_agent_key", "drive_tasks", "drive_threads", "fold"]

RECOVERY_CONCURRENCY = 32
"""How many unfinished actions ``recover()`` re-drives at once by default."""


def by_agent_key(runs: Iterable[_Run]) -> list[list[_Run]]:
    """``runs`` grouped by agent key, each group in the order given (seq order from
    ``recoverable``): one agent key's states are re-driven one at a time, as the fleet's
    per-key queues run them, so a later seq never overtakes an earlier one."""
    chains: dict[str, list[_Run]] = {}
    for run in runs:
        chains.setdefault(run.ctx.key, []).append(run)
    return list(chains.values())


def fold(report: RecoveryReport, runs: Sequence[_Run], errors: Sequence[Exception | None]) -> None:
    """Count what became of ``runs`` (``errors[i]``: what run ``i`` raised, or None) in
    ``report``, in the order of ``runs`` whatever order they ran in."""
    for run, error in zip(runs, errors, strict=True):
        with counted(report, run):
            if error is not None:
                raise error


def drive_threads(
    runs: Sequence[_Run], drive: Callable[[_Run], object], limit: int
) -> list[Exception | None]:
    """Drive ``runs`` with ``drive`` on at most ``limit`` threads, one agent key's runs one
    after another; what each raised (None: it returned), in the order of ``runs``."""
    errors: dict[int, Exception | None] = {}
    index = {id(run): i for i, run in enumerate(runs)}

    def chain(group: list[_Run]) -> None:
        for run in group:
            try:
                drive(run)
            except Exception as exc:
                errors[index[id(run)]] = exc
            else:
                errors[index[id(run)]] = None

    chains = by_agent_key(runs)
    if len(chains) <= 1 or limit <= 1:
        for group in chains:
            chain(group)
    else:
        with ThreadPoolExecutor(min(limit, len(chains)), "actionstate-recover") as pool:
            for future in [pool.submit(chain, group) for group in chains]:
                future.result()  # a BaseException of a run (KeyboardInterrupt) goes on
    return [errors[i] for i in range(len(runs))]


async def drive_tasks(
    runs: Sequence[_Run], drive: Callable[[_Run], Awaitable[object]], limit: int
) -> list[Exception | None]:
    """Drive ``runs`` with ``drive`` as tasks, at most ``limit`` at a time, one agent key's
    runs one after another; what each raised (None: it returned), in the order of ``runs``."""
    errors: list[Exception | None] = [None] * len(runs)
    index = {id(run): i for i, run in enumerate(runs)}
    slots = asyncio.Semaphore(max(1, limit))

    async def chain(group: list[_Run]) -> None:
        for run in group:
            async with slots:
                try:
                    await drive(run)
                except Exception as exc:
                    errors[index[id(run)]] = exc

    await asyncio.gather(*(chain(group) for group in by_agent_key(runs)))
    return errors
