"""A worker process for the crash tests: runs, or recovers, one "charge" action.

    python _crash_worker.py run|recover BOOTSTRAP TOPIC DIR [--reconciler] [--async]
                            [--hang pay|after-pay] [--partitions N]

The action pays (a side effect: one line appended to ``DIR/ledger`` per real payment), then
ships, and returns ``{"order", "receipt", "shipped"}``. The reconciler (``--reconciler``)
looks the payment up in the ledger by its call id and appends a line to ``DIR/lookups``.
``--hang`` makes the first run stop for good at a point: ``pay`` inside the payment, after
the side effect (so after the PENDING slot was persisted, before the outcome is);
``after-pay`` once the payment's outcome is journaled, before the action completes. It
touches ``DIR/<point>`` first so the test knows when to SIGKILL. ``run`` prints the
action's output, ``recover`` the recovery report, as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

from actionstate.client import DurableContext, KafkaStore, Worker


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _hang(folder: Path, point: str) -> None:
    (folder / point).touch()
    threading.Event().wait()  # until SIGKILL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "recover"])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--reconciler", action="store_true")
    parser.add_argument("--async", dest="is_async", action="store_true")
    parser.add_argument("--hang", choices=["pay", "after-pay"])
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    folder: Path = args.dir
    ledger = folder / "ledger"
    lookups = folder / "lookups"

    def pay(order: int, call_id: str) -> str:
        _append(ledger, call_id)
        if args.hang == "pay":
            _hang(folder, "pay")
        return f"receipt-{order}"

    def lookup(order: int, call_id: str) -> str:
        _append(lookups, call_id)
        paid = ledger.read_text().split() if ledger.exists() else []
        if call_id not in paid:
            raise LookupError(f"no payment {call_id}")
        return f"receipt-{order}"

    def ship(order: int) -> str:
        return f"shipped-{order}"

    store = KafkaStore(
        bootstrap_servers=args.bootstrap, topic=args.topic, partitions=args.partitions
    )
    worker = Worker(store)

    if args.is_async:

        @worker.action("charge")
        async def charge_async(data: Any, ctx: DurableContext) -> Any:
            order, call_id = data["order"], ctx.next_call_id
            rec = (lambda: lookup(order, call_id)) if args.reconciler else None
            receipt = await ctx.durable_execute_async(pay, order, call_id, reconciler=rec)
            if args.hang == "after-pay":
                _hang(folder, "after-pay")
            shipped = await ctx.durable_execute_async(ship, order)
            return {"order": order, "receipt": receipt, "shipped": shipped}

    else:

        @worker.action("charge")
        def charge(data: Any, ctx: DurableContext) -> Any:
            order, call_id = data["order"], ctx.next_call_id
            rec = (lambda: lookup(order, call_id)) if args.reconciler else None
            receipt = ctx.durable_execute(pay, order, call_id, reconciler=rec)
            if args.hang == "after-pay":
                _hang(folder, "after-pay")
            shipped = ctx.durable_execute(ship, order)
            return {"order": order, "receipt": receipt, "shipped": shipped}

    with store:
        if args.mode == "run":  # a fresh topic: nothing to rebuild
            print(json.dumps(worker.submit("order-42", {"order": 42}, seq=1)))
        else:
            report = worker.recover()
            print(
                json.dumps(
                    {
                        "resumed": report.actions_resumed,
                        "completed": report.actions_completed,
                        "replayed": report.calls_replayed,
                        "reconciled": report.calls_reconciled,
                        "executed": report.calls_executed,
                        "reexecuted": report.calls_reexecuted,
                        "failures": [f.message for f in report.failures],
                        "unknown": [u.state_key for u in report.unknown_actions],
                    }
                )
            )


if __name__ == "__main__":
    main()
