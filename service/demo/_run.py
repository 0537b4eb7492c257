"""``actionstate demo``: a fleet of two workers; one is killed mid-payment, the other takes
over its partition and reconciles.

The demo starts (or reuses) a Kafka broker, starts the sidecar (``actionstate serve``, the
HTTP view of the state topic), and two ``actionstate worker`` processes of one consumer
group, which share the requests topic's partitions and journal to the state topic through
fenced Kafka stores. It sends a few orders (every partition gets some); the worker that owns
``AGENT_KEY``'s partition books that order's charge and hangs before journaling the outcome,
and the demo SIGKILLs it. The group moves its partitions to the other worker, which fences
it, rebuilds them and recovers the order: the reconciler asks the provider instead of
charging again. The checks read the books, the logs and the final states. Everything it
started, it stops, also on error and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actionstate.client import RequestTimeoutError
from actionstate.client.fleet import RequestSender, SentRequest
from actionstate.serde import partition_for
from actionstate.service._errors import ServiceError
from actionstate.service._process import alive, free_ports
from actionstate.service.demo._checks import Check, Seen, checks_table, judge
from actionstate.service.demo._fleet import Member
from actionstate.service.demo._orders import ACTION, AGENT_KEY, ORDER, RUN_DIR_ENV, other_orders
from actionstate.service.demo._procs import Child, StartedProcess, poll_until, python_module
from actionstate.service.demo._world import CRASH_MARKER
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

_CLI = "actionstate.service.cli"
_APP = "actionstate.service.demo._worker:worker"
_SESSION_TIMEOUT_MS = 6000
# A dead member loses its partitions after the session timeout: seconds, not the default 45.
_GROUP_PROPERTIES = (
    "-X",
    f"session.timeout.ms={_SESSION_TIMEOUT_MS}",
    "-X",
    "heartbeat.interval.ms=1000",
)
_GRACE_S = 5
# The demo's sidecar and workers talk over loopback without a token or signatures; a
# token or secret meant for the user's own sidecar would only lock the demo's worker out.
_NOT_FOR_THE_DEMO = ("ACTIONSTATE_TOKEN", "ACTIONSTATE_SIGNING_SECRET")


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_DEMO}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    bootstrap_servers: str | None
    """A Kafka to use; None: start the local broker under ``dir / "kafka"``."""
    dir: Path = Path(".actionstate/demo")
    timeout: float = 120.0
    """Seconds any single wait (broker, sidecar, worker) may take."""
    partitions: int = 4
    """Partitions of the demo's topics (they are created fresh each run)."""


@dataclass
class DemoResult:
    """What the demo found, and which processes it started (all stopped when it returns)."""

    checks: list[Check] = field(default_factory=list)
    started: list[StartedProcess] = field(default_factory=list)
    left_running: list[StartedProcess] = field(default_factory=list)
    verdict: str = ""

    @property
    def ok(self) -> bool:
        """True when every invariant held and nothing the demo started is left running."""
        return bool(self.checks) and all(c.ok for c in self.checks) and not self.left_running


@dataclass(frozen=True)
class _Kill:
    """The hung order's request, the worker killed over it, and the one left."""

    sent: SentRequest
    member: Member
    survivor: Member
    mark: int
    """The survivor's log length at the kill: what it logs after it is the takeover."""


