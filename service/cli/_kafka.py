"""``actionstate kafka install|start|stop|status``: a real local Kafka broker, or a cluster
of them (``--brokers 3``, one node stopped and started with ``--node N``), no Docker."""

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
NodeOption = Annotated[
    int | None,
    typer.Option("--node", help="Only this node of the folder's cluster (1, 2, 3 ...)", min=1),
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
    brokers: Annotated[
        int | None,
        typer.Option(
            "--brokers",
            help="Nodes of a KRaft cluster (combined broker+controller) in the folder "
            "[default: 1, a single broker; an existing cluster keeps its count]",
            min=1,
            max=9,
        ),
    ] = None,
    node: NodeOption = None,
) -> None:
    """Start the broker (or cluster, or one ``--node`` of it) in the background; prints the
    bootstrap address on the last line (a cluster's lists every broker)."""
    extra: dict[str, Any] = {"start_timeout": timeout} if timeout is not None else {}
    if brokers is not None:
        extra["brokers"] = brokers
    kafka = _launcher(directory, version, **extra)
    bootstrap = kafka.start(_progress) if node is None else kafka.start_node(node, _progress)
    typer.echo(bootstrap)


@app.command()
@exit_rule()
def stop(
    directory: DirOption = None,
    node: NodeOption = None,
    kill: Annotated[
        bool, typer.Option("--kill", help="SIGKILL at once (a crash), not a clean SIGTERM")
    ] = False,
) -> None:
    """Stop the broker of the folder, every node of its cluster, or one ``--node`` (SIGTERM,
    then SIGKILL after a timeout; ``--kill`` for SIGKILL at once)."""
    kafka = _launcher(directory, None)
    if node is not None:
        pid = kafka.stop_node(node, kill=kill)
        what = f"node {node} of the Kafka cluster"
    else:
        before = kafka.status()
        pid = kafka.stop(kill=kill)
        running = [n for n in before.nodes if n.running]
        what = f"{len(running)} Kafka nodes" if before.nodes else "the Kafka broker"
        if before.nodes and pid is not None:
            pids = ", ".join(f"node {n.node_id}: {n.pid}" for n in running)
            typer.echo(f"stopped {what} ({pids}) in {kafka.dir}")
            return
    if pid is None:
        typer.echo(f"no {what.removeprefix('the ')} running in {kafka.dir}")
    else:
        typer.echo(f"stopped {what} (pid {pid}) in {kafka.dir}")


@app.command()
@exit_rule()
def status(directory: DirOption = None) -> None:
    """Say whether the folder's broker (or every node of its cluster) runs and where; exit
    code 0 when it runs (all nodes), 3 when not."""
    state = _launcher(directory, None).status()
    for node in state.nodes:
        where = f"at {node.bootstrap} (pid {node.pid})" if node.running else "not running"
        typer.echo(f"node {node.node_id}: {where} in {node.dir}")
    if state.nodes:
        up = sum(n.running for n in state.nodes)
        typer.echo(f"Kafka cluster: {up} of {len(state.nodes)} nodes running in {state.dir}")
        if not state.running:
            raise CommandFailed(code=ExitCode.NOT_RUNNING)
        typer.echo(state.bootstrap or "")
        return
    if not state.running:
        typer.echo(f"no Kafka broker running in {state.dir}")
        raise CommandFailed(code=ExitCode.NOT_RUNNING)
    typer.echo(f"Kafka broker running at {state.bootstrap} (pid {state.pid}) in {state.dir}")
