"""``actionstate demo``: the worker fleet's kill-and-take-over walkthrough, in one command."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from actionstate.service.cli._exit import CommandFailed, exit_rule
from actionstate.service.demo import DemoOptions, run_demo

__all__ = ["demo_command", "register"]


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the CLI."""
    app.command("demo")(demo_command)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the demo still stops what it started.
    raise KeyboardInterrupt(signal.Signals(signum).name)


@exit_rule(interrupted="stopped everything the demo started")
def demo_command(
    *,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            help="A Kafka broker to use, HOST:PORT (default: start the local broker).",
        ),
    ] = None,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            file_okay=False,
            help="Folder for the local broker and the demo's files.",
        ),
    ] = Path(".actionstate/demo"),
    timeout: Annotated[
        float, typer.Option(help="Seconds any single wait (broker, sidecar, workers) may take.")
    ] = 120.0,
) -> None:
    """Run a fleet of two workers, kill one mid-payment, and watch the other take over.

    Starts the local Kafka broker (unless a broker is given), the sidecar, and two
    `actionstate worker` processes of one consumer group, then sends a few orders.
    The worker owning order-42's partition is SIGKILLed after the provider booked its
    charge, before the outcome was journaled. The other worker is assigned the partition,
    recovers the order, and its reconciler asks the provider instead of charging again.
    Everything the demo started is stopped at the end, also on error or Ctrl-C.
    Exit code 0 only when every order was charged once and the reconciler ran once.
    """
    console = Console(highlight=False)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    options = DemoOptions(
        bootstrap_servers=bootstrap_servers or None, dir=directory, timeout=timeout
    )
    try:
        result = run_demo(options, console)
    finally:
        signal.signal(signal.SIGTERM, previous)
    style = "bold green" if result.ok else "bold red"
    console.print(f"[{style}]{escape(result.verdict)}[/]", soft_wrap=True)
    if not result.ok:
        raise CommandFailed()  # the verdict says why
