"""The public names of actionstate.service.demo."""

from __future__ import annotations

import actionstate.service.demo as demo
from tests._support import check_exports

PUBLIC = {
    "AGENT_KEY", "ORDER", "Check", "DemoOptions", "DemoResult", "PaymentProvider", "Seen",
    "Warehouse", "judge", "run_demo",
}  # fmt: skip


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(demo, PUBLIC)


def test_the_worker_module_is_not_imported_by_the_package() -> None:
    # The fleet app module is loaded by ``actionstate worker``, never by the package: its
    # import builds a Worker and registers actions, which the package has no use for.
    import subprocess
    import sys

    code = (
        "import sys, actionstate.service.demo; "
        "print('actionstate.service.demo._worker' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
