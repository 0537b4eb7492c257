"""``actionstate demo``: a worker is killed mid-payment, a new one recovers exactly once.

The demo starts (or reuses) a Kafka broker, starts the sidecar (``actionstate serve``) and
runs a worker process that journals through it. The worker's ``charge`` action reserves
stock, then charges the order through a durable call with a reconciler; the demo SIGKILLs
the worker after the payment provider booked the charge but before the outcome was
journaled, shows the PENDING slot, lets a new worker recover, and checks the books: one
charge, one reconciler lookup, the stock reservation replayed, the action completed.
Everything it started, it stops, also on error and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actionstate.service._errors import ServiceError
from actionstate.service._process import alive, free_ports
from actionstate.service.demo._checks import (
    AGENT_KEY,
    Check,
    Seen,
    checks_table,
    find_event,
    judge,
    parse_events,
)
from actionstate.service.demo._procs import (
    Child,
    StartedProcess,
    log_tail,
    poll_until,
    python_module,
)
from actionstate.service.demo._world import CRASH_MARKER, LEDGER, PaymentProvider
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings

__all__ = ["ORDER", "DemoOptions", "DemoResult", "run_demo"]

ORDER: dict[str, Any] = {
    "order_id": AGENT_KEY,
    "sku": "espresso-beans-1kg",
    "quantity": 2,
    "amount_cents": 4200,
}
_CLI = "actionstate.service.cli"
_WORKER = "actionstate.service.demo._worker"
# The demo's sidecar and workers talk over loopback without a token or signatures; a
# token or secret meant for the user's own sidecar would only lock the demo's worker out.
_NOT_FOR_THE_DEMO = ("ACTIONSTATE_TOKEN", "ACTIONSTATE_SIGNING_SECRET")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_DEMO}
    env["PYTHONUNBUFFERED"] = "1"
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
    """Partitions of the demo's topic (it is created fresh each run)."""


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


