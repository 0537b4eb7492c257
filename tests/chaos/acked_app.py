"""The app the chaos tests run: ``actionstate worker tests.chaos.acked_app:worker``.

The ledger app's actions (``charge``, ``charge-async``: a reconciled ``pay``, a ``ship``;
see tests/fleet/ledger_app.py) over an :class:`AckedKafkaStore` built from the environment
(``KAFKA_BOOTSTRAP_SERVERS``, ``ACTIONSTATE_TOPIC``, ``ACTIONSTATE_PARTITIONS``, ...) that
logs each acknowledged write to ``$CHAOS_ACK_DIR/acked-<pid>.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from actionstate.client import Worker
from tests.chaos._acked import AckedKafkaStore, ack_log_for
from tests.fleet.ledger_app import charge, charge_async

__all__ = ["AckLogSettings", "worker"]


class AckLogSettings(BaseSettings):
    """Where the app logs acknowledged writes (``CHAOS_ACK_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="CHAOS_")

    ack_dir: Path


worker = Worker(AckedKafkaStore(ack_log=ack_log_for(AckLogSettings().ack_dir)))  # type: ignore[call-arg]
worker.register("charge", charge)
worker.register("charge-async", charge_async)
