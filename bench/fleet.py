"""The worker fleet on one broker, in one run (issue 10).

    python bench/fleet.py [--requests 2000] [--steps 8] [--kills 5] [--session-timeout-ms 6000]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts a local broker (and stops it at the
end). Worker processes are ``actionstate worker fleet_app:worker --app-dir bench``; every
one is stopped by pid on the way out. Each figure is printed beside a baseline measured
in the same run:

- durable steps/s with 1, 2 and 3 worker processes (64 in flight each) vs the in-process
  figure of bench/durable.py (64 actions in flight on one ``KafkaStore``);
- per-step latency p50/p99, one request at a time, fenced (transactions) vs ``--fencing
  none``;
- steps/s with 64 actions in flight, fenced vs unfenced (goal: ≥ 0.5×, group commit);
- failover: SIGKILL of a member → the unfinished actions of its partitions completed by
  the others, p50 over ``--kills`` kills, vs the session timeout (goal: ≤ timeout + 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _broker import broker
from confluent_kafka.admin import AdminClient
from durable import IN_FLIGHT, Row, console, durable_steps, percentile, show
from prometheus_client.parser import text_string_to_metric_families

from actionstate.client import KafkaStore, KafkaStoreSettings
from actionstate.client.fleet import RequestSender
from actionstate.serde import partition_for
from actionstate.service._process import free_ports

PARTITIONS = 12
BENCH = Path(__file__).resolve().parent
TOPICS: list[str] = []  # deleted at the end of the run
_OWNERSHIP = re.compile(r"\b(assigned|revoked|lost) \[([0-9, ]*)\]")


@dataclass
class Member:
    """One ``actionstate worker`` process, its log and its metrics endpoint."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int
    killed: bool = False

    def metric(self, name: str) -> float:
        return sum(v for (n, _), v in self.metrics().items() if n == name)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of the member's metrics endpoint, by name and labels (one request)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def finished(self) -> float:
        samples = self.metrics()
        return sum(
            samples.get(("actionstate_worker_actions_total", (("outcome", o),)), 0.0)
            for o in ("completed", "redelivered")
        )

    def owned(self) -> set[int]:
        owned: set[int] = set()
        for kind, listed in _OWNERSHIP.findall(self.log.read_text(errors="replace")):
            parts = {int(p) for p in listed.replace(" ", "").split(",") if p}
            owned = owned | parts if kind == "assigned" else owned - parts
        return owned

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.killed = True


@dataclass
class Fleet:
    """Worker processes on one state topic and one requests topic; stopped on exit."""

    bootstrap: str
    folder: Path
    fencing: str
    session_ms: int
    max_in_flight: int = IN_FLIGHT
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    members: list[Member] = field(default_factory=list)

    @property
    def state(self) -> str:
        return f"bench-fleet-state-{self.tag}"

    @property
    def requests(self) -> str:
        return f"bench-fleet-requests-{self.tag}"

    def start(self) -> Member:
        name = f"w{len(self.members)}"
        (port,) = free_ports(1)
        log = self.folder / f"{self.tag}-{name}.log"
        command = [
            sys.executable, "-m", "actionstate.service.cli", "worker", "fleet_app:worker",
            "--app-dir", str(BENCH), "--bootstrap-servers", self.bootstrap,
            "--topic", self.state, "--requests", self.requests, "--group", f"bench-{self.tag}",
            "--partitions", str(PARTITIONS), "--max-in-flight", str(self.max_in_flight),
            "--fencing", self.fencing, "--metrics-port", str(port), "--grace", "2",
            "-X", f"session.timeout.ms={self.session_ms}", "-X", "heartbeat.interval.ms=500",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        member = Member(name, proc, log, port)
        self.members.append(member)
        return member

    @property
    def live(self) -> list[Member]:
        return [m for m in self.members if not m.killed and m.proc.poll() is None]

    def wait_balanced(self, timeout: float = 90) -> None:
        """Until the live members own every partition between them, each some."""

        def balanced() -> bool:
            owned = [m.owned() for m in self.live]
            return all(owned) and sorted(p for o in owned for p in o) == list(range(PARTITIONS))

        wait_until(balanced, timeout, "the group to assign every partition", self)

    def finished(self) -> float:
        return sum(m.finished() for m in self.members if not m.killed)

    def close(self) -> None:
        for member in self.members:
            member.stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str, fleet: Fleet) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for m in fleet.members:
            if m.proc.poll() is not None and not m.killed:
                raise RuntimeError(f"{m.name} exited ({m.proc.returncode}); log {m.log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}; logs in {fleet.folder}")
        time.sleep(0.05)