class _Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.run_id = uuid.uuid4().hex[:8]
        self.topic = f"actionstate-demo-{self.run_id}"
        self.base = options.dir.expanduser().resolve()
        self.run_dir = self.base / "runs" / self.run_id
        self.stack = contextlib.ExitStack()
        self.result = DemoResult()
        self.seen = Seen()
        self.bootstrap = ""
        self.sidecar_url = ""
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

    # -- the story ----------------------------------------------------------------------
    def play(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.console.print(
            "[bold]actionstate demo[/]: a worker is killed in the middle of a payment; "
            "a new worker recovers it, and the order is charged exactly once."
        )
        self.say(f"run folder [dim]{escape(str(self.run_dir))}[/], topic [dim]{self.topic}[/]")
        self.start_broker()
        self.start_sidecar()
        self.crash_worker()
        self.show_pending()
        self.recover()
        self.show_final_state()

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
        self.step("Sidecar")
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
        self.say("ready: /readyz answers 200 (the topic exists and the view is caught up)")

    def stop_child(self, child: Child) -> None:
        if child.running():
            child.stop()
            self.say(f"stopped the {child.role} (pid {child.pid})")
        else:
            child.stop()  # reaps it

    def worker_command(self, mode: str, *extra: str) -> list[str]:
        return python_module(
            _WORKER,
            mode,
            "--sidecar",
            self.sidecar_url,
            "--dir",
            str(self.run_dir),
            "--agent-key",
            AGENT_KEY,
            "--order",
            json.dumps(ORDER),
            *extra,
        )

    def crash_worker(self) -> None:
        self.step("Worker A runs the order, and is killed mid-payment")
        child = Child(
            "worker",
            self.worker_command("run", "--crash-after-charge"),
            self.run_dir / "worker-a.log",
            pipe_stdout=True,
            env=_child_env(),
        )
        self.started("worker", child.pid)
        self.stack.callback(self.stop_child, child)
        self.say(f"worker A (pid {child.pid}) submits {AGENT_KEY}: {escape(json.dumps(ORDER))}")
        marker = self.run_dir / CRASH_MARKER
        poll_until(
            lambda: True if marker.exists() else None,
            what="waiting for worker A to reach the payment",
            timeout=self.options.timeout,
            child=child,
        )
        self.seen.kill_status = child.kill()
        self.seen.crash_events = _events(child)
        for event in self.seen.crash_events:
            self.narrate(event)
        self.say(
            f"[bold red]SIGKILL[/] worker A (pid {child.pid}): the provider took the money, "
            "but the worker died before it could journal the outcome"
        )

    def narrate(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "call":
            how = str(event.get("how"))
            color = {"replayed": "green", "reconciled": "magenta"}.get(how, "cyan")
            self.say(
                f"{escape(str(event.get('step')))}: [{color}]{how}[/] → "
                f"{escape(json.dumps(event.get('result')))}"
            )
        elif kind == "charged":
            receipt = event.get("receipt", {})
            self.say(
                f"charge payment: PENDING slot journaled, then the provider booked "
                f"{escape(str(receipt.get('charge_id')))} for {receipt.get('amount_cents')} cents"
            )
        elif kind == "reconciler":
            answer = event.get("answer", {})
            key = escape(str(event.get("idempotency_key")))
            self.say(
                f"reconciler asks the provider about idempotency key [dim]{key}[/]: "
                f"charge {escape(str(answer.get('charge_id')))} exists"
            )

    def show_pending(self) -> None:
        self.step("The journal after the crash, as the sidecar serves it")
        url = f"{self.sidecar_url}/v1/states"
        params = {"agent_key": AGENT_KEY, "status": "pending"}

        def pending() -> list[dict[str, Any]] | None:
            try:
                answer = httpx.get(url, params=params, timeout=10.0)
                answer.raise_for_status()
            except httpx.HTTPError as exc:
                raise ServiceError(f"the sidecar did not list the pending states: {exc}") from exc
            items: list[dict[str, Any]] = answer.json()["items"]
            return items or None

        self.say(f"GET /v1/states?agent_key={AGENT_KEY}&status=pending")
        [item] = poll_until(
            pending,
            what="waiting for the sidecar to show the PENDING state",
            timeout=self.options.timeout,
        )
        calls: list[dict[str, Any]] = item["record"].get("callResults", [])
        self.say(f"state key [dim]{escape(str(item['state_key']))}[/], codec {item.get('codec')}")
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
        self.console.print(table)
        charges = PaymentProvider(self.run_dir / LEDGER).charges(AGENT_KEY)
        self.say(f"the provider's ledger meanwhile holds {len(charges)} charge(s) for {AGENT_KEY}")

    def recover(self) -> None:
        self.step("Worker B recovers")
        child = Child(
            "worker",
            self.worker_command("recover"),
            self.run_dir / "worker-b.log",
            pipe_stdout=True,
            env=_child_env(),
        )
        self.started("worker", child.pid)
        self.stack.callback(self.stop_child, child)
        self.say(f"worker B (pid {child.pid}) calls worker.recover()")
        try:
            out, _ = child.proc.communicate(timeout=self.options.timeout)
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"worker B did not finish within {self.options.timeout:.0f}s; see {child.log}"
            ) from None
        self.seen.recovery_exit = child.proc.returncode
        self.seen.recovery_events = parse_events(out)
        for event in self.seen.recovery_events:
            self.narrate(event)
        report = find_event(self.seen.recovery_events, "recovered")
        if report is not None:
            self.say(
                f"recovery report: {report['resumed']} action resumed, {report['completed']} "
                f"completed; calls replayed {report['replayed']}, reconciled "
                f"{report['reconciled']}, executed {report['executed']}, re-executed "
                f"{report['reexecuted']}"
            )
        done = find_event(self.seen.recovery_events, "completed")
        if done is not None:
            self.say(f"output: {escape(json.dumps(done['output']))}")
        if child.proc.returncode != 0:
            tail = log_tail(child.log)
            self.say(f"[red]worker B exited with code {child.proc.returncode}[/]")
            if tail:
                self.console.print(escape(tail), soft_wrap=True)

    def inspect_hint(self) -> str:
        if self.options.bootstrap_servers:
            bootstrap = self.bootstrap
        else:  # the broker is stopped; start prints its address on the last line
            bootstrap = f"$(actionstate kafka start --dir {self.base / 'kafka'})"
        return f"actionstate inspect --bootstrap-servers {bootstrap} --topic {self.topic}"

    def show_final_state(self) -> None:
        self.step("The final state, as actionstate inspect reads it from the topic")
        args = ["--bootstrap-servers", self.bootstrap, "--topic", self.topic]
        args += ["--agent-key", AGENT_KEY]
        self.say(f"$ actionstate inspect {' '.join(args)}")
        self.console.file.flush()
        sys.stdout.flush()
        # Inherits the terminal: the table looks exactly as the command prints it.
        subprocess.run(python_module(_CLI, "inspect", *args), check=False, env=_child_env())
        done = subprocess.run(
            python_module(_CLI, "inspect", *args, "--format", "json"),
            capture_output=True,
            text=True,
            check=False,
            timeout=self.options.timeout,
            env=_child_env(),
        )
        if done.returncode != 0:
            raise ServiceError(f"actionstate inspect failed: {done.stderr.strip()}")
        self.seen.final_records = [
            json.loads(line) for line in done.stdout.splitlines() if line.strip()
        ]


def _events(child: Child) -> list[dict[str, Any]]:
    out = child.stdout.read() if child.stdout is not None else b""
    return parse_events(out)


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
            demo.say(f"the topic {demo.topic} and the run folder are kept; to look again:")
            demo.say(f"[dim]$ {escape(demo.inspect_hint())}[/]")
    finally:
        result.left_running = [p for p in result.started if alive(p.pid)]
        started = " ".join(f"{p.role}={p.pid}" for p in result.started)
        left = "some left running" if result.left_running else "none left running"
        console.print(f"pids: {started or 'none'} ({left})", soft_wrap=True)
        for p in result.left_running:
            console.print(f"[red]still running: {p.role} pid {p.pid}[/]")
    failed = [c.name for c in result.checks if not c.ok]
    if result.ok:
        result.verdict = f"✓ {AGENT_KEY} charged exactly once; reconciler ran once"
    elif failed:
        result.verdict = f"✗ demo failed: {'; '.join(failed)}"
    else:
        result.verdict = "✗ demo failed: processes left running"
    return result
