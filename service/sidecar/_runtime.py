"""The sidecar's moving parts, started and stopped together: broker, journal, view, follower."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

from actionstate.client.kafka import KafkaAdmin
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from actionstate.service.sidecar._follower import ViewFollower
from actionstate.service.sidecar._journal import Journal
from actionstate.service.sidecar._metrics import SidecarMetrics
from actionstate.service.sidecar._readiness import Readiness
from actionstate.service.sidecar._settings import SidecarSettings, readable_by_others
from actionstate.service.sidecar._view import MaterializedView

__all__ = ["DEFAULT_PARTITIONS", "Sidecar"]

DEFAULT_PARTITIONS = 64
_log = logging.getLogger("actionstate.service.sidecar")


def _quiet(_line: str) -> None:
    pass


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc only; elsewhere nothing).

    The first read of the topic passes every record through librdkafka's fetch buffers,
    which glibc keeps in per-thread arenas once freed: measured on 100,000 states, the
    process holds ~1,750 B per state after the catch-up, ~800 B after this call.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc's, if glibc
    except (OSError, AttributeError):
        return  # not glibc
    trim(0)


class Sidecar:
    """Owns the topic and its materialized view.

    ``start()`` starts the local broker when no bootstrap servers are configured, makes
    sure the compacted topic exists (``KafkaStore``'s rules), and starts following it;
    it returns at once, while the view catches up (``follower.ready`` says when).
    """

    def __init__(
        self, settings: SidecarSettings, *, progress: Callable[[str], None] = _quiet
    ) -> None:
        self.settings = settings
        self._progress = progress
        self.metrics = SidecarMetrics()
        self.view = MaterializedView(
            secret=(
                None
                if settings.signing_secret is None
                else settings.signing_secret.get_secret_value().encode()
            ),
            metrics=self.metrics,
            tombstone_retention_s=settings.tombstone_retention_s,
        )
        self._journal: Journal | None = None
        self._follower: ViewFollower | None = None
        self._readiness: Readiness | None = None
        self._broker: LocalKafka | None = None
        self.bootstrap_servers = settings.bootstrap_servers or ""

    @property
    def journal(self) -> Journal:
        """The write path (after ``start``)."""
        if self._journal is None:
            raise RuntimeError("the sidecar is not started")
        return self._journal

    @property
    def follower(self) -> ViewFollower:
        """The thread keeping the view current (after ``start``)."""
        if self._follower is None:
            raise RuntimeError("the sidecar is not started")
        return self._follower

    @property
    def readiness(self) -> Readiness:
        """The readiness rule and its broker probe (after ``start``)."""
        if self._readiness is None:
            raise RuntimeError("the sidecar is not started")
        return self._readiness

    @property
    def secret(self) -> bytes | None:
        """The signing secret of the sidecar, if any."""
        if self.settings.signing_secret is None:
            return None
        return self.settings.signing_secret.get_secret_value().encode()

    def start(self) -> None:
        """Start everything; on failure stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        settings = self.settings
        if not self.bootstrap_servers:
            # The folder `actionstate kafka start` uses too: a broker started there is reused.
            broker = LocalKafka(LocalKafkaSettings(dir=settings.data_dir))
            already = broker.status().running
            self._progress(
                "no bootstrap servers configured: "
                + ("using" if already else "starting")
                + f" the local Kafka broker in {settings.data_dir}"
            )
            self.bootstrap_servers = broker.start(self._progress)
            if not already:
                self._broker = broker  # ours to stop
        partitions = settings.partitions
        if partitions is None:
            probe = settings.store_settings(self.bootstrap_servers, DEFAULT_PARTITIONS)
            partitions = KafkaAdmin(probe).partition_count(settings.topic) or DEFAULT_PARTITIONS
        store_settings = settings.store_settings(self.bootstrap_servers, partitions)
        self._journal = Journal(store_settings)
        self._follower = ViewFollower(
            store_settings, settings.topic, self.view, on_ready=release_free_memory
        )
        # End offsets through the admin client, which waits out a new topic's leader election.
        self._follower.start(self._journal.recovery_marker())
        follower = self._follower
        readiness = self._readiness = Readiness(
            store_settings, follower, max_lag_s=settings.ready_max_lag_s
        )
        readiness.start()
        self.metrics.watch_view(
            live=lambda: len(self.view),
            pending=lambda: self.view.pending_count,
            incomplete=lambda: self.view.incomplete_count,
            lag=follower.lag,
            ready=lambda: float(readiness.verdict().ready),
        )
        token_file = settings.token_file
        if token_file is not None and readable_by_others(token_file):
            _log.warning(
                "the token file %s is readable by every user of this machine: "
                "chmod o-r it (or 600) unless that is what you mean",
                token_file,
            )
        self._progress(
            f"serving topic {settings.topic!r} ({self._journal.partitions} partitions) "
            f"from {self.bootstrap_servers}"
        )

    def close(self) -> None:
        """Stop the probe and the follower, flush and close the journal, stop a broker we
        started."""
        if self._readiness is not None:
            self._readiness.stop()
            self._readiness = None
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._broker is not None:
            self._progress("stopping the local Kafka broker this sidecar started")
            self._broker.stop()
            self._broker = None
