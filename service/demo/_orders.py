"""The orders ``actionstate demo`` sends, and the names its processes share.

``AGENT_KEY``'s order is the one whose payment hangs; the others are chosen by the project's
partitioner so that every partition of the state topic holds at least one, and so both
workers of the fleet have orders to run.
"""

from __future__ import annotations

from typing import Any

from actionstate.serde import partition_for

__all__ = ["ACTION", "AGENT_KEY", "ORDER", "RUN_DIR_ENV", "other_orders"]

AGENT_KEY = "order-42"
ACTION = "charge"
"""The action the demo's worker registers and every request names."""
RUN_DIR_ENV = "ACTIONSTATE_DEMO_DIR"
"""Where the demo tells its worker processes the run folder (the books) is."""

ORDER: dict[str, Any] = {
    "order_id": AGENT_KEY,
    "sku": "espresso-beans-1kg",
    "quantity": 2,
    "amount_cents": 4200,
}

_SKUS = (("filter-papers-100", 1, 350), ("milk-frother", 1, 2900), ("grinder-burrs", 2, 1800))


def other_orders(partitions: int, count: int = 5) -> list[dict[str, Any]]:
    """At least ``count`` orders besides ``ORDER``, at least one in every partition."""
    chosen: list[dict[str, Any]] = []
    covered: set[int] = set()
    n = 0
    while len(chosen) < count or len(covered) < partitions:
        n += 1
        key = f"order-{n}"
        partition = partition_for(key, partitions)
        if key == AGENT_KEY or (len(chosen) >= count and partition in covered):
            continue
        covered.add(partition)
        sku, quantity, cents = _SKUS[len(chosen) % len(_SKUS)]
        chosen.append(
            {"order_id": key, "sku": sku, "quantity": quantity, "amount_cents": cents * quantity}
        )
    return chosen
