"""The sidecar's Prometheus metrics, kept in a registry of their own per app."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["SidecarMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SidecarMetrics:
    """Counters and gauges of one sidecar.

    Each app gets its own registry, so several sidecars in one process (tests) never share
    or clash over series.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records_read = Counter(
            "actionstate_records_read",
            "Records read from the state topic (states, tombstones and bad records).",
            registry=self.registry,
        )
        self.bad_records = Counter(
            "actionstate_bad_records",
            "Records of the state topic that could not be decoded; skipped.",
            registry=self.registry,
        )
        self.tombstones_read = Counter(
            "actionstate_tombstones_read",
            "Tombstones read from the state topic.",
            registry=self.registry,
        )
        self.states_live = Gauge(
            "actionstate_states_live",
            "State keys in the materialized view.",
            registry=self.registry,
        )
        self.states_pending = Gauge(
            "actionstate_states_pending",
            "Live states with at least one PENDING call.",
            registry=self.registry,
        )
        self.states_incomplete = Gauge(
            "actionstate_states_incomplete",
            "Live states whose action has not completed.",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "actionstate_consumer_lag",
            "Records between the view's position and the topic's high watermarks.",
            registry=self.registry,
        )
        self.ready = Gauge(
            "actionstate_ready",
            "1 once the view caught up with the topic, else 0.",
            registry=self.registry,
        )
        self.write_latency = Histogram(
            "actionstate_write_latency_seconds",
            "Time from a write request to the broker's acknowledgement.",
            ["op"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_errors = Counter(
            "actionstate_http_client_errors",
            "Requests refused with a 4xx answer.",
            ["status"],
            registry=self.registry,
        )

    def watch_view(
        self,
        *,
        live: Callable[[], float],
        pending: Callable[[], float],
        incomplete: Callable[[], float],
        lag: Callable[[], float],
        ready: Callable[[], float],
    ) -> None:
        """Make the view gauges read their values at scrape time."""
        self.states_live.set_function(live)
        self.states_pending.set_function(pending)
        self.states_incomplete.set_function(incomplete)
        self.consumer_lag.set_function(lag)
        self.ready.set_function(ready)
