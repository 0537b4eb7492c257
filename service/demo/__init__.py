"""``actionstate demo``: a worker killed mid-payment, a new one recovering exactly once.

``run_demo`` drives the whole story; the payment provider and the warehouse (``_world``)
and the invariants the demo judges (``_checks``) are public so tests audit the same books.
The worker process runs as ``python -m actionstate.service.demo._worker``.
"""

from actionstate.service.demo._checks import AGENT_KEY, Check, Seen, judge
from actionstate.service.demo._run import ORDER, DemoOptions, DemoResult, run_demo
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