class _Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.run_id = uuid.uuid4().hex[:8]
        self.topic = f"actionstate-demo-{self.run_id}"
        self.requests = f"{self.topic}-requests"
        self.base = options.dir.expanduser().resolve()
        self.run_dir = self.base / "runs" / self.run_id
        self.stack = contextlib.ExitStack()
        self.result = DemoResult()
        self.seen = Seen()
        self.bootstrap = ""
        self.sidecar_url = ""
        self.members: list[Member] = []
        self.state_keys: dict[str, str] = {}  # agent key → the state key of its request
        self._sender: RequestSender | None = None
        self._step = 0

    # -- output -------------------------------------------------------------------------
    def step(self, title: str) -> None:
        self._step += 1
        self.console.print()
        self.console.print(f"[bold cyan]{self._step}.[/] [bold]{escape(title)}[/]")

    def say(self, text: str) -> None:
        self.console.print(f"   {text}", soft_wrap=True)

    def started(self, role: str, pid: int) -> None:
        self.result.started.append(StartedProcess(role, pid))

    @property
    def sender(self) -> RequestSender:
        assert self._sender is not None, "the requests topic is opened with the sidecar"
        return self._sender

    # -- the story ----------------------------------------------------------------------
    def play(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.console.print(
            "[bold]actionstate demo[/]: two workers share the orders; one is killed in the "
            "middle of a payment, the other takes over its partition and reconciles it, and "
            "every order is charged exactly once."
        )
        self.say(
            f"run folder [dim]{escape(str(self.run_dir))}[/], topic [dim]{self.topic}[/], "
            f"requests [dim]{self.requests}[/]"
        )
        self.start_broker()
        self.start_sidecar()
        self.start_fleet()
        self.run_orders()
        kill = self.hang_and_kill()
        self.show_pending(kill.sent)
        self.take_over(kill)
        self.show_final_states()
        self.stop_survivor(kill)

    def start_broker(self) -> None:
        self.step("Kafka broker")
        if self.options.bootstrap_servers:
            self.bootstrap = self.options.bootstrap_servers
            self.say(f"using the configured broker at {escape(self.bootstrap)}")
            return
        kafka = LocalKafka(LocalKafkaSettings(dir=self.base / "kafka"))
        status = kafka.status()
        if status.running and status.bootstrap is not None:
            self.bootstrap = status.bootstrap
            self.say(
                f"reusing the local broker already running at {self.bootstrap} "
                f"(pid {status.pid}); not started here, so it is left running"
            )
            return
        # Registered first: a Ctrl-C while it starts still stops it.
        self.stack.callback(self.stop_broker, kafka)
        self.bootstrap = kafka.start(lambda line: self.say(f"[dim]{escape(line)}[/]"))
        pid = kafka.status().pid
        if pid is not None:
            self.started("broker", pid)
        self.say(f"started the local Kafka broker on {self.bootstrap} (pid {pid})")

    def stop_broker(self, kafka: LocalKafka) -> None:
        pid = kafka.stop()
        if pid is not None:
            self.say(f"stopped the Kafka broker (pid {pid})")

    def start_sidecar(self) -> None:
        self.step("Sidecar, state topic and requests topic")
        (port,) = free_ports(1)
        command = python_module(
            _CLI,
            "serve",
            "--bootstrap-servers",
            self.bootstrap,
            "--topic",
            self.topic,
            "--partitions",
            str(self.options.partitions),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        )
        child = Child("sidecar", command, self.run_dir / "sidecar.log", env=_child_env())
        self.started("sidecar", child.pid)
        self.stack.callback(self.stop_child, child)
        self.sidecar_url = f"http://127.0.0.1:{port}"
        self.say(f"actionstate serve --topic {self.topic} on {self.sidecar_url} (pid {child.pid})")

        def ready() -> bool | None:
            try:
                answer = httpx.get(f"{self.sidecar_url}/readyz", timeout=2.0)
            except httpx.HTTPError:
                return None
            return True if answer.status_code == 200 else None

        poll_until(
            ready,
            what="waiting for the sidecar to be ready",
            timeout=self.options.timeout,
            child=child,
        )
        self.say(
            f"ready: it created the state topic ({self.options.partitions} partitions, "
            "compacted) and serves its view over HTTP"
        )
        # The sender creates the requests topic with the state topic's partition count.
        self._sender = self.stack.enter_context(
            RequestSender(
                bootstrap_servers=self.bootstrap,
                requests=self.requests,
                topic=self.topic,
                signing_secret=None,  # the demo's records are not signed (see _child_env)
            )
        )
        self.say(
            f"requests topic {self.requests}: {self.sender.partitions} partitions, so request "
            "partition p and state partition p hold the same agent keys"
        )

    def stop_child(self, child: Child) -> None:
        if child.running():
            child.stop()
            self.say(f"stopped the {child.role} (pid {child.pid})")
        else:
            child.stop()  # reaps it

    def start_fleet(self) -> None:
        self.step("Two workers join the fleet")
        args = ["--bootstrap-servers", self.bootstrap, "--topic", self.topic]
        args += ["--requests", self.requests, "--group", self.topic]
        args += ["--partitions", str(self.options.partitions), "--grace", str(_GRACE_S)]
        args += _GROUP_PROPERTIES
        self.say(f"[dim]$ actionstate worker {_APP} {escape(' '.join(args))}[/]")
        # JSON payloads (not cloudpickle): the sidecar shows the receipts as they are.
        env = _child_env(ACTIONSTATE_PAYLOAD_CODEC="json", **{RUN_DIR_ENV: str(self.run_dir)})
        for letter in "AB":
            log = self.run_dir / f"worker-{letter.lower()}.log"
            child = Child("worker", python_module(_CLI, "worker", _APP, *args), log, env=env)
            self.started("worker", child.pid)
            self.stack.callback(self.stop_child, child)
            member = Member(f"worker {letter}", child)
            self.members.append(member)
            self.seen.pids[member.name] = member.pid
            self.say(f"{member.name} (pid {member.pid}), log [dim]{escape(str(log))}[/]")
        everything = set(range(self.options.partitions))

        def shared() -> bool | None:
            self.check_members("waiting for both workers to own partitions")
            owned = [m.owned() for m in self.members]
            apart = not set.intersection(*owned)
            return True if all(owned) and apart and set.union(*owned) == everything else None

        poll_until(
            shared,
            what="waiting for both workers to own partitions",
            timeout=self.options.timeout,
        )
        for m in self.members:
            self.say(f"{m.name} owns partitions {sorted(m.owned())}")

    def check_members(self, what: str, members: Iterable[Member] | None = None) -> None:
        for m in self.members if members is None else members:
            if not m.child.running():
                raise m.child.failure(what)

    def owner(self, partition: int) -> Member:
        [member] = [m for m in self.members if partition in m.owned()]
        return member

    def member(self, pid: int) -> Member | None:
        return next((m for m in self.members if m.pid == pid), None)

    def wait_outcomes(self, sent: list[SentRequest]) -> dict[str, dict[str, Any]]:
        outputs: dict[str, dict[str, Any]] = {}
        try:
            for one, output in self.sender.wait_many(sent, self.options.timeout):
                outputs[one.agent_key] = output
        except RequestTimeoutError as exc:
            logs = ", ".join(str(m.log) for m in self.members)
            raise ServiceError(f"{exc} The workers' logs: {logs}") from exc
        self.seen.outputs.update(outputs)
        return outputs

    def run_orders(self) -> None:
        orders = other_orders(self.options.partitions)
        self.step(f"{len(orders)} orders through the requests topic")
        sent = self.sender.send_many([(o["order_id"], ACTION, o) for o in orders])
        for s in sent:
            self.seen.orders.append(s.agent_key)
            self.state_keys[s.agent_key] = s.state_key
        self.say(f"sent {', '.join(s.agent_key for s in sent)}; waiting for their outcomes")
        outputs = self.wait_outcomes(sent)
        table = Table()
        for column in ("order", "request P:O", "ran on", "charge"):
            table.add_column(column)
        for s in sent:
            output = outputs[s.agent_key]
            table.add_row(
                s.agent_key,
                str(s.request_id),
                self.who(output.get("worker_pid")),
                escape(str(output.get("charge_id"))),
            )
        self.console.print(table)

    def who(self, pid: object) -> str:
        found = self.member(pid) if isinstance(pid, int) else None
        return f"pid {pid}" if found is None else found.name

    def hang_and_kill(self) -> _Kill:
        p = partition_for(AGENT_KEY, self.options.partitions)
        self.seen.hung_partition = p
        owner = self.owner(p)
        self.step(f"{AGENT_KEY}: {owner.name} is killed in the middle of its payment")
        sent = self.sender.send(AGENT_KEY, ACTION, ORDER)
        self.seen.orders.append(AGENT_KEY)
        self.state_keys[AGENT_KEY] = sent.state_key
        self.say(f"sent {AGENT_KEY} as request {sent.request_id}: partition {p}, {owner.name}'s")
        marker = self.run_dir / CRASH_MARKER

        def hanging() -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return None
            return found

        info = poll_until(
            hanging,
            what=f"waiting for {owner.name} to reach the payment",
            timeout=self.options.timeout,
            child=owner.child,
        )
        hung = self.member(int(info["pid"]))
        if hung is None:  # the marker's pid is not ours: never signal a stranger
            raise ServiceError(f"the crash marker {marker} names pid {info['pid']}, not a worker")
        [survivor] = [m for m in self.members if m is not hung]
        for event in hung.events(AGENT_KEY):
            self.narrate(event)
        self.say(
            f"charge payment: PENDING journaled, then the provider booked "
            f"{escape(str(info.get('charge_id')))}; {hung.name} hangs before journaling it"
        )
        mark = len(survivor.text())  # the takeover is what the survivor logs after this
        owned = sorted(hung.owned())
        self.seen.kill_status = hung.child.kill()
        self.seen.killed, self.seen.survivor = hung.name, survivor.name
        self.say(
            f"[bold red]SIGKILL[/] {hung.name} (pid {hung.pid}): the money is taken, the "
            f"answer is lost, and its partitions {owned} have no owner"
        )
        return _Kill(sent, hung, survivor, mark)

    def narrate(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "call":
            how = str(event.get("how"))
            color = {"replayed": "green", "reconciled": "magenta"}.get(how, "cyan")
            result = event.get("result") or {}
            shown = result.get("charge_id") or result.get("reservation_id") or result
            self.say(f"{escape(str(event.get('step')))}: [{color}]{how}[/] → {escape(str(shown))}")
        elif kind == "reconciler":
            answer = event.get("answer", {})
            key = escape(str(event.get("idempotency_key")))
            self.say(
                f"reconciler asks the provider about idempotency key [dim]{key}[/]: "
                f"charge {escape(str(answer.get('charge_id')))} exists"
            )

    def state(self, state_key: str) -> dict[str, Any] | None:
        """The sidecar's view of ``state_key`` (None: it holds no such state yet)."""
        try:
            answer = httpx.get(f"{self.sidecar_url}/v1/states/{state_key}", timeout=10.0)
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceError(f"the sidecar did not serve state {state_key}: {exc}") from exc
        found: dict[str, Any] = answer.json()
        return found

    def state_when(
        self, state_key: str, ready: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any] | None:
        """The state once ``ready`` says so; the last one seen (or None) after the timeout."""

        def check() -> dict[str, Any] | None:
            found = self.state(state_key)
            return found if found is not None and ready(found) else None

        try:
            return poll_until(check, what=what, timeout=self.options.timeout)
        except ServiceError:
            return self.state(state_key)

    def show_pending(self, sent: SentRequest) -> None:
        self.step("The journal after the kill, as the sidecar serves it")
        self.say(f"GET /v1/states/{escape(sent.state_key)}")
        item = self.state_when(
            sent.state_key,
            lambda s: bool(s["pending_calls"] or s["completed"]),
            f"waiting for the sidecar to show {AGENT_KEY}'s PENDING payment",
        )
        if item is None:
            self.say(f"[red]the sidecar holds no state of {AGENT_KEY}[/]")
            return
        calls: list[dict[str, Any]] = item["record"].get("callResults", [])
        table = Table()
        for column in ("#", "durable call", "status", "outcome"):
            table.add_column(column)
        for i, call in enumerate(calls):
            function_id = str(call.get("functionId"))
            status = str(call.get("status"))
            shown = "[yellow]PENDING[/]" if status == "PENDING" else f"[green]{status}[/]"
            payload = call.get("resultPayload") or call.get("exceptionPayload")
            outcome = "never journaled" if payload is None else "journaled"
            # "module.Class.method": the class and method say enough in a table cell.
            table.add_row(str(i), escape(".".join(function_id.split(".")[-2:])), shown, outcome)
            if status == "PENDING":
                self.seen.pending_function = function_id
                self.seen.pending_offset = item["offset"]
        self.console.print(table)
        self.say(f"partition {item['partition']}, offset {item['offset']}")

    def take_over(self, kill: _Kill) -> None:
        p, survivor = self.seen.hung_partition, kill.survivor
        self.step(f"{survivor.name} takes over partition {p} and recovers {AGENT_KEY}")
        self.say(
            f"the group moves the partitions once {kill.member.name}'s session times out "
            f"({_SESSION_TIMEOUT_MS / 1000:g} s)"
        )
        taken = poll_until(
            lambda: next(
                (
                    r
                    for r in survivor.rebalances(kill.mark)
                    if r.kind == "assigned" and p in r.partitions
                ),
                None,
            ),
            what=f"waiting for {survivor.name} to be assigned partition {p}",
            timeout=self.options.timeout,
            child=survivor.child,
        )
        self.say(f"{survivor.name}: [dim]{escape(taken.line)}[/]")
        output = self.wait_outcomes([kill.sent])[AGENT_KEY]
        for event in survivor.events(AGENT_KEY):
            self.narrate(event)
        self.say(f"output: {escape(json.dumps(output))}")

    def show_final_states(self) -> None:
        self.step("The final states, as the sidecar serves them")
        table = Table()
        for column in ("order", "partition", "offset", "state", "written by"):
            table.add_column(column)
        for key in self.seen.orders:
            item = self.state_when(
                self.state_keys[key], lambda s: bool(s["completed"]), f"waiting for {key} completed"
            )
            if item is None:
                table.add_row(key, "", "", "[red]missing[/]", "")
                continue
            self.seen.final_states[key] = item
            pending = item["pending_calls"]
            shown = "[green]completed[/]" if item["completed"] else f"[red]{pending} pending[/]"
            written = self.who((self.seen.outputs.get(key) or {}).get("worker_pid"))
            table.add_row(key, str(item["partition"]), str(item["offset"]), shown, written)
        self.console.print(table)

    def stop_survivor(self, kill: _Kill) -> None:
        survivor = kill.survivor
        self.step(f"{survivor.name} leaves the fleet")
        self.seen.takeover = [(r.kind, r.partitions) for r in survivor.rebalances(kill.mark)]
        survivor.child.stop()
        self.seen.survivor_exit = survivor.child.proc.returncode
        self.say(
            f"SIGTERM {survivor.name} (pid {survivor.pid}): it commits, leaves the group, "
            f"and exits with code {self.seen.survivor_exit}"
        )

    def inspect_hint(self) -> str:
        if self.options.bootstrap_servers:
            bootstrap = self.bootstrap
        else:  # the broker is stopped; start prints its address on the last line
            bootstrap = f"$(actionstate kafka start --dir {self.base / 'kafka'})"
        return f"actionstate inspect --bootstrap-servers {bootstrap} --topic {self.topic}"


def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    """Play the demo, printing each step on ``console``; stops everything it started.

    Raises ServiceError when a step cannot be carried out (the processes are stopped
    first); a finished demo whose invariants did not hold returns ``ok == False``.
    """
    demo = _Demo(options, console)
    result = demo.result
    try:
        with demo.stack:
            demo.play()
            result.checks = judge(demo.run_dir, demo.seen)
            console.print()
            console.print(checks_table(result.checks))
            demo.step("Stopping what the demo started")
            demo.say("the topics and the run folder are kept; to look again:")
            demo.say(f"[dim]$ {escape(demo.inspect_hint())}[/]")
    finally:
        result.left_running = [p for p in result.started if alive(p.pid)]
        started = " ".join(f"{p.role}={p.pid}" for p in result.started)
        left = "some left running" if result.left_running else "none left running"
        console.print(f"pids: {started or 'none'} ({left})", soft_wrap=True)
        for p in result.left_running:
            console.print(f"[red]still running: {p.role} pid {p.pid}[/]")
        logs = sorted(path.name for path in demo.run_dir.glob("*.log"))
        if logs:
            console.print(f"logs in {escape(str(demo.run_dir))}: {', '.join(logs)}", soft_wrap=True)
    failed = [c.name for c in result.checks if not c.ok]
    if result.ok:
        result.verdict = (
            f"✓ every order charged exactly once; the surviving worker took over {AGENT_KEY}'s "
            "partition and reconciled it once"
        )
    elif failed:
        result.verdict = f"✗ demo failed: {'; '.join(failed)}"
    else:
        result.verdict = "✗ demo failed: processes left running"
    return result
