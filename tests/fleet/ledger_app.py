"""The app the fleet tests run: ``actionstate worker tests.fleet.ledger_app:worker``.

``worker`` has no store (the command builds it from its flags). Its actions ``charge``
(sync) and ``charge-async`` make two durable calls, each appending one line to the ledger
``$FLEET_LEDGER_DIR/ledger``, shared by every worker process of a test:

- ``pay`` (with a reconciler): ``pay <call id> <pid>``. The reconciler looks the call id up
  in the ledger and returns the receipt if the payment is there, else pays then;
- ``ship`` (without one): ``ship <call id> <pid>``, after ``data["delay"]`` or
  ``$FLEET_SHIP_DELAY_S`` seconds (default 0.15) so that actions are in flight when a test
  sends a signal.

The output names the process that completed the action: ``{"order", "receipt", "pid"}``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from actionstate.client import DurableContext, Worker

__all__ = ["LEDGER", "worker"]

LEDGER = "ledger"
"""The ledger's file name inside ``$FLEET_LEDGER_DIR``."""

worker = Worker()


def _ledger() -> Path:
    return Path(os.environ["FLEET_LEDGER_DIR"]) / LEDGER


def _delay(data: Any) -> float:
    given = data.get("delay") if isinstance(data, dict) else None
    return float(given if given is not None else os.environ.get("FLEET_SHIP_DELAY_S", "0.15"))


def _append(line: str) -> None:
    # One write(2) on an O_APPEND descriptor: lines of concurrent processes never interleave.
    fd = os.open(_ledger(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _paid(call_id: str) -> bool:
    path = _ledger()
    if not path.exists():
        return False
    return any(
        line.split()[:2] == ["pay", call_id] for line in path.read_text().splitlines() if line
    )


def pay(order: int, call_id: str) -> str:
    """The side effect that must happen once per request."""
    _append(f"pay {call_id} {os.getpid()}")
    return f"receipt-{order}"


def ship(call_id: str) -> str:
    """A side effect without a reconciler: at least once."""
    _append(f"ship {call_id} {os.getpid()}")
    return "shipped"


def _reconcile(order: int, call_id: str) -> str:
    """Did payment ``call_id`` happen? Its receipt if so; else pay now."""
    if _paid(call_id):
        return f"receipt-{order}"
    return pay(order, call_id)


@worker.action("charge")
def charge(data: Any, ctx: DurableContext) -> Any:
    """Pay (reconciled), wait a little, ship (not reconciled)."""
    order = data["order"]
    pay_id = ctx.next_call_id
    receipt = ctx.durable_execute(pay, order, pay_id, reconciler=lambda: _reconcile(order, pay_id))
    time.sleep(_delay(data))
    ctx.durable_execute(ship, ctx.next_call_id)
    return {"order": order, "receipt": receipt, "pid": os.getpid()}


@worker.action("charge-async")
async def charge_async(data: Any, ctx: DurableContext) -> Any:
    """The async twin of :func:`charge`."""
    order = data["order"]
    pay_id = ctx.next_call_id
    receipt = await ctx.durable_execute_async(
        pay, order, pay_id, reconciler=lambda: _reconcile(order, pay_id)
    )
    await asyncio.sleep(_delay(data))
    await ctx.durable_execute_async(ship, ctx.next_call_id)
    return {"order": order, "receipt": receipt, "pid": os.getpid()}
