"""The worker bench/fleet.py runs as ``actionstate worker fleet_app:worker --app-dir bench``.

``steps``: ``data["steps"]`` durable async calls, each timed; the output holds the times
(ms) so the bench reads per-step latency from the completed states. ``slow``: two durable
calls with ``data["sleep"]`` seconds between them, so a SIGKILL lands mid-action.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actionstate.client import DurableContext, Worker

worker = Worker()  # no store: `actionstate worker` builds one from its flags


async def _step(n: int) -> int:
    return n


@worker.action("steps")
async def steps(data: Any, ctx: DurableContext) -> Any:
    times = []
    for n in range(int(data["steps"])):
        t0 = time.perf_counter()
        await ctx.durable_execute_async(_step, n)
        times.append(round((time.perf_counter() - t0) * 1000, 3))
    return {"step_ms": times}


async def _mark(n: int) -> int:
    return n


@worker.action("slow")
async def slow(data: Any, ctx: DurableContext) -> Any:
    await ctx.durable_execute_async(_mark, 1, reconciler=lambda: 1)
    await asyncio.sleep(float(data["sleep"]))
    await ctx.durable_execute_async(_mark, 2)
    return {"done": True}
