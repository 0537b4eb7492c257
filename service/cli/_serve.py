"""``actionstate serve``: the sidecar in the foreground."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from actionstate.service.cli._exit import exit_rule
from actionstate.service.sidecar import SidecarServer, SidecarSettings

__all__ = ["register", "serve_command"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the CLI."""
    app.command("serve")(serve_command)


def _enforces(settings: SidecarSettings) -> str:
    auth = (
        "every request needs the token"
        if settings.token_value
        else "no token: any local process may read and write"
    )
    signing = (
        "records are signed with the signing secret (unsigned PUT bodies are signed for "
        "token holders) and only verified records are served"
        if settings.signing_secret is not None
        else "no signing secret: records are neither signed nor verified"
    )
    return f"enforcing: {auth}; {signing}"


@exit_rule()
def serve_command(
    *,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            help="Kafka bootstrap servers, HOST:PORT. None: start the local broker.",
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(
            envvar="ACTIONSTATE_TOPIC", help="The state topic [default: actionstate-states]."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [default: 8080].")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ACTIONSTATE_TOKEN",
            help="Bearer token every request must carry; required off loopback. Visible in "
            "the process list: prefer --token-file.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="ACTIONSTATE_TOKEN_FILE",
            help="File holding the bearer token (read at start, whitespace stripped; "
            "keep it chmod 600).",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            help="Largest request body served; larger get a 413 [default: the record "
            "limit, max_record_bytes: 8 MiB]."
        ),
    ] = None,
    ready_max_lag_s: Annotated[
        float | None,
        typer.Option(
            "--ready-max-lag",
            help="Seconds the view may go unconfirmed (broker unreachable, follower "
            "behind) before /readyz answers 503 [default: 15].",
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="Partitions to create a missing topic with [default: 64]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the local broker, when one is started [default: .actionstate]."
        ),
    ] = None,
) -> None:
    """Serve the state topic over HTTP: a materialized view, writes, prune, health, metrics.

    Makes sure the compacted topic exists, reads it to its end (then /readyz answers 200)
    and keeps following it. Without bootstrap servers it starts the local Kafka broker.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    given: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "topic": topic,
        "host": host,
        "port": port,
        "token": token,
        "token_file": token_file,
        "max_body_bytes": max_body_bytes,
        "ready_max_lag_s": ready_max_lag_s,
        "partitions": partitions,
        "data_dir": data_dir,
    }
    settings = SidecarSettings(**{k: v for k, v in given.items() if v is not None})
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def progress(line: str) -> None:
        err.print(f"[dim]…[/] {escape(line)}")

    def started(url: str) -> None:
        err.print(f"sidecar listening on [bold]{url}[/] - OpenAPI: {url}/openapi.json")
        err.print(escape(_enforces(settings)))

    SidecarServer(settings, progress=progress).run(on_started=started)
