"""The public names of actionstate.service."""

from __future__ import annotations

import actionstate.service as service
from tests._support import check_exports

PUBLIC = {"SidecarServer", "SidecarSettings"}


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(service, PUBLIC)
