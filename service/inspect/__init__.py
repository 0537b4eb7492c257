"""Describe a state topic's records without trusting them, count them, and render them as
tables or JSON lines: the engine behind ``actionstate inspect``."""

from actionstate.service.inspect._describe import (
    CallView,
    PayloadView,
    RecordView,
    StatusFilter,
    Summary,
    describe_record,
)
from actionstate.service.inspect._render import (
    OutputFormat,
    PrintOptions,
    RecordPrinter,
    record_json,
)

__all__ = [
    "CallView",
    "OutputFormat",
    "PayloadView",
    "PrintOptions",
    "RecordPrinter",
    "RecordView",
    "StatusFilter",
    "Summary",
    "describe_record",
    "record_json",
]
