"""An app that builds its own store from the environment (``KafkaStore()`` reads
``KAFKA_BOOTSTRAP_SERVERS``, ``ACTIONSTATE_TOPIC``, ...): ``actionstate worker`` must use
that store, and refuse flags that disagree with it."""

from __future__ import annotations

from actionstate.client import KafkaStore, Worker
from tests.fleet.ledger_app import charge

__all__ = ["worker"]

worker = Worker(KafkaStore())
worker.register("charge", charge)
