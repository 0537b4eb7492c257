"""What ``actionstate demo`` verifies: the invariants, judged from the books and the evidence.

The payment provider's and the warehouse's books (files in the run folder) say what
really happened in the outside world; the workers' logs, the killed worker's exit status
and the states the sidecar served say what the fleet and the journal did.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from actionstate.service.demo._orders import AGENT_KEY
from actionstate.service.demo._world import LEDGER, STOCK, PaymentProvider, Warehouse

__all__ = ["Check", "Seen", "checks_table", "judge", "parse_events"]

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
    """Evidence gathered along the way, checked at the end.

    Workers are named ("worker A"); ``pids`` maps each name to its process id.
    """

    orders: list[str] = field(default_factory=list)
    """The agent keys of the orders sent, ``AGENT_KEY`` included."""
    pids: dict[str, int] = field(default_factory=dict)
    hung_partition: int | None = None
    killed: str | None = None
    kill_status: int | None = None
    survivor: str | None = None
    pending_function: str | None = None
    """The durable call the sidecar showed PENDING after the kill."""
    pending_offset: int | None = None
    """Where that PENDING state's record sits in its partition."""
    takeover: list[tuple[str, list[int]]] = field(default_factory=list)
    """The survivor's rebalances logged after the kill: (kind, partitions)."""
    final_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each order's state as the sidecar served it at the end (agent key → state)."""
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each order's output as read back from the state topic (agent key → output)."""
    survivor_exit: int | None = None
    """The survivor's exit code after SIGTERM."""


def parse_events(out: bytes) -> list[dict[str, Any]]:
    """The ``{"event": ...}`` JSON lines a demo worker printed; other lines are skipped."""
    events: list[dict[str, Any]] = []
    for line in out.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and "event" in value:
                events.append(value)
    return events


def _check(name: str, expected: object, actual: object) -> Check:
    return Check(name, str(expected), str(actual), expected == actual)


def _once_each(name: str, orders: list[str], counted: Iterable[str]) -> Check:
    """Every order exactly once in ``counted`` (agent keys, one per occurrence)."""
    counts = Counter(counted)
    odd = [f"{key}: {counts[key]}" for key in orders if counts[key] != 1]
    odd += [f"{key} (not ours): {n}" for key, n in counts.items() if key not in orders]
    return Check(name, "1 each", ", ".join(odd) if odd else "1 each", not odd)


def _agent_key(idempotency_key: str) -> str:
    # A call id starts with its state key, which starts with the agent key and a "_".
    return idempotency_key.split("_", 1)[0]


def judge(run_dir: Path, seen: Seen) -> list[Check]:
    """The invariants, judged from the books in ``run_dir`` and what the demo saw."""
    payments = PaymentProvider(run_dir / LEDGER)
    charges = payments.charges()
    lookups = Counter(_agent_key(k) for k in payments.lookups())
    reservations = Warehouse(run_dir / STOCK).reservations()
    orders, n = seen.orders, len(seen.orders)
    done = [k for k in orders if _completed(seen.final_states.get(k))]
    others = sum(n for key, n in lookups.items() if key != AGENT_KEY)
    booked = [c["charge_id"] for c in charges if c["order_id"] == AGENT_KEY]
    output = seen.outputs.get(AGENT_KEY) or {}
    killed, survivor = seen.killed or "?", seen.survivor or "?"
    return [
        _check(f"{killed} ended by SIGKILL", -9, seen.kill_status),
        _check("payment PENDING after the kill", True, _is_payment(seen.pending_function)),
        _check("orders completed", f"{n} of {n}", f"{len(done)} of {n}"),
        _once_each("charges booked per order", orders, (c["order_id"] for c in charges)),
        _once_each("charge requests per order", orders, map(_agent_key, payments.requests())),
        _once_each("stock reservations per order", orders, (r["order_id"] for r in reservations)),
        _check(f"reconciler lookups for {AGENT_KEY}", 1, lookups[AGENT_KEY]),
        _check("reconciler lookups for the other orders", 0, others),
        _takeover(seen, survivor),
        _check(f"{AGENT_KEY} completed by", _named(seen, survivor), _completer(seen, output)),
        _after_the_kill(seen),
        _check(
            f"{AGENT_KEY}'s output: the charge booked",
            booked[0] if len(booked) == 1 else booked,
            output.get("charge_id"),
        ),
        _check(f"{survivor} exit code on SIGTERM", 0, seen.survivor_exit),
    ]


def _completed(state: dict[str, Any] | None) -> bool:
    return state is not None and bool(state.get("completed")) and not state.get("pending_calls")


def _is_payment(function_id: str | None) -> bool:
    return function_id is not None and function_id.endswith(_PAYMENT_FUNCTION)


def _named(seen: Seen, name: str) -> str:
    pid = seen.pids.get(name)
    return name if pid is None else f"{name} (pid {pid})"


def _completer(seen: Seen, output: dict[str, Any]) -> str:
    pid = output.get("worker_pid")
    names = [name for name, p in seen.pids.items() if p == pid]
    return _named(seen, names[0]) if names else f"pid {pid}"


def _takeover(seen: Seen, survivor: str) -> Check:
    p = seen.hung_partition
    assigned = [parts for kind, parts in seen.takeover if kind == "assigned"]
    taken = [parts for parts in assigned if p in parts]
    actual = f"assigned {taken[0]}" if taken else f"not assigned (logged: {seen.takeover})"
    return Check(
        f"partition {p} taken over by {survivor} (its log)",
        "assigned after the kill",
        actual,
        bool(taken),
    )


def _after_the_kill(seen: Seen) -> Check:
    state = seen.final_states.get(AGENT_KEY) or {}
    offset, pending = state.get("offset"), seen.pending_offset
    ok = (
        _completed(state)
        and isinstance(offset, int)
        and isinstance(pending, int)
        and offset > pending
    )
    status = "" if _completed(state) else f" (completed={state.get('completed')})"
    return Check(
        f"{AGENT_KEY}'s completed state written after the kill",
        f"offset > {pending} (the PENDING one's)",
        f"offset {offset}{status}",
        ok,
    )


def checks_table(checks: list[Check]) -> Table:
    """The checks as a rich table: mark, invariant, expected, actual."""
    table = Table(title="checks", title_justify="left")
    for column in ("", "invariant", "expected", "actual"):
        table.add_column(column)
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
        table.add_row(mark, c.name, escape(c.expected), escape(c.actual))
    return table
