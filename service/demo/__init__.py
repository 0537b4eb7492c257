"""``actionstate demo``: a fleet of two workers; one is killed mid-payment, the other takes
over its partition and reconciles, and every order is charged exactly once.

``run_demo`` drives the whole story; the payment provider and the warehouse (``_world``)
and the invariants the demo judges (``_checks``) are public so tests audit the same books.
The workers run ``actionstate worker actionstate.service.demo._worker:worker``.
"""

from actionstate.service.demo._checks import Check, Seen, judge
from actionstate.service.demo._orders import AGENT_KEY, ORDER
from actionstate.service.demo._run import DemoOptions, DemoResult, run_demo
from actionstate.service.demo._world import PaymentProvider, Warehouse

__all__ = [
    "AGENT_KEY",
    "ORDER",
    "Check",
    "DemoOptions",
    "DemoResult",
    "PaymentProvider",
    "Seen",
    "Warehouse",
    "judge",
    "run_demo",
]
