"""What a worker fleet member measures, as Prometheus metrics in a registry of its own
(the service exposes it over HTTP; the client only counts)."""

from __future__ import annotations

import contextlib
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge

from actionstate.client._durable import CallCounts

__all__ = ["FleetMetrics"]

_CALL_OUTCOMES = ("replayed", "reconciled", "executed", "reexecuted", "diverged", "unsettled")


class FleetMetrics:
    """The metrics of one worker loop."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.totals: Tally[str] = Tally()
        """Plain counts for the progress line: actions by outcome, ``dead_letters``, ``fenced``."""
        r = self.registry
        self.assigned = Gauge(
            "actionstate_worker_assigned_partitions",
            "Request partitions this worker owns.",
            registry=r,
        )
        self.lag = Gauge(
            "actionstate_worker_lag_records",
            "Requests not yet read, per owned partition.",
            ["partition"],
            registry=r,
        )
        self.in_flight = Gauge(
            "actionstate_worker_actions_in_flight",
            "Requests taken and not finished (running or waiting for their key).",
            registry=r,
        )
        self.actions = Counter(
            "actionstate_worker_actions",
            "Requests finished, by outcome: completed, failed, unsettled (a reconciler said "
            "ReconcileLater), redelivered (found completed, not run again), abandoned "
            "(partition lost or shutdown before finishing).",
            ["outcome"],
            registry=r,
        )
        self.recovered = Counter(
            "actionstate_worker_recovered_actions",
            "Unfinished actions found when partitions were assigned, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.calls = Counter(
            "actionstate_worker_calls",
            "Durable calls of the actions run, by how they were resolved.",
            ["outcome"],
            registry=r,
        )
        self.rebalances = Counter(
            "actionstate_worker_rebalances",
            "Partitions assigned, revoked or lost.",
            ["kind"],
            registry=r,
        )
        self.fenced = Counter(
            "actionstate_worker_fenced",
            "Partitions whose writes the broker refused because a newer owner claimed them.",
            registry=r,
        )
        self.dead_letters = Counter(
            "actionstate_worker_dead_letters",
            "Bad requests written to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.commit_failures = Counter(
            "actionstate_worker_commit_failures",
            "Offset commits the group refused.",
            registry=r,
        )

    def action_done(self, outcome: str, n: int = 1) -> None:
        """Count ``n`` requests finished with ``outcome``."""
        self.actions.labels(outcome).inc(n)
        self.totals[outcome] += n

    def dead_letter(self, reason: str) -> None:
        """Count a bad request written to the dead-letter topic."""
        self.dead_letters.labels(reason).inc()
        self.totals["dead_letters"] += 1

    def fenced_partition(self) -> None:
        """Count a partition whose writes the broker refused."""
        self.fenced.inc()
        self.totals["fenced"] += 1

    def set_lag(self, lag: dict[int, int]) -> None:
        """Record the lag of the owned partitions."""
        for p, n in lag.items():
            self.lag.labels(str(p)).set(n)

    def forget_partitions(self, partitions: list[int]) -> None:
        """Drop the per-partition series of partitions no longer owned."""
        for p in partitions:
            with contextlib.suppress(KeyError):  # never had a lag sample
                self.lag.remove(str(p))

    def count_calls(self, counts: CallCounts) -> None:
        """Add one action run's call counts."""
        for outcome in _CALL_OUTCOMES:
            value = getattr(counts, outcome)
            if value:
                self.calls.labels(outcome).inc(value)
