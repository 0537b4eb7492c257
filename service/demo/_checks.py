"""What ``actionstate demo`` verifies: the invariants, judged from the books and the evidence.

The payment provider's and the warehouse's books (files in the run folder) say what
really happened in the outside world; the events the workers printed, the crashed
worker's exit status and the records ``inspect`` read say what the journal did.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from actionstate.service.demo._world import LEDGER, STOCK, PaymentProvider, Warehouse

__all__ = ["AGENT_KEY", "Check", "Seen", "checks_table", "find_event", "judge", "parse_events"]

AGENT_KEY = "order-42"
_PAYMENT_FUNCTION = "PaymentProvider.charge"


@dataclass(frozen=True)
class Check:
    """One invariant the demo verifies."""

    name: str
    expected: str
    actual: str
    ok: bool


@dataclass
class Seen:
    """Evidence gathered along the way, checked at the end."""

    kill_status: int | None = None
    pending_function: str | None = None
    crash_events: list[dict[str, Any]] = field(default_factory=list)
    recovery_events: list[dict[str, Any]] = field(default_factory=list)
    recovery_exit: int | None = None
    final_records: list[dict[str, Any]] = field(default_factory=list)


def parse_events(out: bytes) -> list[dict[str, Any]]:
    """The ``{"event": ...}`` JSON lines a demo worker printed; other lines are skipped."""
    events: list[dict[str, Any]] = []
    for line in out.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and "event" in value:
                events.append(value)
    return events


def find_event(events: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The last event of ``kind``, or None."""
    return next((e for e in reversed(events) if e.get("event") == kind), None)


def judge(run_dir: Path, seen: Seen) -> list[Check]:
    """The invariants, judged from the books in ``run_dir`` and what the demo saw."""
    payments = PaymentProvider(run_dir / LEDGER)
    charges = payments.charges(AGENT_KEY)
    reservations = Warehouse(run_dir / STOCK).reservations(AGENT_KEY)
    report = find_event(seen.recovery_events, "recovered") or {}
    done = find_event(seen.recovery_events, "completed") or {}
    output = done.get("output") or {}
    ours = [r for r in seen.final_records if r.get("kind") == "state"]
    last = max(ours, key=lambda r: int(r.get("offset", -1)), default={})

    def check(name: str, expected: object, actual: object) -> Check:
        return Check(name, str(expected), str(actual), expected == actual)

    booked = [c["charge_id"] for c in charges]
    return [
        check("worker A ended by SIGKILL", -9, seen.kill_status),
        check("payment PENDING after the crash", True, _is_payment(seen.pending_function)),
        check("charges booked", 1, len(charges)),
        check("charge requests received", 1, len(payments.requests())),
        check("reconciler lookups", 1, len(payments.lookups())),
        check("calls reconciled", 1, report.get("reconciled")),
        check("stock reservations", 1, len(reservations)),
        check("calls replayed", 1, report.get("replayed")),
        check("actions completed", 1, report.get("completed")),
        check("worker B exit code", 0, seen.recovery_exit),
        check(
            "output's charge",
            booked[0] if len(booked) == 1 else booked,
            output.get("charge_id"),
        ),
        check(
            "last record on the topic",
            "completed",
            "completed"
            if last.get("completed") and not last.get("pending_calls")
            else f"completed={last.get('completed')}, pending={last.get('pending_calls')}",
        ),
    ]


def _is_payment(function_id: str | None) -> bool:
    return function_id is not None and function_id.endswith(_PAYMENT_FUNCTION)


def checks_table(checks: list[Check]) -> Table:
    """The checks as a rich table: mark, invariant, expected, actual."""
    table = Table(title="checks", title_justify="left")
    for column in ("", "invariant", "expected", "actual"):
        table.add_column(column)
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
        table.add_row(mark, c.name, escape(c.expected), escape(c.actual))
    return table
