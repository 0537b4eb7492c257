"""Show record views: the JSON objects and rich tables ``inspect`` prints, and the printer
that keeps, orders and batches them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actionstate.serde import CLOUDPICKLE_CODEC
from actionstate.service.inspect._describe import CallView, RecordView, StatusFilter, Summary

__all__ = ["OutputFormat", "PrintOptions", "RecordPrinter", "record_json"]

_CHUNK = 1000  # table rows buffered before a table is printed
_CELL = 60  # characters of a decoded payload shown in a table cell


class OutputFormat(StrEnum):
    """How records are printed."""

    TABLE = "table"
    JSON = "json"


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


@dataclass(frozen=True)
class PrintOptions:
    """What ``inspect`` keeps and how it prints it (its command-line options, parsed)."""

    output: OutputFormat
    status: StatusFilter | None
    agent_key: str | None
    state_key: str | None
    summary: bool
    history: bool
    follow: bool
    unpickle: bool
    secret: bytes | None


class RecordPrinter:
    """Prints kept records: JSON lines at once, table rows in chunks.

    Unless ``history`` is set, the records read before the first catch-up are held back and
    only each key's latest one is printed (at ``flush``): a superseded record is not what is
    true now. Every record read after that is the newest of its key and printed as it comes.
    """

    def __init__(self, out: Console, opts: PrintOptions) -> None:
        self.out = out
        self.opts = opts
        self.tally = Summary(status=opts.status)
        self._rows: list[RecordView] = []
        # latest record per key (a keyless record stands alone); None: print as they come
        self._latest: dict[str | tuple[int, int], RecordView] | None = None if opts.history else {}

    def add(self, view: RecordView) -> None:
        """Count one record and print it, or hold it back until ``flush``."""
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
        """Print what is left, then the summary (``--summary``) or a count line on ``err``."""
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
