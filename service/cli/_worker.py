"""``actionstate worker``: one member of a worker fleet, in the foreground.

``actionstate worker app.payments:worker --requests orders-requests --group payments``
imports ``app.payments``, takes its ``worker`` (a ``Worker`` with registered actions) and
runs it on the requests topic until SIGTERM or Ctrl-C (then it finishes or drops running
work within the grace period, commits, leaves the group and exits 0).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import start_http_server

from actionstate.client import KafkaStore, KafkaStoreSettings, Worker
from actionstate.client.fleet import FleetMetrics, FleetSettings
from actionstate.service.cli._exit import CommandFailed, ExitCode, exit_rule
from actionstate.service.cli._options import (
    BootstrapServersOption,
    PropertyOption,
    RequestsOption,
    StateTopicOption,
    parse_client_properties,
    settings_from_flags,
)

__all__ = ["load_worker", "register", "worker_command"]

_log = logging.getLogger("actionstate.fleet")


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command to the CLI."""
    app.command("worker")(worker_command)


def load_worker(target: str, app_dir: Path) -> Worker:
    """The ``Worker`` that ``module:attribute`` names (``attribute`` defaults to
    ``worker``), imported with ``app_dir`` first on the path, as uvicorn does."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise CommandFailed(
            f"APP {target!r}: write MODULE:ATTRIBUTE, e.g. app.payments:worker", ExitCode.USAGE
        )
    sys.path.insert(0, str(app_dir.resolve()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandFailed(
            f"APP {target!r}: cannot import {module_name!r} ({exc}); run from the folder "
            "that holds it, or pass --app-dir",
            ExitCode.USAGE,
        ) from exc
    name = attr or "worker"
    found = getattr(module, name, None)
    if not isinstance(found, Worker):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise CommandFailed(
            f"APP {target!r}: {module_name}.{name} is {what}, not an actionstate Worker",
            ExitCode.USAGE,
        )
    return found


@exit_rule()
def worker_command(
    app: Annotated[str, typer.Argument(help="The Worker to run, as MODULE:ATTRIBUTE.")],
    *,
    bootstrap_servers: BootstrapServersOption = None,
    topic: StateTopicOption = None,
    requests: RequestsOption = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="The fleet's consumer group (env ACTIONSTATE_GROUP).", show_default=False
        ),
    ] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Requests taken and not finished, at most [default: 64].")
    ] = None,
    fencing: Annotated[
        str | None,
        typer.Option(
            help="transactions (default): the broker refuses a zombie's writes; none: "
            "at-least-once, reconcilers are the only safety net (see the README)."
        ),
    ] = None,
    dead_letter_topic: Annotated[
        str | None,
        typer.Option(help="Where bad requests go [default: REQUESTS.dead-letter]."),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds running actions get on revocation or shutdown [default: 10]."),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="Partitions to create a missing state topic with [default: 64]."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics endpoint binds.")
    ] = "127.0.0.1",
    app_dir: Annotated[
        Path, typer.Option(help="Folder put first on the import path for APP.")
    ] = Path(),
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
    properties: PropertyOption = None,
) -> None:
    """Run a fleet member: share the requests topic's partitions with the group, run each
    request's action durably, recover a lost member's unfinished actions, fence zombies."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    worker = load_worker(app, app_dir)
    extra = parse_client_properties(properties or [])
    fleet = FleetSettings(
        **_given(
            requests=requests,
            group=group,
            max_in_flight=max_in_flight,
            fencing=fencing,
            dead_letter_topic=dead_letter_topic,
            grace_s=grace,
            client_config=extra or None,
        )
    )
    store_settings = _store_settings(worker, bootstrap_servers, topic, partitions, properties)
    metrics = FleetMetrics()
    server = None
    if metrics_port is not None:
        server, _thread = start_http_server(
            metrics_port, addr=metrics_host, registry=metrics.registry
        )
        _log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    try:
        worker.run(fleet, store_settings=store_settings, metrics=metrics)
    finally:
        if server is not None:
            server.shutdown()
    _log.info("stopped")


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _store_settings(
    worker: Worker,
    bootstrap_servers: str | None,
    topic: str | None,
    partitions: int | None,
    properties: list[str] | None,
) -> KafkaStoreSettings | None:
    """Settings for a store-less worker's store; None when the app built its own."""
    if not worker.has_store:
        flags = {"bootstrap_servers": bootstrap_servers, "topic": topic, "partitions": partitions}
        return settings_from_flags(KafkaStoreSettings, flags, properties)
    store = worker.store
    if not isinstance(store, KafkaStore):
        raise CommandFailed(
            f"the worker's store is a {type(store).__name__}; a fleet member needs a "
            "KafkaStore (or build the Worker without a store and pass --topic)",
            ExitCode.USAGE,
        )
    clashes = [
        flag
        for flag, given, has in (
            ("--bootstrap-servers", bootstrap_servers, store.settings.bootstrap_servers),
            ("--topic", topic, store.topic),
        )
        if given is not None and given != has
    ]
    if clashes:
        raise CommandFailed(
            f"the worker builds its own store (topic {store.topic!r} on "
            f"{store.settings.bootstrap_servers}); {' and '.join(clashes)} disagree with it: "
            "drop them, or build the Worker without a store",
            ExitCode.USAGE,
        )
    return None
