"""The worker process ``actionstate demo`` launches (twice: it is killed, then recovers).

    python -m actionstate.service.demo._worker run|recover --sidecar URL --dir RUN_DIR
                                               [--crash-after-charge]

It journals through the sidecar (``SidecarStore``), never to Kafka directly, with JSON
payloads. Its one
action, ``charge``, reserves stock (a completion-only durable call) and then charges the
order through a durable call with a reconciler, passing ``ctx.next_call_id`` to the payment
provider as the idempotency key. With ``--crash-after-charge`` the process stops for good
right after the provider booked the charge (the PENDING slot is journaled, the outcome is
not) and touches ``RUN_DIR/charged.marker`` so the demo knows when to SIGKILL it.

Everything it has to say goes to stdout as JSON lines: ``{"event": ..., ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from actionstate.client import CallCounts, DurableContext, SidecarStore, Worker
from actionstate.serde import JSON_CODEC
from actionstate.service.demo._world import CRASH_MARKER, LEDGER, STOCK, PaymentProvider, Warehouse

__all__ = ["ACTION", "main"]

ACTION = "charge"

T = TypeVar("T")


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _how(before: CallCounts, after: CallCounts) -> str:
    """How the durable call that moved ``before`` to ``after`` was resolved."""
    for name in ("replayed", "reconciled", "reexecuted", "executed"):
        if getattr(after, name) > getattr(before, name):
            return name
    return "unknown"


def _step(ctx: DurableContext, name: str, call: Callable[[], T]) -> T:
    """Make one durable call and report how it was resolved (replayed, reconciled...)."""
    before = dataclasses.replace(ctx.counts)
    call_id = ctx.next_call_id
    result = call()
    _emit("call", step=name, call_id=call_id, how=_how(before, ctx.counts), result=result)
    return result


def _hang_forever(marker: Path) -> Callable[[dict[str, Any]], None]:
    def hang(receipt: dict[str, Any]) -> None:
        _emit("charged", receipt=receipt)
        marker.touch()
        threading.Event().wait()  # the demo SIGKILLs the process here

    return hang


def build_worker(store: SidecarStore, run_dir: Path, *, crash_after_charge: bool) -> Worker:
    """The demo's worker over ``store``, with the ``charge`` action registered."""
    warehouse = Warehouse(run_dir / STOCK)
    payments = (
        PaymentProvider(run_dir / LEDGER, after_charge=_hang_forever(run_dir / CRASH_MARKER))
        if crash_after_charge
        else PaymentProvider(run_dir / LEDGER)
    )
    worker = Worker(store)  # outcomes in the store's payload codec

    @worker.action(ACTION)
    def charge(order: Any, ctx: DurableContext) -> Any:
        order_id: str = order["order_id"]
        reservation = _step(
            ctx,
            "reserve stock",
            lambda: ctx.durable_execute(
                warehouse.reserve, order_id, order["sku"], order["quantity"]
            ),
        )
        key = ctx.next_call_id  # stable across restarts: the provider's idempotency key

        def reconcile() -> dict[str, Any]:
            receipt = payments.lookup(key)
            _emit("reconciler", idempotency_key=key, answer=receipt)
            return receipt

        receipt = _step(
            ctx,
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
        }

    return worker


def main(argv: list[str] | None = None) -> int:
    """Run or recover the demo's order; prints JSON lines; exit code 0 when it completed."""
    parser = argparse.ArgumentParser(prog="python -m actionstate.service.demo._worker")
    parser.add_argument("mode", choices=["run", "recover"])
    parser.add_argument("--sidecar", required=True, help="the sidecar's base URL")
    parser.add_argument("--dir", type=Path, required=True, help="the demo run's folder")
    parser.add_argument("--agent-key", default="order-42")
    parser.add_argument("--order", default="{}", help="the order, a JSON object (run)")
    parser.add_argument("--crash-after-charge", action="store_true")
    args = parser.parse_args(argv)

    # JSON payloads (not cloudpickle): inspect can show the receipts without unpickling.
    with SidecarStore(args.sidecar, payload_codec=JSON_CODEC.name) as store:
        worker = build_worker(store, args.dir, crash_after_charge=args.crash_after_charge)
        if args.mode == "run":
            order = json.loads(args.order)
            _emit("submit", agent_key=args.agent_key, order=order)
            output = worker.submit(args.agent_key, order, seq=1)
            _emit("completed", output=output)
            return 0
        report = worker.recover()
        _emit(
            "recovered",
            resumed=report.actions_resumed,
            completed=report.actions_completed,
            replayed=report.calls_replayed,
            reconciled=report.calls_reconciled,
            executed=report.calls_executed,
            reexecuted=report.calls_reexecuted,
            failures=[f"{f.state_key}: {f.message}" for f in report.failures],
            unknown=[u.state_key for u in report.unknown_actions],
        )
        # Idempotent for a completed state: returns the stored output, runs nothing.
        output = worker.submit(args.agent_key, json.loads(args.order), seq=1)
        _emit("completed", output=output)
        return 0 if report.ok and report.actions_completed == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