@contextlib.contextmanager
def fleet_of(
    bootstrap: str, folder: Path, fencing: str, session_ms: int, **kw: Any
) -> Iterator[Fleet]:
    fleet = Fleet(bootstrap, folder, fencing, session_ms, **kw)
    TOPICS.extend((fleet.state, fleet.requests, f"{fleet.requests}.dead-letter"))
    KafkaStore(bootstrap_servers=bootstrap, topic=fleet.state, partitions=PARTITIONS).close()
    try:
        yield fleet
    finally:
        fleet.close()


def sender(fleet: Fleet) -> RequestSender:
    return RequestSender(
        bootstrap_servers=fleet.bootstrap, requests=fleet.requests, topic=fleet.state
    )


# -- throughput and latency --------------------------------------------------------------


def throughput(
    bootstrap: str,
    folder: Path,
    *,
    workers: int,
    fencing: str,
    requests: int,
    steps: int,
    session_ms: int,
) -> float:
    """Durable steps/s of ``workers`` processes working off ``requests`` sent at once."""
    with fleet_of(bootstrap, folder, fencing, session_ms) as fleet:
        for _ in range(workers):
            fleet.start()
        fleet.wait_balanced()
        with sender(fleet) as send:
            t0 = time.perf_counter()
            send.send_many((f"k{i}", "steps", {"steps": steps}) for i in range(requests))
            wait_until(lambda: fleet.finished() >= requests, 600, "the requests", fleet)
            elapsed = time.perf_counter() - t0
    return requests * steps / elapsed


def step_latency(
    bootstrap: str, folder: Path, *, fencing: str, requests: int, steps: int, session_ms: int
) -> tuple[float, float]:
    """p50 and p99 (ms) of one durable step, one request at a time."""
    with fleet_of(bootstrap, folder, fencing, session_ms, max_in_flight=1) as fleet:
        fleet.start()
        fleet.wait_balanced()
        with sender(fleet) as send:
            send.send_many(("one-key", "steps", {"steps": steps}) for _ in range(requests))
            wait_until(lambda: fleet.finished() >= requests, 600, "the requests", fleet)
        times: list[float] = []
        with KafkaStore(
            bootstrap_servers=bootstrap, topic=fleet.state, partitions=PARTITIONS
        ) as store:
            store.rebuild()
            for _key, state in store.states():
                if state.completed:
                    times += state.output_events[-1].attributes["output"]["step_ms"]
    return percentile(times, 0.5), percentile(times, 0.99)


# -- failover ----------------------------------------------------------------------------


def failover(bootstrap: str, folder: Path, *, kills: int, session_ms: int) -> list[float]:
    """Seconds from SIGKILL of a member to the last unfinished action of its partitions
    completed by the survivors, once per kill."""
    seconds: list[float] = []
    with fleet_of(bootstrap, folder, "transactions", session_ms) as fleet:
        fleet.start()
        fleet.start()
        fleet.wait_balanced()
        with (
            sender(fleet) as send,
            KafkaStore(
                bootstrap_servers=bootstrap, topic=fleet.state, partitions=PARTITIONS
            ) as view,
        ):
            for round_ in range(kills):
                victim = fleet.live[round_ % 2]
                # A backlog over every partition keeps actions in flight at the victim.
                send.send_many(
                    (f"r{round_}-{i}", "slow", {"sleep": 0.3}) for i in range(PARTITIONS * 8)
                )
                wait_until(
                    lambda v=victim: v.metric("actionstate_worker_actions_in_flight") > 0,
                    60,
                    "the victim to work",
                    fleet,
                )
                parts = victim.owned()
                victim.kill()
                killed_at = time.perf_counter()
                view.rebuild(partitions=sorted(parts))
                unfinished = {
                    str(k)
                    for k, s in view.states()
                    if not s.completed
                    and k.agent_key.startswith(f"r{round_}-")
                    and partition_of(k.agent_key) in parts
                }

                def done(keys: set[str] = unfinished, ps: set[int] = parts) -> bool:
                    view.rebuild(partitions=sorted(ps))
                    states = {str(k): s.completed for k, s in view.states()}
                    return all(states.get(k) for k in keys)

                wait_until(done, 120, "the killed member's actions", fleet)
                seconds.append(time.perf_counter() - killed_at)
                console.print(
                    f"  kill {round_ + 1}: {len(unfinished)} unfinished actions of partitions "
                    f"{sorted(parts)} completed {seconds[-1]:.2f}s after SIGKILL"
                )
                fleet.start()
                fleet.wait_balanced()
    return seconds


