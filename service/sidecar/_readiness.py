"""The sidecar's readiness rule: is the view current with the topic, right now?

A probe thread asks the broker for the topic's end offsets every second. The view is
*confirmed* at time ``t`` once the follower has read every partition up to the end
offsets the broker gave at ``t``. ``/readyz`` answers 200 while the view was confirmed
within the last ``ready_max_lag_s`` seconds, and 503 with a reason otherwise:

- ``follower_stopped``: the follower thread died, or stopped because the broker says the
  topic no longer exists (it does not come back: ``/healthz`` fails too, and the process
  should be restarted);
- ``not_ready``: the first read of the topic has not reached its end yet;
- ``broker_unreachable``: the broker's last end offsets are older than ``ready_max_lag_s``
  (no answer, or an error);
- ``lagging``: the broker answers, but the follower is further behind than that.

Under normal load the view is confirmed every second or two, so the rule does not flap;
a record count would (it depends on the write rate), which is why it counts seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from actionstate.client import StoreError
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from actionstate.service.sidecar._follower import ViewFollower

__all__ = ["DEFAULT_READY_MAX_LAG_S", "Readiness", "Verdict"]

DEFAULT_READY_MAX_LAG_S = 15.0
_PROBE_EVERY_S = 1.0
_KEPT_ENDS = 64  # end offsets not yet reached, newest kept
_log = logging.getLogger("actionstate.service.readiness")


@dataclass(frozen=True)
class Verdict:
    """Whether the sidecar is ready, and if not, a stable code and a message saying why."""

    ready: bool
    code: str
    detail: str


class Readiness:
    """Probes the broker on a thread and judges readiness (see the module)."""

    def __init__(
        self,
        conn: KafkaConnection,
        follower: ViewFollower,
        *,
        max_lag_s: float = DEFAULT_READY_MAX_LAG_S,
    ) -> None:
        self._follower = follower
        self._max_lag = max_lag_s
        # A probe must give up well before the view counts as unconfirmed.
        timeout = max(0.5, min(conn.timeout_s, max_lag_s / 2))
        self._admin = KafkaAdmin(conn.model_copy(update={"timeout_s": timeout}))
        self._lock = threading.Lock()
        self._ends: deque[tuple[float, dict[int, int]]] = deque(maxlen=_KEPT_ENDS)
        self._confirmed_at: float | None = None
        self._answered_at: float | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="actionstate-probe", daemon=True)

    def start(self) -> None:
        """Start probing."""
        self._answered_at = time.monotonic()  # the start itself read the topic's ends
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (waits for a probe in flight)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def verdict(self) -> Verdict:
        """The readiness rule, applied now."""
        follower = self._follower
        if not follower.alive:
            return Verdict(
                False, "follower_stopped", f"the view follower stopped: {follower.error}"
            )
        if not follower.ready:
            return Verdict(
                False, "not_ready", f"catching up with the topic: {follower.lag()} records behind"
            )
        now = time.monotonic()
        with self._lock:
            self._confirm()
            confirmed = max(self._confirmed_at or 0.0, follower.ready_at or 0.0)
            answered, error = self._answered_at or 0.0, self._error
        age = now - confirmed
        if age <= self._max_lag:
            return Verdict(True, "ready", "the view is current with the topic")
        if now - answered > self._max_lag:
            why = error or "a request for the topic's end offsets is unanswered"
            return Verdict(
                False,
                "broker_unreachable",
                f"no end offsets from the broker for {now - answered:.0f}s (over "
                f"{self._max_lag:g}s): "
                f"{why}",
            )
        return Verdict(
            False,
            "lagging",
            f"the view has not caught up with the topic for {age:.0f}s (over "
            f"{self._max_lag:g}s); {follower.lag()} records behind",
        )

    def _topic_missing(self) -> bool:
        """Whether the broker answers that the topic does not exist."""
        try:
            return self._admin.partition_count(self._follower.topic) is None
        except StoreError:
            return False  # no answer: unreachable, not missing

    def _confirm(self) -> None:
        """Note the newest end offsets the follower has reached (call under the lock)."""
        while self._ends:
            at, ends = self._ends[0]
            if not self._follower.reached(ends):
                # Newer ends may be reached while this one is not only if a partition
                # shrank (topic recreated); the follower's death reports that.
                return
            self._confirmed_at = at
            self._ends.popleft()

    def _run(self) -> None:
        while not self._stop.wait(_PROBE_EVERY_S):
            partitions = self._follower.partitions
            asked = time.monotonic()
            try:
                ends = self._admin.end_offsets(self._follower.topic, partitions)
            except StoreError as exc:
                with self._lock:
                    self._error = str(exc)
                _log.debug("readiness probe failed: %s", exc)
                if self._topic_missing():
                    self._follower.abandon(
                        f"topic {self._follower.topic!r} no longer exists; once it is back, "
                        "restart the sidecar (a recreated topic is read from its start)"
                    )
                    return
                continue
            with self._lock:
                self._answered_at, self._error = time.monotonic(), None
                self._ends.append((asked, ends))
                self._confirm()
