"""``actionstate inspect``: show a state topic's records decoded, as a table or JSON lines."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from actionstate.client import KafkaStoreSettings, StoreReadError
from actionstate.client.kafka import PartitionRange, PartitionReader, parse_offsets
from actionstate.serde import CLOUDPICKLE_CODEC
from actionstate.service._inspect import (
    CallView,
    RecordView,
    StatusFilter,
    Summary,
    describe_record,
)

__all__ = ["OutputFormat", "inspect_command", "record_json", "register"]

_CHUNK = 1000  # table rows buffered before a table is printed
_PROGRESS_MIN = 1000  # records below which no progress bar is worth showing
_CELL = 60  # characters of a decoded payload shown in a table cell


class OutputFormat(StrEnum):
    """How records are printed."""

    TABLE = "table"
    JSON = "json"


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to the CLI."""
    app.command("inspect")(inspect_command)


def _call_json(call: CallView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": call.index,
        "function_id": call.function_id,
        "args_digest": call.args_digest,
        "status": call.status.value,
        "legacy_status": call.legacy,
        "kind": call.kind,
        "payload_bytes": None if call.payload is None else call.payload.size,
    }
    if call.payload is not None:
        out["payload_decoded"] = call.payload.decoded
        if call.payload.unpickled:
            out["payload_repr"] = call.payload.value
        elif call.payload.decoded:
            out["payload"] = call.payload.value
        if call.payload.note:
            out["payload_note"] = call.payload.note
    return out


def record_json(view: RecordView) -> dict[str, Any]:
    """The JSON object ``inspect --format json`` prints for one record."""
    out: dict[str, Any] = {
        "kind": view.kind,
        "partition": view.partition,
        "offset": view.offset,
        "timestamp_ms": view.timestamp_ms,
        "key": view.key,
        "agent_key": view.agent_key,
        "seq": view.seq,
        "bytes": view.size,
    }
    if view.kind == "bad":
        out["error"] = view.error
    if view.state is None or view.meta is None:
        return out
    state = view.state
    task = state.task_event
    out.update(
        {
            "codec": view.meta.codec,
            "writer": view.meta.writer,
            "schema": view.meta.schema,
            "signed": view.meta.signature is not None,
            "verified": view.verified,
            "completed": state.completed,
            "pending_calls": view.pending_calls,
            "task_event": None
            if task is None
            else {"class": task.class_name, "type": task.type, "id": task.id},
            "output_events": len(state.output_events),
            "memory_updates": len(state.sensory_memory_updates)
            + len(state.short_term_memory_updates),
            "calls": [_call_json(c) for c in view.calls],
        }
    )
    return out


def _status_cell(view: RecordView) -> str:
    if view.kind == "bad":
        return "[bold red]BAD[/]"
    if view.kind == "tombstone":
        return "[dim]tombstone[/]"
    assert view.state is not None
    if view.state.completed:
        return "[green]completed[/]"
    if view.pending_calls:
        return "[yellow]pending[/]"
    return "[cyan]incomplete[/]"


def _call_line(call: CallView) -> str:
    status = call.status.value + (" (legacy)" if call.legacy else "")
    line = f"{call.index} {escape(call.function_id)} {status}"
    payload = call.payload
    if payload is None:
        return line
    line += f" {call.kind} {payload.size} B"
    if payload.decoded:
        shown = (
            orjson.dumps(payload.value).decode()
            if payload.codec != CLOUDPICKLE_CODEC.name
            else str(payload.value)
        )
        if len(shown) > _CELL:
            shown = shown[: _CELL - 1] + "…"
        line += f" = {escape(shown)}"
    elif payload.note:
        line += f" [dim]({escape(payload.note)})[/]"
    return line


def _new_table() -> Table:
    table = Table(show_lines=False)
    table.add_column("part", justify="right")
    table.add_column("offset", justify="right")
    table.add_column("state key", overflow="fold")
    table.add_column("status")
    table.add_column("calls (index function status payload)", overflow="fold")
    table.add_column("bytes", justify="right")
    table.add_column("codec")
    return table


