"""``actionstate inspect``: show a state topic's records decoded, as a table or JSON lines."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from actionstate.client import KafkaStoreSettings, StoreReadError
from actionstate.client.kafka import PartitionRange, PartitionReader, parse_offsets
from actionstate.service.cli._exit import exit_rule
from actionstate.service.inspect import (
    OutputFormat,
    PrintOptions,
    RecordPrinter,
    StatusFilter,
    describe_record,
)

__all__ = ["inspect_command", "register"]

_PROGRESS_MIN = 1000  # records below which no progress bar is worth showing


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to the CLI."""
    app.command("inspect")(inspect_command)


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


def _read(reader: PartitionReader, ranges: list[PartitionRange], printer: RecordPrinter) -> None:
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


@exit_rule()
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
    # Security settings and the signing secret come from ACTIONSTATE_* like the store's.
    settings = KafkaStoreSettings(bootstrap_servers=bootstrap_servers, topic=topic)
    opts = PrintOptions(
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
    printer = RecordPrinter(out, opts)
    try:
        with PartitionReader(settings, topic, purpose="inspect") as reader:
            _read(reader, _ranges(reader, partition, start), printer)
    except StoreReadError:
        printer.flush()  # what was read before the error is still shown
        raise
    printer.finish(err)
