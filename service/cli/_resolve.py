"""``actionstate resolve STATE_KEY CALL_INDEX``: settle a PENDING call a person looked up.

A call whose reconciler keeps answering ``ReconcileLater`` (or that has none a worker can
ask) needs a person to find out what happened. This command journals the answer as the
slot's terminal outcome, through ``KafkaStore`` (so it is signed and encoded as a worker
would write it); the next recovery replays it instead of asking again.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from actionstate.client import (
    CallNotPendingError,
    KafkaStore,
    KafkaStoreSettings,
    StateNotFoundError,
    resolve_call,
)
from actionstate.client.kafka import KafkaAdmin
from actionstate.serde import split_state_key
from actionstate.service.cli._exit import CommandFailed, ExitCode, exit_rule

__all__ = ["register", "resolve_command"]


def register(app: typer.Typer) -> None:
    """Add the ``resolve`` command to the CLI."""
    app.command("resolve")(resolve_command)


def _existing_topic(settings: KafkaStoreSettings) -> KafkaStoreSettings:
    # The topic's own partition count: the settings' default must not refuse (or create) it.
    count = KafkaAdmin(settings).partition_count(settings.topic)
    if count is None:
        raise CommandFailed(
            f"topic {settings.topic!r} does not exist; check --topic", ExitCode.NOT_FOUND
        )
    return settings.model_copy(update={"partitions": count})


@exit_rule(
    codes={StateNotFoundError: ExitCode.NOT_FOUND, CallNotPendingError: ExitCode.NOT_PENDING}
)
def resolve_command(
    state_key: Annotated[str, typer.Argument(help="The state key (what `inspect` shows).")],
    call_index: Annotated[int, typer.Argument(min=0, help="The index of the PENDING call.")],
    *,
    result: Annotated[
        str | None, typer.Option("--result", help="The call's return value, as JSON.")
    ] = None,
    error: Annotated[
        str | None,
        typer.Option("--error", help="The call failed: replays as ResolvedCallError(MESSAGE)."),
    ] = None,
    bootstrap_servers: Annotated[
        str,
        typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers, HOST:PORT."),
    ],
    topic: Annotated[str, typer.Option(envvar="ACTIONSTATE_TOPIC", help="The state topic.")],
    signing_secret: Annotated[
        str | None,
        typer.Option(
            envvar="ACTIONSTATE_SIGNING_SECRET",
            help="The workers' signing secret: records are verified and the outcome signed.",
        ),
    ] = None,
) -> None:
    """Journal the outcome of a PENDING call by hand; the next recovery replays it.

    Give exactly one of --result JSON (the call succeeded and returned it, encoded with the
    store's payload codec) or --error MESSAGE. Refuses a state that does not exist (exit 3)
    and a call that is not PENDING (exit 4). Run it while no worker drives that action.
    """
    if (result is None) == (error is None):
        raise typer.BadParameter("give exactly one of --result JSON or --error MESSAGE")
    try:
        split_state_key(state_key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="STATE_KEY") from None
    outcome: dict[str, Any] = {"error": error}
    if result is not None:
        try:
            outcome = {"result": orjson.loads(result)}
        except orjson.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--result") from None
    given: dict[str, Any] = {"bootstrap_servers": bootstrap_servers, "topic": topic}
    if signing_secret is not None:
        given["signing_secret"] = signing_secret
    # Security settings and the payload codec come from ACTIONSTATE_* like the workers'.
    settings = KafkaStoreSettings(**given, create_topic=False)
    with KafkaStore(_existing_topic(settings)) as store:
        store.rebuild()
        resolve_call(store, state_key, call_index, **outcome)
    status = "FAILED" if error is not None else "SUCCEEDED"
    typer.echo(f"resolved call #{call_index} of {state_key} as {status}")