def _add_row(table: Table, view: RecordView) -> None:
    codec = "-" if view.meta is None else escape(view.meta.codec or "-")
    if view.kind == "bad":
        detail = f"[red]{escape(view.error)}[/]"
    else:
        detail = "\n".join(_call_line(c) for c in view.calls)
    table.add_row(
        str(view.partition),
        str(view.offset),
        escape(view.key or "-"),
        _status_cell(view),
        detail,
        str(view.size),
        codec,
    )


def _summary_table(summary: Summary) -> Table:
    names = [
        "records",
        "live_keys",
        "tombstones",
        "bad_records",
        "actions_incomplete",
        "calls_pending",
        "bytes",
    ]
    table = Table(title="summary")
    table.add_column("partition", justify="right")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for p, counts in summary.partitions().items():
        table.add_row(str(p), *(str(counts[n]) for n in names))
    totals = summary.totals()
    table.add_row("[bold]all[/]", *(f"[bold]{totals[n]}[/]" for n in names))
    return table


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "kind": "summary",
        **summary.totals(),
        "partitions": {str(p): c for p, c in summary.partitions().items()},
    }


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}"


@dataclass(frozen=True)
class _Options:
    output: OutputFormat
    status: StatusFilter | None
    agent_key: str | None
    state_key: str | None
    summary: bool
    history: bool
    follow: bool
    unpickle: bool
    secret: bytes | None


class _Printer:
    """Prints kept records: JSON lines at once, table rows in chunks.

    Unless ``history`` is set, the records read before the first catch-up are held back and
    only each key's latest one is printed (at ``flush``): a superseded record is not what is
    true now. Every record read after that is the newest of its key and printed as it comes.
    """

    def __init__(self, out: Console, opts: _Options) -> None:
        self.out = out
        self.opts = opts
        self.tally = Summary(status=opts.status)
        self._rows: list[RecordView] = []
        # latest record per key (a keyless record stands alone); None: print as they come
        self._latest: dict[str | tuple[int, int], RecordView] | None = None if opts.history else {}

    def add(self, view: RecordView) -> None:
        opts = self.opts
        if opts.state_key is not None and view.key != opts.state_key:
            return
        if opts.agent_key is not None and view.agent_key != opts.agent_key:
            return
        self.tally.add(view)
        if opts.summary:
            return
        if self._latest is None:
            self._show(view)
        else:
            self._latest[view.key if view.key is not None else (view.partition, view.offset)] = view

    def _show(self, view: RecordView) -> None:
        if not view.matches_status(self.opts.status):
            return
        if self.opts.output is OutputFormat.JSON:
            self.out.out(orjson.dumps(record_json(view)).decode(), highlight=False)
            return
        self._rows.append(view)
        if len(self._rows) >= _CHUNK:
            self._print_rows()

    def flush(self) -> None:
        """Print what is held back: each key's latest record, then any buffered rows."""
        if self._latest is not None:
            for view in sorted(self._latest.values(), key=lambda v: (v.partition, v.offset)):
                self._show(view)
            self._latest = None
        self._print_rows()

    def _print_rows(self) -> None:
        if self._rows:
            table = _new_table()
            for view in self._rows:
                _add_row(table, view)
            self.out.print(table)
            self._rows.clear()

    def finish(self, err: Console) -> None:
        self.flush()
        if self.opts.summary:
            if self.opts.output is OutputFormat.JSON:
                self.out.out(orjson.dumps(_summary_json(self.tally)).decode(), highlight=False)
            else:
                self.out.print(_summary_table(self.tally))
        elif self.opts.output is OutputFormat.TABLE:
            totals = self.tally.totals()
            err.print(
                f"{totals['records']} records read, {totals['tombstones']} tombstones, "
                f"{totals['bad_records']} bad records"
            )


def _ranges(
    reader: PartitionReader, partitions: list[int] | None, start: dict[int, int] | None
) -> list[PartitionRange]:
    """The partitions to read and their watermarks; StoreReadError saying what to check
    when the topic or a partition asked for is not there."""
    available = reader.partitions()
    if available is None:
        raise StoreReadError(f"topic {reader.topic!r} does not exist on the broker; check --topic")
    if partitions is not None:
        missing = set(partitions) - set(available)
        if missing:
            raise StoreReadError(
                f"topic {reader.topic!r} has partitions {available}, "
                f"not {sorted(missing)}; check --partition"
            )
        available = [p for p in available if p in set(partitions)]
    return reader.ranges(available, start)


