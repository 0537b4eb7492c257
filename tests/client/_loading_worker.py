"""A worker file the loading tests copy, then load as a script, with ``-m`` or by import.

    python app.py run|recover BOOTSTRAP TOPIC DIR [--hang paid]
    python -m app ...    python -c "import sys, app; app.main(sys.argv[1:])" ...

Its action pays (one line appended to ``DIR/ledger`` per real payment) through a durable
call of the module-level ``pay``, whose function id names this file's module. ``--hang
paid`` stops the first run for good once the payment is journaled, before the action
completes, touching ``DIR/paid`` first so the test knows when to SIGKILL. ``recover``
prints the recovery report as one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from actionstate.client import DurableContext, KafkaStore, Worker


def pay(ledger: str, order: int) -> str:
    with Path(ledger).open("a") as f:
        f.write(f"{order}\n")
        f.flush()
        os.fsync(f.fileno())
    return f"receipt-{order}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "recover"])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--hang", choices=["paid"])
    args = parser.parse_args(argv)
    folder: Path = args.dir
    store = KafkaStore(bootstrap_servers=args.bootstrap, topic=args.topic, partitions=4)
    worker = Worker(store)

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        receipt = ctx.durable_execute(pay, str(folder / "ledger"), data["order"])
        if args.hang == "paid":
            (folder / "paid").touch()
            threading.Event().wait()  # until SIGKILL
        return {"receipt": receipt}

    with store:
        if args.mode == "run":
            print(json.dumps(worker.submit("order-42", {"order": 42}, seq=1)))
        else:
            report = worker.recover()
            failures = [f.message for f in report.failures]
            calls = dataclasses.asdict(report.calls)
            print(
                json.dumps({"completed": report.actions_completed, "failures": failures, **calls})
            )


if __name__ == "__main__":
    main(sys.argv[1:])
