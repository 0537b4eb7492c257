"""A kill storm: a fleet of worker processes on the acked app, a request stream, and SIGKILL
of a random worker at random moments, each restarted at once; then the fleet drains.

The randomness is seeded (``CHAOS_SEED`` picks the seed; else a fresh one), and the seed is
printed and recorded, so a failing storm can be run again with the same intervals and
choices (the victim is drawn among the workers owning partitions at that moment, so the
victims themselves also depend on the group's timing).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionstate.client._runs import stored_output
from actionstate.client.fleet import SentRequest
from tests.chaos._acked import AckedKafkaStore, AckReport, ack_log_for, ack_logs, check_acked
from tests.fleet._fleet import (
    GROUP_PROPERTIES,
    Fleet,
    Flow,
    WorkerProcess,
    check_outcomes,
    committed_offsets,
)

__all__ = ["APP", "Pruner", "Size", "Storm", "StormResult", "storm_seed"]

APP = "tests.chaos.acked_app:worker"
# Between paying and shipping: long enough that a kill often lands mid-action.
SHIP_DELAY_S = "0.1"


@dataclass(frozen=True, slots=True)
class Size:
    """How big a storm is: ``kills`` SIGKILLs, one every ``interval`` seconds (uniform),
    while ``batch`` requests are sent every ``every`` seconds."""

    kills: int
    interval: tuple[float, float] = (0.5, 3.0)
    batch: int = 2
    every: float = 0.1
    workers: int = 3


def storm_seed() -> int:
    """The seed of this storm: ``$CHAOS_SEED`` if set, else a fresh one."""
    given = os.environ.get("CHAOS_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


@dataclass
class StormResult:
    """What a storm did and what the checks found."""

    seed: int
    kills: int
    kills_of_owners: int
    sent: list[SentRequest]
    acked: AckReport
    outputs: dict[str, Any] = field(default_factory=dict)
    pruned: Mapping[str, Any] = field(default_factory=dict)


class Storm:
    """A fleet of ``size.workers`` acked-app workers under a kill schedule from ``seed``."""

    def __init__(self, fleet: Fleet, size: Size, seed: int) -> None:
        self.fleet = fleet
        self.size = size
        self.seed = seed
        self.rng = random.Random(seed)
        self.ack_dir = fleet.folder / "acked"
        self.ack_dir.mkdir(exist_ok=True)
        self.slots: list[WorkerProcess] = []
        self.kills = 0
        self.kills_of_owners = 0  # kills of a worker that owned partitions then

    def env(self) -> dict[str, str]:
        fleet = self.fleet
        return {
            "KAFKA_BOOTSTRAP_SERVERS": fleet.bootstrap,
            "ACTIONSTATE_TOPIC": fleet.state_topic,
            "ACTIONSTATE_PARTITIONS": str(fleet.partitions),
            "CHAOS_ACK_DIR": str(self.ack_dir),
            "FLEET_SHIP_DELAY_S": SHIP_DELAY_S,
        }

    def start(self, slot: int) -> WorkerProcess:
        fleet = self.fleet
        worker = fleet.start(
            f"worker-{slot}-{self.kills}",
            app=APP,
            fleet_args=["--requests", fleet.requests, "--group", fleet.group, *GROUP_PROPERTIES],
            env=self.env(),
            metrics=False,
        )
        if slot < len(self.slots):
            self.slots[slot] = worker
        else:
            self.slots.append(worker)
        return worker

    def run(self, keys: list[str], *, prune: bool = False) -> StormResult:
        """Start the fleet, send requests while killing (and, with ``prune``, pruning what
        the group committed), drain, check; the result."""
        print(f"\nchaos seed {self.seed} (CHAOS_SEED={self.seed} repeats its random choices)")
        for slot in range(self.size.workers):
            self.start(slot)
        self.fleet.wait_owned(self.slots, timeout=90)
        flow = Flow(
            self.fleet,
            keys,
            batch=self.size.batch,
            interval=self.size.every,
            actions=("charge", "charge-async"),
        )
        pruner = Pruner(self.fleet, flow, self.ack_dir) if prune else None
        with flow:
            if pruner is not None:
                pruner.start()
            started = time.monotonic()
            for _ in range(self.size.kills):
                # The kill schedule, not a synchronisation: nothing waits for a condition.
                time.sleep(self.rng.uniform(*self.size.interval))
                self.kill_one()
            storm_s = time.monotonic() - started
        sent = flow.stop()
        pruned = {} if pruner is None else pruner.stop()
        print(
            f"{self.kills} kills ({self.kills_of_owners} of a worker owning partitions) in "
            f"{storm_s:.0f}s, {len(sent)} requests; draining"
        )
        dead = [w for w in self.slots if not w.alive()]
        assert not dead, f"{dead} died by themselves\n{self.fleet.tails()}"
        drained = time.monotonic()
        # A pruned request's completed state was seen before its tombstone replaced it.
        self.fleet.wait_completed([s for s in sent if s.state_key not in pruned], timeout=240)
        print(f"drained in {time.monotonic() - drained:.1f}s")
        outputs = check_outcomes(self.fleet, sent, pruned=pruned)
        codes = self.fleet.terminate_all(timeout=30)
        assert all(code == 0 for code in codes.values()), f"{codes}\n{self.fleet.tails()}"
        problems = self.fleet.problems()
        assert not problems, "\n".join(problems[:20])
        report = check_acked(self.fleet.bootstrap, self.fleet.state_topic, self.ack_logs())
        print(report.summary())
        return StormResult(
            self.seed, self.kills, self.kills_of_owners, sent, report, dict(outputs), pruned
        )

    def kill_one(self) -> None:
        # A random worker among those owning partitions (one still starting up, when none
        # does): a kill should mostly hit work in progress.
        owners = [i for i, w in enumerate(self.slots) if w.owned()]
        slot = self.rng.choice(owners or range(len(self.slots)))
        victim = self.slots[slot]
        # Every worker this storm killed was replaced: one not alive ended by itself.
        assert victim.alive(), f"{victim} exited with {victim.popen.returncode}\n{victim.tail()}"
        if victim.owned():
            self.kills_of_owners += 1
        victim.kill()
        self.kills += 1
        self.start(slot)

    def ack_logs(self) -> list[Path]:
        return ack_logs(self.ack_dir)


class Pruner:
    """Prunes, while the storm runs, the states of requests the group committed: a
    committed request is never delivered again, so its completed state may go (the rule of
    DESIGN.md §6). Its tombstones are logged as acknowledged writes too."""

    def __init__(self, fleet: Fleet, flow: Flow, ack_dir: Path, every: float = 2.0) -> None:
        self._fleet = fleet
        self._flow = flow
        self._every = every
        self._store = AckedKafkaStore(
            bootstrap_servers=fleet.bootstrap,
            topic=fleet.state_topic,
            partitions=fleet.partitions,
            ack_log=ack_log_for(ack_dir),
        )
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._wait = every
        self._thread = threading.Thread(target=self._run, name="chaos-pruner", daemon=True)
        # The outputs of the pruned requests' completed states, by state key.
        self.outputs: dict[str, Any] = {}
        self.rounds = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop pruning; the outputs of the states pruned (re-raises what stopped it)."""
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the pruner did not stop"
        self._store.close()
        if self._error is not None:
            raise self._error
        print(f"pruned {len(self.outputs)} completed states in {self.rounds} rounds")
        return dict(self.outputs)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._wait):
                self._round()
        except BaseException as exc:
            self._error = exc

    def _round(self) -> None:
        committed = committed_offsets(self._fleet)
        todo = [
            s
            for s in list(self._flow.sent)
            if s.state_key not in self.outputs
            and s.request_id.offset < committed.get(s.request_id.partition, 0)
        ]
        if not todo:
            return
        # All of it each time: a read from a marker could miss a transaction that became
        # visible after the marker's read, and leave a stale state in the view.
        report = self._store.rebuild()
        self._wait = max(self._every, 3 * report.seconds)
        up_to: dict[str, int] = {}
        for s in todo:
            stored = self._store.stored(s.state_key)
            if stored is None or not stored.state.completed:
                continue  # its last transaction is not visible yet: the next round
            self.outputs[s.state_key] = stored_output(stored.state)
            up_to[s.agent_key] = max(s.request_id.offset, up_to.get(s.agent_key, -1))
        for agent_key, seq in up_to.items():
            self._store.prune(agent_key, seq)
        self.rounds += 1
