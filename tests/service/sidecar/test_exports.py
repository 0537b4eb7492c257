"""The public names of actionstate.service.sidecar."""

from __future__ import annotations

import actionstate.service as service
import actionstate.service.sidecar as sidecar
from tests._support import check_exports

PUBLIC = {"SidecarServer", "SidecarSettings"}


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(sidecar, PUBLIC)


def test_the_service_package_lifts_the_same_objects() -> None:
    # ``from actionstate.service import SidecarServer`` is the short path to the same class.
    assert service.SidecarServer is sidecar.SidecarServer
    assert service.SidecarSettings is sidecar.SidecarSettings
