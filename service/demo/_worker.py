"""The app the demo's fleet runs: ``actionstate worker actionstate.service.demo._worker:worker``.

``worker`` has no store: the command builds a ``KafkaStore`` from its flags (the demo sets
``ACTIONSTATE_PAYLOAD_CODEC=json``, so the sidecar shows receipts without unpickling). Its
one action, ``charge``, reserves stock (a completion-only durable call), then charges the
order through a durable call with a reconciler, passing ``ctx.next_call_id`` to the payment
provider as the idempotency key. The books are in the folder ``$ACTIONSTATE_DEMO_DIR``.

The first process that books the charge of ``AGENT_KEY``'s order leaves the crash marker
(its pid and the charge) in that folder and hangs right there, the PENDING slot journaled
and the outcome not: the demo SIGKILLs it. The output names the process that completed
the action (``worker_pid``), so the demo can tell who wrote the completed state.

Each durable call is reported on stdout as a JSON line, ``{"event": ..., "agent_key": ...}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from actionstate.client import CallCounts, DurableContext, Worker
from actionstate.service.demo._orders import ACTION, AGENT_KEY, RUN_DIR_ENV
from actionstate.service.demo._world import CRASH_MARKER, LEDGER, STOCK, PaymentProvider, Warehouse

__all__ = ["worker"]

T = TypeVar("T")

worker = Worker()


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")
    sys.stdout.flush()


def _run_dir() -> Path:
    return Path(os.environ[RUN_DIR_ENV])


def _how(before: CallCounts, after: CallCounts) -> str:
    """How the durable call that moved ``before`` to ``after`` was resolved."""
    for name in ("replayed", "reconciled", "reexecuted", "executed"):
        if getattr(after, name) > getattr(before, name):
            return name
    return "unknown"


def _step(ctx: DurableContext, agent_key: str, name: str, call: Callable[[], T]) -> T:
    """Make one durable call and report how it was resolved (replayed, reconciled...)."""
    before = dataclasses.replace(ctx.counts)
    result = call()
    _emit("call", agent_key=agent_key, step=name, how=_how(before, ctx.counts), result=result)
    return result


def _hang_once(run_dir: Path) -> Callable[[dict[str, Any]], None]:
    """After a new charge of ``AGENT_KEY``: the first process to get here hangs for good."""

    def after_charge(receipt: dict[str, Any]) -> None:
        if receipt["order_id"] != AGENT_KEY:
            return
        marker = run_dir / CRASH_MARKER
        mine = run_dir / f".{CRASH_MARKER}.{os.getpid()}"
        mine.write_text(json.dumps({"pid": os.getpid(), "charge_id": receipt["charge_id"]}))
        try:
            # A link appears whole and only once: the demo never reads half a marker, and
            # a second booking (there should be none) would not hang a second process.
            os.link(mine, marker)
        except FileExistsError:
            return
        finally:
            with contextlib.suppress(OSError):
                mine.unlink()
        _emit("hanging", agent_key=AGENT_KEY, charge_id=receipt["charge_id"])
        threading.Event().wait()  # the demo SIGKILLs the process here

    return after_charge


@worker.action(ACTION)
def charge(order: Any, ctx: DurableContext) -> Any:
    """Reserve the order's stock, then charge it (a reconciler asks the provider)."""
    run_dir = _run_dir()
    warehouse = Warehouse(run_dir / STOCK)
    payments = PaymentProvider(run_dir / LEDGER, after_charge=_hang_once(run_dir))
    order_id: str = order["order_id"]
    reservation = _step(
        ctx,
        order_id,
        "reserve stock",
        lambda: ctx.durable_execute(warehouse.reserve, order_id, order["sku"], order["quantity"]),
    )
    key = ctx.next_call_id  # stable across processes: the provider's idempotency key

    def reconcile() -> dict[str, Any]:
        receipt = payments.lookup(key)
        _emit("reconciler", agent_key=order_id, idempotency_key=key, answer=receipt)
        return receipt

    receipt = _step(
        ctx,
        order_id,
        "charge payment",
        lambda: ctx.durable_execute(
            payments.charge,
            order_id,
            order["amount_cents"],
            idempotency_key=key,
            reconciler=reconcile,
        ),
    )
    return {
        "order_id": order_id,
        "reservation_id": reservation["reservation_id"],
        "charge_id": receipt["charge_id"],
        "amount_cents": receipt["amount_cents"],
        "worker_pid": os.getpid(),
    }
