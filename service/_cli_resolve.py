"""``actionstate resolve STATE_KEY CALL_INDEX``: settle a PENDING call a person looked up.

A call whose reconciler keeps answering ``ReconcileLater`` (or that has none a worker can
ask) needs a person to find out what happened. This command journals the answer as the
slot's terminal outcome, through ``KafkaStore`` (so it is signed and encoded as a worker
would write it); the next recovery replays it instead of asking again.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import orjson
import typer
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from actionstate.client import (
    KafkaStore,
    KafkaStoreSettings,
    ResolvedCallError,
    StoredState,
)
from actionstate.client._durable import reencode_calls
from actionstate.client._kafka_topic import partition_count
from actionstate.client._records import Located, split_state_key
from actionstate.serde import ActionStateError, CallResult, CallStatus, PayloadCodec

__all__ = ["NOT_FOUND", "NOT_PENDING", "register", "resolve_command"]

NOT_FOUND = 3
"""Exit code: the topic holds no live state under the state key."""
NOT_PENDING = 4
"""Exit code: the state has no such call, or its outcome is already journaled."""

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``resolve`` command to the CLI."""
    app.command("resolve")(resolve_command)


def _fail(message: str, code: int) -> NoReturn:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _settings_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in exc.errors()
    )


def _outcome(
    slot: CallResult, codec: PayloadCodec, result: str | None, error: str | None
) -> CallResult:
    if error is not None:
        value: Any = ResolvedCallError(error)
    else:
        assert result is not None
        try:
            value = orjson.loads(result)
        except orjson.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--result") from None
    try:
        payload = codec.encode(value)
    except ActionStateError as exc:
        _fail(
            f"the store's payload codec {codec.name!r} cannot journal this outcome ({exc}); "
            "set ACTIONSTATE_PAYLOAD_CODEC to the codec the workers use",
            1,
        )
    if error is not None:
        return CallResult.failed(slot.function_id, slot.args_digest, payload)
    return CallResult.succeeded(slot.function_id, slot.args_digest, payload)


def _pending_slot(store: KafkaStore, skey: str, index: int) -> tuple[StoredState, CallResult]:
    stored = store.stored(skey)
    if stored is None:
        _fail(f"no state {skey!r} in the topic (never written, or pruned)", NOT_FOUND)
    calls = stored.state.call_results
    if index >= len(calls):
        what = "is completed" if stored.state.completed else f"has {len(calls)} call(s)"
        _fail(f"state {skey!r} {what}: it has no call #{index} to resolve", NOT_PENDING)
    slot = calls[index]
    if slot.effective_status is not CallStatus.PENDING:
        _fail(
            f"call #{index} ({slot.function_id}) of {skey!r} is {slot.effective_status.value}, "
            "not PENDING: its outcome is journaled already and is never rewritten",
            NOT_PENDING,
        )
    return stored, slot


def _existing_topic(settings: KafkaStoreSettings) -> KafkaStoreSettings:
    # The topic's own partition count: the settings' default must not refuse (or create) it.
    admin = AdminClient(settings.kafka_config("admin"))
    count = partition_count(admin, settings.topic, settings.timeout_s)
    if count is None:
        _fail(f"topic {settings.topic!r} does not exist; check --topic", NOT_FOUND)
    return settings.model_copy(update={"partitions": count})


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
        agent_key, seq = split_state_key(state_key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="STATE_KEY") from None
    given: dict[str, Any] = {"bootstrap_servers": bootstrap_servers, "topic": topic}
    if signing_secret is not None:
        given["signing_secret"] = signing_secret
    try:
        # Security settings and the payload codec come from ACTIONSTATE_* like the workers'.
        settings = KafkaStoreSettings(**given, create_topic=False)
    except ValidationError as exc:
        raise typer.BadParameter(_settings_error(exc)) from None
    try:
        with KafkaStore(_existing_topic(settings)) as store:
            store.rebuild()
            stored, slot = _pending_slot(store, state_key, call_index)
            codec = store.payload_codec
            calls = reencode_calls(stored.state.call_results, stored.codec, codec, state_key)
            calls[call_index] = _outcome(slot, codec, result, error)
            state = stored.state.model_copy(update={"call_results": calls})
            store.put_located(Located(agent_key, seq, state_key), state)
    except ActionStateError as exc:
        _fail(str(exc), 1)
    status = "FAILED" if error is not None else "SUCCEEDED"
    typer.echo(f"resolved call #{call_index} of {state_key} as {status}")