def _read(reader: PartitionReader, ranges: list[PartitionRange], printer: _Printer) -> None:
    opts = printer.opts
    total = sum(max(0, r.high - r.start) for r in ranges)
    progress = Progress(
        TextColumn("reading {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=printer.out,
        transient=True,
        disable=not printer.out.is_terminal or opts.follow or total < _PROGRESS_MIN,
    )
    task = progress.add_task(reader.topic, total=total)
    with progress:
        try:
            for raw in reader.read(ranges, follow=opts.follow):
                if raw is None:
                    progress.update(task, completed=total)
                    printer.flush()
                    continue
                progress.advance(task)
                printer.add(describe_record(raw, unpickle=opts.unpickle, secret=opts.secret))
        except KeyboardInterrupt:
            pass  # --follow ends with Ctrl-C; what was read is still printed


def inspect_command(
    *,
    bootstrap_servers: Annotated[
        str,
        typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers, HOST:PORT."),
    ],
    topic: Annotated[str, typer.Option(envvar="ACTIONSTATE_TOPIC", help="The state topic.")],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="A rich table, or one JSON object a line.")
    ] = OutputFormat.TABLE,
    status: Annotated[
        StatusFilter | None,
        typer.Option(help="Only states with a pending call, not completed, or completed."),
    ] = None,
    agent_key: Annotated[str | None, typer.Option(help="Only records of this agent key.")] = None,
    state_key: Annotated[str | None, typer.Option(help="Only records of this state key.")] = None,
    partition: Annotated[
        list[int] | None, typer.Option(help="Only this partition (repeat for more).")
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print counts instead of the records.")
    ] = False,
    history: Annotated[
        bool,
        typer.Option("--history", help="Show every record read, not only the latest of each key."),
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Read from the oldest offset (default).")
    ] = False,
    offsets: Annotated[
        str | None,
        typer.Option(help="Start offsets, PARTITION:OFFSET[,...]; others from the beginning."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep reading new records until interrupted.")
    ] = False,
    unpickle: Annotated[
        bool,
        typer.Option("--unpickle", help="Unpickle cloudpickle payloads: runs code from the topic."),
    ] = False,
) -> None:
    """Read the state topic directly and show its records decoded.

    By default each key's latest record is shown (what is true now: a state --status pending
    lists has a call pending now); --history shows every record read, superseded ones too.
    Tombstones and records that cannot be decoded are shown and counted; they never stop the
    read. cloudpickle payloads are only unpickled with --unpickle. With --summary, --status
    narrows the live-key counts (live keys, actions incomplete, calls pending).
    """
    out = Console(highlight=False)
    if not out.is_terminal:
        # Piped output: keep state keys on one line.
        out = Console(width=max(out.width, 240), highlight=False)
    err = Console(stderr=True, highlight=False)
    if from_beginning and offsets is not None:
        raise typer.BadParameter("give --from-beginning or --offsets, not both")
    start: dict[int, int] | None = None
    if offsets is not None:
        try:
            start = parse_offsets(offsets)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--offsets") from None
    try:
        # Security settings and the signing secret come from ACTIONSTATE_* like the store's.
        settings = KafkaStoreSettings(bootstrap_servers=bootstrap_servers, topic=topic)
    except ValidationError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    opts = _Options(
        output=output,
        status=status,
        agent_key=agent_key,
        state_key=state_key,
        summary=summary,
        history=history,
        follow=follow,
        unpickle=unpickle,
        secret=settings.secret_bytes,
    )
    if unpickle:
        err.print(
            "[bold yellow]warning:[/] --unpickle loads cloudpickle payloads, which runs code "
            "from the topic; use it only on a topic you trust."
            + (
                " Only payloads of verified records are unpickled."
                if opts.secret is not None
                else " No signing secret is configured, so payloads are not verified."
            )
        )
    printer = _Printer(out, opts)
    try:
        with PartitionReader(settings, topic, purpose="inspect") as reader:
            _read(reader, _ranges(reader, partition, start), printer)
    except StoreReadError as exc:
        printer.flush()
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    printer.finish(err)