def partition_of(agent_key: str) -> int:
    return partition_for(agent_key, PARTITIONS)


# -- the run -----------------------------------------------------------------------------


def in_process_steps(bootstrap: str, steps: int) -> float:
    topic = f"bench-fleet-inproc-{uuid.uuid4().hex[:8]}"
    TOPICS.append(topic)
    settings = KafkaStoreSettings(bootstrap_servers=bootstrap, topic=topic, partitions=PARTITIONS)
    with KafkaStore(settings) as store:
        return asyncio.run(durable_steps(store, steps))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per throughput run")
    parser.add_argument("--steps", type=int, default=8, help="durable calls per action")
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--only", default="scale,latency,inflight,failover")
    args = parser.parse_args(argv)
    phases = {p.strip() for p in args.only.split(",") if p.strip()}
    rows: list[Row] = []
    with (
        broker(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), console.print) as bootstrap,
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
    ):
        folder = Path(tmp)
        try:
            run_phases(bootstrap, folder, args, phases, rows)
        finally:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.delete_topics(TOPICS, operation_timeout=30).values():
                future.exception()
    show(rows, "kafka-actionstate worker fleet (same broker, same run)")


def run_phases(
    bootstrap: str, folder: Path, args: argparse.Namespace, phases: set[str], rows: list[Row]
) -> None:
    session_ms = args.session_timeout_ms
    common = {"requests": args.requests, "steps": args.steps, "session_ms": session_ms}
    if phases & {"scale", "inflight"}:
        console.print(f"in process: {IN_FLIGHT} actions in flight on one KafkaStore ...")
        inproc = in_process_steps(bootstrap, args.requests * args.steps)
    if "scale" in phases:
        for workers in (1, 2, 3):
            console.print(f"{workers} worker process(es), fenced, {args.requests} requests ...")
            rate = throughput(bootstrap, folder, workers=workers, fencing="transactions", **common)
            rows.append(
                Row(
                    f"durable steps, {workers} worker process(es)",
                    rate,
                    inproc,
                    "steps/s",
                    "(vs in-process)",
                    "higher",
                )
            )
    if "latency" in phases:
        lat = {}
        for fencing in ("transactions", "none"):
            console.print(f"per-step latency, one at a time, fencing {fencing} ...")
            lat[fencing] = step_latency(
                bootstrap,
                folder,
                fencing=fencing,
                requests=args.latency_requests,
                steps=args.steps,
                session_ms=session_ms,
            )
        rows.append(
            Row(
                "step latency p50, fenced vs unfenced",
                lat["transactions"][0],
                lat["none"][0],
                "ms",
                "(reference)",
            )
        )
        rows.append(
            Row(
                "step latency p99, fenced vs unfenced",
                lat["transactions"][1],
                lat["none"][1],
                "ms",
                "(reference)",
            )
        )
    if "inflight" in phases:
        rate = {}
        for fencing in ("transactions", "none"):
            console.print(f"{IN_FLIGHT} in flight, one worker, fencing {fencing} ...")
            rate[fencing] = throughput(bootstrap, folder, workers=1, fencing=fencing, **common)
        rows.append(
            Row(
                f"steps/s, {IN_FLIGHT} in flight, fenced vs unfenced",
                rate["transactions"],
                rate["none"],
                "steps/s",
                "≥ 0.5×",
                "higher",
                0.5,
            )
        )
    if "failover" in phases:
        console.print(f"failover: {args.kills} SIGKILLs, session timeout {session_ms} ms ...")
        seconds = failover(bootstrap, folder, kills=args.kills, session_ms=session_ms)
        budget = session_ms / 1000
        rows.append(
            Row(
                f"failover p50 over {len(seconds)} kills (max {max(seconds):.2f}s)",
                statistics.median(seconds),
                budget,
                "s",
                "≤ session timeout + 2 s",
                "lower",
                (budget + 2) / budget,
            )
        )


if __name__ == "__main__":
    main()
