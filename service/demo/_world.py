"""The outside world of ``actionstate demo``: a payment provider and a warehouse, in files.

Both are small simulated external systems that keep their books in a JSON file, so the
demo (a separate process) can audit what really happened after the worker crashed. The
payment provider is honest about idempotency keys: a charge request repeating a key gets
the first charge's receipt back, and ``lookup`` answers "did the charge with key X go
through?", which is the question a reconciler asks.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from actionstate.service._process import folder_lock

__all__ = ["CRASH_MARKER", "LEDGER", "STOCK", "PaymentProvider", "Warehouse"]

# The files of a run folder: the books of the two systems, and the marker the crashing
# worker leaves once the charge is booked (the demo SIGKILLs it when it appears).
CRASH_MARKER = "charged.marker"
LEDGER = "payments.json"
STOCK = "warehouse.json"

Record = dict[str, Any]


class _Books:
    """A JSON document in a file, updated atomically under a lock (several processes)."""

    def __init__(self, path: Path, lists: tuple[str, ...]) -> None:
        self.path = path
        self._lists = lists

    def read(self) -> dict[str, list[Any]]:
        try:
            doc: dict[str, list[Any]] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            doc = {}
        for name in self._lists:
            doc.setdefault(name, [])
        return doc

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, list[Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.path.with_name(f".{self.path.name}.lock")):
            doc = self.read()
            yield doc
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            with tmp.open("w", encoding="utf-8") as out:
                json.dump(doc, out, indent=2)
                out.write("\n")
                out.flush()
                # The books must survive the SIGKILL that follows: that is the point.
                os.fsync(out.fileno())
            tmp.replace(self.path)


def _quiet(_receipt: Record) -> None:
    pass


class PaymentProvider:
    """A payment provider whose ledger is the JSON file ``path``.

    ``after_charge`` runs once a new charge is booked, before the receipt is returned: the
    demo uses it to crash the worker at the worst moment (money taken, answer lost).
    """

    def __init__(self, path: Path, *, after_charge: Callable[[Record], None] = _quiet) -> None:
        self._books = _Books(path, ("charges", "requests", "lookups"))
        self._after_charge = after_charge

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._books.path

    def charge(self, order_id: str, amount_cents: int, *, idempotency_key: str) -> Record:
        """Charge ``amount_cents`` for ``order_id``; a repeated key returns the first receipt."""
        with self._books.update() as books:
            books["requests"].append(idempotency_key)
            for charge in books["charges"]:
                if charge["idempotency_key"] == idempotency_key:
                    return _receipt(charge)
            charge = {
                "charge_id": f"ch_{uuid.uuid4().hex[:12]}",
                "order_id": order_id,
                "amount_cents": amount_cents,
                "idempotency_key": idempotency_key,
            }
            books["charges"].append(charge)
        receipt = _receipt(charge)
        self._after_charge(receipt)
        return receipt

    def lookup(self, idempotency_key: str) -> Record:
        """The receipt of the charge made with ``idempotency_key``; LookupError if none."""
        with self._books.update() as books:
            books["lookups"].append(idempotency_key)
            for charge in books["charges"]:
                if charge["idempotency_key"] == idempotency_key:
                    return _receipt(charge)
        msg = f"the payment provider has no charge with idempotency key {idempotency_key!r}"
        raise LookupError(msg)

    def charges(self, order_id: str | None = None) -> list[Record]:
        """The booked charges (of ``order_id`` when given)."""
        charges: list[Record] = self._books.read()["charges"]
        return [c for c in charges if order_id is None or c["order_id"] == order_id]

    def requests(self) -> list[str]:
        """The idempotency key of every charge request received, duplicates included."""
        return list(self._books.read()["requests"])

    def lookups(self) -> list[str]:
        """The idempotency key of every lookup received."""
        return list(self._books.read()["lookups"])


def _receipt(charge: Record) -> Record:
    return {
        "charge_id": charge["charge_id"],
        "order_id": charge["order_id"],
        "amount_cents": charge["amount_cents"],
        "status": "captured",
    }


class Warehouse:
    """A warehouse whose stock reservations are kept in the JSON file ``path``."""

    def __init__(self, path: Path) -> None:
        self._books = _Books(path, ("reservations",))

    def reserve(self, order_id: str, sku: str, quantity: int) -> Record:
        """Reserve ``quantity`` of ``sku`` for ``order_id``; every call books a reservation."""
        reservation = {
            "reservation_id": f"rs_{uuid.uuid4().hex[:12]}",
            "order_id": order_id,
            "sku": sku,
            "quantity": quantity,
        }
        with self._books.update() as books:
            books["reservations"].append(reservation)
        return reservation

    def reservations(self, order_id: str | None = None) -> list[Record]:
        """The booked reservations (of ``order_id`` when given)."""
        booked: list[Record] = self._books.read()["reservations"]
        return [r for r in booked if order_id is None or r["order_id"] == order_id]
