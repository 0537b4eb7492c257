"""``actionstate kafka install|start|stop|status``: a real local Kafka broker, no Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from actionstate.service.cli._exit import CommandFailed, ExitCode, exit_rule
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings

__all__ = ["app", "register"]

app = typer.Typer(
    help="Run a real Apache Kafka broker (KRaft) on 127.0.0.1, resolved from Maven Central.",
    no_args_is_help=True,
)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Folder for the broker's config, data, logs and pid file [default: .actionstate]",
        file_okay=False,
    ),
]
VersionOption = Annotated[
    str | None,
    typer.Option("--version", help="Apache Kafka version to run [default: 4.1.1]"),
]


def register(root: typer.Typer) -> None:
    """Add the ``kafka`` command group to the root application."""
    root.add_typer(app, name="kafka")


def _launcher(directory: Path | None, version: str | None, **extra: Any) -> LocalKafka:
    overrides: dict[str, Any] = dict(extra)
    if directory is not None:
        overrides["dir"] = directory
    if version is not None:
        overrides["version"] = version
    return LocalKafka(LocalKafkaSettings(**overrides))


def _progress(line: str) -> None:
    _err.print(f"[dim]…[/dim] {escape(line)}")


@app.command()
@exit_rule()
def install(directory: DirOption = None, version: VersionOption = None) -> None:
    """Resolve the Kafka jars into the cache (once); prints the jar folder."""
    kafka = _launcher(directory, version)
    jars = kafka.install(_progress)
    typer.echo(str(jars))


@app.command()
@exit_rule()
def start(
    directory: DirOption = None,
    version: VersionOption = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the broker [default: 120]")
    ] = None,
) -> None:
    """Start the broker in the background; prints its bootstrap address on the last line."""
    extra = {"start_timeout": timeout} if timeout is not None else {}
    kafka = _launcher(directory, version, **extra)
    bootstrap = kafka.start(_progress)
    typer.echo(bootstrap)


@app.command()
@exit_rule()
def stop(directory: DirOption = None) -> None:
    """Stop the broker of the folder (SIGTERM, then SIGKILL after a timeout)."""
    kafka = _launcher(directory, None)
    pid = kafka.stop()
    if pid is None:
        typer.echo(f"no Kafka broker running in {kafka.dir}")
    else:
        typer.echo(f"stopped the Kafka broker (pid {pid}) in {kafka.dir}")


@app.command()
@exit_rule()
def status(directory: DirOption = None) -> None:
    """Say whether the folder's broker runs and where; exit code 0 when it runs, 3 when not."""
    state = _launcher(directory, None).status()
    if not state.running:
        typer.echo(f"no Kafka broker running in {state.dir}")
        raise CommandFailed(code=ExitCode.NOT_RUNNING)
    typer.echo(f"Kafka broker running at {state.bootstrap} (pid {state.pid}) in {state.dir}")
