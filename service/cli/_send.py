"""``actionstate send``: write requests to a fleet's requests topic, and optionally wait for
their outcomes.

``actionstate send --requests R --action A KEY DATA`` prints the request id ``P:O``;
``--from-file PATH`` (``-`` for stdin) sends one request per line and prints one id per
line. A bad line is reported on stderr by its number, never its contents, and skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from typing import IO, Annotated, Any

import orjson
import typer

from actionstate.client import RequestTimeoutError
from actionstate.client.fleet import RequestSender, SenderSettings, SentRequest
from actionstate.serde import InvalidRequestError, encode_request
from actionstate.service.cli._exit import CommandFailed, ExitCode, exit_rule
from actionstate.service.cli._options import (
    BootstrapServersOption,
    PropertyOption,
    RequestsOption,
    StateTopicOption,
    settings_from_flags,
)

__all__ = ["register", "send_command"]

_CHUNK = 500  # lines of --from-file sent (pipelined) at once
_FIELDS = {"agent_key": '"key"', "action": '"action"', "data": '"data"'}
_HINTS = {"agent_key": "KEY", "action": "--action", "data": "DATA"}

Line = tuple[str, str, Any]


def register(app: typer.Typer) -> None:
    """Add the ``send`` command to the CLI."""
    app.command("send")(send_command)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def parse_line(raw: bytes) -> Line | str:
    """One ``--from-file`` line as ``(key, action, data)``, or what is wrong with it in
    words that never repeat its contents."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # orjson's text gives positions only
        return f"not JSON ({exc})"
    if not isinstance(body, dict):
        return f'{_json_kind(body)}, not an object with "key", "action" and "data"'
    for field in ("key", "action"):
        if field not in body:
            return f'no "{field}"'
    key, action, data = body["key"], body["action"], body.get("data")
    try:
        encode_request(key, action, data)
    except InvalidRequestError as exc:
        if exc.path == "data":  # the data's problem may quote it: say only that it is bad
            return '"data" cannot be written as JSON'
        return f"{_FIELDS[exc.path]} {exc.problem}"
    return key, action, data


def _good_lines(stream: IO[bytes], bad: list[int]) -> Iterator[Line]:
    """The usable lines of ``stream``; the number of each bad one is reported on stderr
    and added to ``bad``. Blank lines are skipped."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        parsed = parse_line(raw)
        if isinstance(parsed, str):
            bad.append(number)
            typer.echo(f"line {number}: skipped: {parsed}", err=True)
            continue
        yield parsed


def _chunks(lines: Iterable[Line]) -> Iterator[list[Line]]:
    it = iter(lines)
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def _print_outcome(sent: SentRequest, output: Any) -> None:
    try:
        text = orjson.dumps(output).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (a Java BigInteger)
        text = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    typer.echo(f"{sent.request_id} {text}")


def _send_single(settings: SenderSettings, request: Line, *, wait: bool, timeout: float) -> None:
    with RequestSender(settings) as sender:
        sent = sender.send(*request)
        if not wait:
            typer.echo(str(sent.request_id))
            return
        typer.echo(f"sent {sent.request_id}; waiting for its outcome", err=True)
        _print_outcome(sent, sender.wait(sent, timeout))


def _send_file(settings: SenderSettings, path: str, *, wait: bool, timeout: float) -> None:
    bad: list[int] = []
    with ExitStack() as stack:
        stream: IO[bytes] = (
            sys.stdin.buffer if path == "-" else stack.enter_context(open(path, "rb"))
        )
        sender = stack.enter_context(RequestSender(settings))
        sent_all: list[SentRequest] = []
        for chunk in _chunks(_good_lines(stream, bad)):
            sent = sender.send_many(chunk)
            if wait:
                sent_all.extend(sent)
            else:
                for one in sent:
                    typer.echo(str(one.request_id))
        if wait and sent_all:
            typer.echo(f"sent {len(sent_all)} requests; waiting for their outcomes", err=True)
            for one, output in sender.wait_many(sent_all, timeout):
                _print_outcome(one, output)
    if bad:
        lines = "line" if len(bad) == 1 else "lines"
        raise CommandFailed(
            f"{len(bad)} bad {lines} skipped (reported above); the other requests were sent",
            ExitCode.FAILED,
        )


@exit_rule(codes={RequestTimeoutError: ExitCode.TIMEOUT})
def send_command(
    agent_key: Annotated[
        str | None,
        typer.Argument(metavar="KEY", help="The agent key (no '_').", show_default=False),
    ] = None,
    data: Annotated[
        str | None,
        typer.Argument(metavar="DATA", help="The request's data, as JSON.", show_default=False),
    ] = None,
    *,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="The action to run (a name the workers registered).",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            metavar="PATH",
            help='One request per line, {"key": ..., "action": ..., "data": ...}; "-" reads '
            "stdin. Takes no KEY, DATA or --action.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait for each outcome; print P:O and the action's output as JSON."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.001,
            metavar="SECONDS",
            help="How long --wait waits (for all the outcomes, with --from-file).",
        ),
    ] = 30.0,
    bootstrap_servers: BootstrapServersOption = None,
    requests: RequestsOption = None,
    topic: StateTopicOption = None,
    properties: PropertyOption = None,
) -> None:
    """Send requests to a worker fleet; print each one's id, PARTITION:OFFSET.

    The single form sends DATA to the action --action for agent KEY. --from-file PATH sends
    one request per line (blank lines are skipped); a bad line is reported by its number on
    stderr and skipped, and the exit code is then 1. A missing requests topic is created
    with the partition count of the state topic (--topic). --wait needs --topic: it prints
    "P:O OUTPUT" for each request as its outcome is read (in that order), and exits 5 when
    one has none within --timeout (the action may still run, or have failed). The signing
    secret of the workers comes from ACTIONSTATE_SIGNING_SECRET.
    """
    if from_file is not None and (agent_key, data, action) != (None, None, None):
        raise typer.BadParameter(
            "--from-file takes the requests from the file: give no KEY, DATA or --action",
            param_hint="'--from-file'",
        )
    single = None if from_file is not None else _single_request(agent_key, action, data)
    settings = settings_from_flags(
        SenderSettings,
        {"bootstrap_servers": bootstrap_servers, "requests": requests, "topic": topic},
        properties,
    )
    if wait and settings.topic is None:
        raise typer.BadParameter(
            "--wait reads the outcomes from the state topic: give --topic (or ACTIONSTATE_TOPIC)",
            param_hint="'--wait'",
        )
    if single is not None:
        _send_single(settings, single, wait=wait, timeout=timeout)
    else:
        assert from_file is not None
        _send_file(settings, from_file, wait=wait, timeout=timeout)


def _single_request(agent_key: str | None, action: str | None, data: str | None) -> Line:
    if action is None:
        raise typer.BadParameter(
            "give the action to run, --action NAME (or --from-file PATH)", param_hint="'--action'"
        )
    if agent_key is None or data is None:
        raise typer.BadParameter(
            "give KEY and DATA (the request's data as JSON; null for none), or --from-file PATH",
            param_hint="KEY DATA",
        )
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc})", param_hint="DATA") from None
    try:
        encode_request(agent_key, action, value)
    except InvalidRequestError as exc:
        raise typer.BadParameter(exc.problem, param_hint=_HINTS.get(exc.path, exc.path)) from None
    return agent_key, action, value
