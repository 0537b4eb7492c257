"""Helpers of the fleet tests: worker processes of ``actionstate worker`` on the ledger app,
their logs and metrics, and what the state topic and the ledger hold at the end.

Every process a test starts goes through :class:`Fleet`, whose ``close()`` (the fixture's
teardown) stops them all by pid, even after a failure: SIGCONT first (a SIGSTOPped one
would ignore SIGTERM), SIGTERM, then SIGKILL after a bound.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from actionstate.client import KafkaStore
from actionstate.client._runs import stored_output
from actionstate.client.fleet import RequestSender, SentRequest
from actionstate.serde import ActionState, SerdeError, decode_action_state, partition_for
from tests._support import assert_eventually, kafka, read_topic
from tests._support.kafka import delete_topics
from tests.fleet.ledger_app import LEDGER

__all__ = [
    "APP",
    "FENCED_LINE",
    "GROUP_PROPERTIES",
    "ROOT",
    "Entry",
    "Fleet",
    "Flow",
    "WorkerProcess",
    "check_outcomes",
    "committed_offsets",
    "end_offsets",
    "free_port",
    "keys_per_partition",
]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fleet.ledger_app:worker"
# Short enough that a dead or stopped member loses its partitions in seconds.
GROUP_PROPERTIES = ("-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000")
STOP_WAIT_S = 20.0

_REBALANCE = re.compile(r"\b(assigned|revoked|lost) \[([0-9, ]*)\]")
FENCED_LINE = "the broker refused this worker's transaction"
_NOISE = ("CONFWARN",)  # librdkafka: a consumer property given to a producer via -X


def free_port() -> int:
    """A TCP port nothing listens on now (for ``--metrics-port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keys_per_partition(partitions: int, per_partition: int, prefix: str = "order") -> list[str]:
    """Agent keys, exactly ``per_partition`` of them in each partition."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(keys) < per_partition for keys in chosen.values()):
        key = f"{prefix}-{i}"
        keys = chosen[partition_for(key, partitions)]
        if len(keys) < per_partition:
            keys.append(key)
        i += 1
    return [key for p in range(partitions) for key in chosen[p]]


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line: ``kind`` (pay or ship) of call ``call_id`` by process ``pid``."""

    kind: str
    call_id: str
    pid: int

    @property
    def state_key(self) -> str:
        return self.call_id.rsplit(":", 1)[0]


class WorkerProcess:
    """One ``actionstate worker`` process; its stderr goes to ``log_path``."""

    def __init__(
        self, name: str, popen: subprocess.Popen[bytes], log_path: Path, metrics_port: int | None
    ) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.stopped = False  # SIGSTOPped and not yet SIGCONTed

    @property
    def pid(self) -> int:
        return self.popen.pid

    def __repr__(self) -> str:
        return f"<worker {self.name} pid {self.pid}>"

    # -- the log ---------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        kept = [line for line in self.log().splitlines() if not any(n in line for n in _NOISE)]
        return f"--- {self.name} (pid {self.pid}) log tail ---\n" + "\n".join(kept[-lines:])

    def wait_log(self, pattern: str, *, timeout: float = 30.0, start: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in the log from character ``start``, polled."""
        regex = re.compile(pattern)

        def found() -> re.Match[str]:
            match = regex.search(self.log(), start)
            assert match is not None, f"no {pattern!r} in {self.name}'s log\n{self.tail()}"
            return match

        return assert_eventually(found, timeout=timeout, interval=0.1)

    def rebalances(self, start: int = 0) -> list[tuple[str, list[int]]]:
        """``(assigned|revoked|lost, partitions)`` as logged, in order, from ``start``."""
        return [
            (m.group(1), [int(p) for p in m.group(2).split(",") if p.strip()])
            for m in _REBALANCE.finditer(self.log(), start)
        ]

    def owned(self) -> set[int]:
        """The partitions the process owns, as its log tells."""
        held: set[int] = set()
        for kind, partitions in self.rebalances():
            if kind == "assigned":
                held.update(partitions)
            else:
                held.difference_update(partitions)
        return held

    # -- metrics ---------------------------------------------------------------------------

    def metrics(self) -> str:
        assert self.metrics_port is not None, f"{self.name} was started without metrics"
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text: str = answer.read().decode()
            return text

    def metric(self, name: str, **labels: str) -> float:
        """The value of sample ``name{labels}`` (0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        sample = f"{name}{{{want}}}" if want else name
        for line in self.metrics().splitlines():
            head, _, value = line.rpartition(" ")
            if head == sample:
                return float(value)
        return 0.0

    # -- signals ---------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def sigstop(self) -> None:
        self.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self) -> None:
        self.send_signal(signal.SIGCONT)
        self.stopped = False

    def kill(self) -> int:
        """SIGKILL and wait; the exit code."""
        self.send_signal(signal.SIGKILL)
        return self.popen.wait(STOP_WAIT_S)

    def terminate(self, timeout: float = STOP_WAIT_S) -> int | None:
        """SIGTERM and wait up to ``timeout``; the exit code, None if it had to be killed."""
        if self.stopped:
            self.sigcont()
        self.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Fleet:
    """Worker processes of one test on fresh topics, sharing a ledger in ``folder``."""

    def __init__(self, bootstrap: str, name: str, folder: Path, partitions: int = 12) -> None:
        self.bootstrap = bootstrap
        self.state_topic = f"{name}-state"
        self.requests = f"{name}-requests"
        self.group = f"{name}-group"
        self.folder = folder
        self.partitions = partitions
        self.workers: list[WorkerProcess] = []
        self._senders: list[RequestSender] = []
        self.bad_records = False  # the test wrote bad records: states() skips them

    @property
    def dead_letters(self) -> str:
        return f"{self.requests}.dead-letter"

    def create_topics(self) -> None:
        """The state topic with ``partitions`` partitions, and the requests topic."""
        KafkaStore(
            bootstrap_servers=self.bootstrap, topic=self.state_topic, partitions=self.partitions
        ).close()
        self.sender()

    def env(self, **extra: str) -> dict[str, str]:
        """A worker's environment: this one without ``ACTIONSTATE_*``, the ledger folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONSTATE_")}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the flag says it
        env.update(FLEET_LEDGER_DIR=str(self.folder), PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def inspect_json(self, *args: str) -> list[dict[str, Any]]:
        """The rows ``actionstate inspect --format json`` prints for the state topic."""
        done = subprocess.run(
            [
                *(sys.executable, "-m", "actionstate.service.cli", "inspect"),
                *("--bootstrap-servers", self.bootstrap, "--topic", self.state_topic),
                *("--format", "json", *args),
            ],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def command(self, app: str = APP, *args: str) -> list[str]:
        return [sys.executable, "-m", "actionstate.service.cli", "worker", app, *args]

    def fleet_args(self) -> list[str]:
        return [
            "--bootstrap-servers",
            self.bootstrap,
            "--topic",
            self.state_topic,
            "--requests",
            self.requests,
            "--group",
            self.group,
            "--partitions",
            str(self.partitions),
            *GROUP_PROPERTIES,
        ]

    def start(
        self,
        name: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        app: str = APP,
        fleet_args: Sequence[str] | None = None,
        metrics: bool = True,
    ) -> WorkerProcess:
        """Start a worker process called ``name`` (its log: ``<folder>/<name>.log``)."""
        port = free_port() if metrics else None
        cmd = self.command(app, *(self.fleet_args() if fleet_args is None else fleet_args))
        if port is not None:
            cmd += ["--metrics-port", str(port)]
        cmd += list(args)
        log_path = self.folder / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env(**(env or {})),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = WorkerProcess(name, popen, log_path, port)
        self.workers.append(process)
        return process

    def tails(self) -> str:
        return "\n".join(w.tail() for w in self.workers)

    def wait_owned(
        self, workers: Iterable[WorkerProcess], *, timeout: float = 60.0
    ) -> dict[str, set[int]]:
        """Wait until ``workers`` each own a partition, together all of them, and no
        other process owns any; their ownership."""
        chosen = list(workers)

        def settled() -> dict[str, set[int]]:
            dead = [w for w in chosen if not w.alive()]
            if dead:  # no retrying: it will not come back
                pytest.fail(f"{dead} exited with {dead[0].popen.returncode}\n{self.tails()}")
            owned = {w.name: w.owned() for w in chosen}
            union = set().union(*owned.values())
            assert all(owned.values()), f"a worker owns nothing yet: {owned}\n{self.tails()}"
            assert union == set(range(self.partitions)), f"not all owned: {owned}\n{self.tails()}"
            assert sum(map(len, owned.values())) == self.partitions, f"overlap: {owned}"
            others = {w.name: w.owned() for w in self.workers if w not in chosen and w.alive()}
            assert not any(others.values()), f"others still own partitions: {others}"
            return owned

        return assert_eventually(settled, timeout=timeout, interval=0.2)

    # -- requests and outcomes ------------------------------------------------------------

    def sender(self) -> RequestSender:
        """A request sender on the fleet's topics (closed at teardown)."""
        sender = RequestSender(
            bootstrap_servers=self.bootstrap, requests=self.requests, topic=self.state_topic
        )
        self._senders.append(sender)
        return sender

    def states(self) -> dict[str, ActionState | None]:
        """The last record of each state key on the state topic (None: a tombstone); with
        ``bad_records`` set, records that do not decode are skipped, else they raise."""
        out: dict[str, ActionState | None] = {}
        for raw in read_topic(self.bootstrap, self.state_topic):
            key = raw.key()
            assert key is not None
            value = raw.value()
            try:
                out[key.decode()] = None if value is None else decode_action_state(value)
            except (SerdeError, UnicodeDecodeError):
                if not self.bad_records:
                    raise
        return out

    def completed(self, sent: Iterable[SentRequest]) -> dict[str, Any]:
        """The outputs of the requests of ``sent`` completed so far, by state key."""
        states = self.states()
        out: dict[str, Any] = {}
        for s in sent:
            state = states.get(s.state_key)
            if state is not None and state.completed:
                out[s.state_key] = stored_output(state)
        return out

    def wait_completed(self, sent: Sequence[SentRequest], *, timeout: float = 60.0) -> None:
        """Wait until every request of ``sent`` has its completed state."""

        def done() -> None:
            completed = self.completed(sent)
            left = sorted(s.request_id for s in sent if s.state_key not in completed)
            assert not left, (
                f"{len(left)} of {len(sent)} requests not completed: "
                f"{', '.join(map(str, left[:20]))}; committed offsets "
                f"{committed_offsets(self)}\n{self.tails()}"
            )

        assert_eventually(done, timeout=timeout, interval=0.5)

    def ledger(self) -> list[Entry]:
        path = self.folder / LEDGER
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            kind, call_id, pid = line.split()
            entries.append(Entry(kind, call_id, int(pid)))
        return entries

    def terminate_all(self, timeout: float = STOP_WAIT_S) -> dict[str, int | None]:
        """SIGTERM every live process at once; their exit codes (None: killed after
        ``timeout``), by name."""
        live = [w for w in self.workers if w.alive()]
        for w in live:
            if w.stopped:
                w.sigcont()
            w.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for w in live:
            try:
                codes[w.name] = w.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.kill()
                codes[w.name] = None
        return codes

    def problems(self) -> list[str]:
        """Lines of the logs that tell of an error the worker did not handle."""
        return [
            f"{w.name}: {line}"
            for w in self.workers
            for line in w.log().splitlines()
            if line.startswith(("Traceback", "Exception in thread"))
            or (" CRITICAL " in line and "librdkafka" not in line)
        ]

    def close(self) -> None:
        """Stop every process (by pid), close the senders, delete the topics."""
        for worker in self.workers:
            if worker.alive():
                worker.terminate()
        for sender in self._senders:
            sender.close()
        delete_topics(self.bootstrap, self.state_topic, self.requests, self.dead_letters)


def check_outcomes(
    fleet: Fleet,
    sent: Sequence[SentRequest],
    *,
    shipped_at_most: int | None = None,
    pruned: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The invariants of every fleet test, on the final topic and the ledger: each request
    of ``sent`` has a completed state with its receipt (none lost), ``pay`` (reconciled)
    happened exactly once for it, ``ship`` at least once. The outputs by state key.

    ``pruned``: the outputs, by state key, of requests whose completed states the test saw
    and then pruned (their tombstones replace them on the topic)."""
    outputs = {**(pruned or {}), **fleet.completed(sent)}
    missing = [str(s.request_id) for s in sent if s.state_key not in outputs]
    assert not missing, f"{len(missing)} requests lost: {missing[:10]}\n{fleet.tails()}"
    entries = fleet.ledger()
    pays = Counter(e.state_key for e in entries if e.kind == "pay")
    ships = Counter(e.state_key for e in entries if e.kind == "ship")
    keys = {s.state_key for s in sent}
    twice = {k: n for k, n in pays.items() if n != 1}
    assert not twice, f"paid more than once: {twice}"
    unpaid = sorted(keys - pays.keys())
    assert not unpaid, f"completed without a payment: {unpaid[:5]}"
    unshipped = sorted(keys - ships.keys())
    assert not unshipped, f"completed without shipping: {unshipped[:5]}"
    strangers = (pays.keys() | ships.keys()) - keys
    assert not strangers, f"ledger lines of no request sent: {sorted(strangers)[:5]}"
    wrong = {k: o for k, o in outputs.items() if o["receipt"] != f"receipt-{o['order']}"}
    assert not wrong, f"wrong receipts: {dict(list(wrong.items())[:5])}"
    if shipped_at_most is not None:
        many = {k: n for k, n in ships.items() if n > shipped_at_most}
        assert not many, f"shipped more than {shipped_at_most} times: {many}"
    return outputs


def committed_offsets(fleet: Fleet) -> dict[int, int]:
    """The group's committed offset of each requests partition (absent: none committed)."""
    return kafka.committed_offsets(fleet.bootstrap, fleet.group, fleet.requests, fleet.partitions)


def end_offsets(fleet: Fleet, topic: str | None = None) -> dict[int, int]:
    """The high watermark of each partition of ``topic`` (the requests topic by default)."""
    consumer = Consumer({"bootstrap.servers": fleet.bootstrap, "group.id": "fleet-test-offsets"})
    try:
        name = topic or fleet.requests
        return {
            p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for p in range(fleet.partitions)
        }
    finally:
        consumer.close()


class Flow:
    """Requests sent in the background, ``batch`` every ``interval`` seconds, over ``keys``
    (request ``i`` runs action ``actions[i % len(actions)]``), until :meth:`stop`; ``sent``
    holds what the broker acknowledged."""

    def __init__(
        self,
        fleet: Fleet,
        keys: Sequence[str],
        *,
        batch: int = 4,
        interval: float = 0.1,
        actions: Sequence[str] = ("charge",),
    ) -> None:
        self._sender = fleet.sender()
        self._keys = list(keys)
        self._actions = list(actions)
        self._batch = batch
        self._interval = interval
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.sent: list[SentRequest] = []
        self._thread = threading.Thread(target=self._run, name="fleet-test-flow", daemon=True)

    def __enter__(self) -> Flow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        n = len(self.sent)
        try:
            while not self._stop.wait(self._interval):
                requests = [
                    (
                        self._keys[i % len(self._keys)],
                        self._actions[i % len(self._actions)],
                        {"order": i},
                    )
                    for i in range(n, n + self._batch)
                ]
                self.sent.extend(self._sender.send_many(requests))
                n += self._batch
        except BaseException as exc:
            self._error = exc

    def stop(self) -> list[SentRequest]:
        """Stop sending; every request sent (re-raises what stopped the thread)."""
        self.__exit__()
        assert not self._thread.is_alive(), "the sending thread did not stop"
        if self._error is not None:
            raise self._error
        return list(self.sent)
