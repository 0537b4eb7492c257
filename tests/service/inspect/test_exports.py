"""The public names of actionstate.service.inspect."""

from __future__ import annotations

import actionstate.service.inspect as inspect_pkg
from tests._support import check_exports

PUBLIC = {
    "CallView", "OutputFormat", "PayloadView", "PrintOptions", "RecordPrinter", "RecordView",
    "StatusFilter", "Summary", "describe_record", "record_json",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(inspect_pkg, PUBLIC)
