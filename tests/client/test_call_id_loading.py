"""One worker file, loaded two ways across a crash, journals and replays the same ids.

A copy of ``_loading_worker.py`` (as ``app.py``, or ``shop/app.py`` in a regular package)
is run as a script, with ``-m`` or by import until its payment is journaled, then
SIGKILLed; a new process loads the same file another way and recovers. The payment appends
to a ledger file: it must be there once, replayed, never run again.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from actionstate.client import KafkaStore
from actionstate.serde import ActionState, CallStatus
from tests.client.test_crash_recovery import kill_at, recover

WORKER = Path(__file__).with_name("_loading_worker.py")


def loader(how: str, root: Path, module: str, args: list[str]) -> list[str]:
    """The command that loads ``module`` (``app``, ``shop.app``) under ``root`` ``how``."""
    if how == "script":
        return [sys.executable, str(root.joinpath(*module.split("."))) + ".py", *args]
    if how == "module":
        return [sys.executable, "-m", module, *args]
    code = f"import sys, {module}; {module}.main(sys.argv[1:])"
    return [sys.executable, "-c", code, *args]


def layout(root: Path, module: str) -> None:
    """Copy the worker to ``root`` as ``module``, its packages made regular packages."""
    *packages, name = module.split(".")
    folder = root
    for package in packages:
        folder = folder / package
        folder.mkdir()
        (folder / "__init__.py").touch()
    shutil.copy(WORKER, folder / f"{name}.py")


def journal(opener: Callable[[], KafkaStore]) -> ActionState:
    with opener() as store:
        store.rebuild()
        [(_, state)] = store.states()
    return state


@pytest.mark.parametrize(
    ("module", "first", "then"),
    [
        ("app", "script", "import"),
        ("app", "import", "script"),
        ("app", "module", "script"),
        ("shop.app", "script", "module"),
        ("shop.app", "import", "script"),
    ],
)
def test_a_call_journaled_under_one_loading_is_replayed_under_another(
    kafka_bootstrap: str,
    topic_name: str,
    tmp_path: Path,
    kafka_store_opener: Callable[[], KafkaStore],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    first: str,
    then: str,
) -> None:
    root, folder = tmp_path / "src", tmp_path / "data"
    root.mkdir()
    folder.mkdir()
    layout(root, module)
    # Where -m and import find the file (the workers inherit this environment).
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    )
    args = [kafka_bootstrap, topic_name, str(folder)]

    kill_at("paid", loader(first, root, module, ["run", *args]), folder)
    crashed = journal(kafka_store_opener)
    assert not crashed.completed
    [call] = crashed.call_results
    assert (call.function_id, call.status) == (f"{module}.pay", CallStatus.SUCCEEDED)

    report = recover(loader(then, root, module, ["recover", *args]))
    assert (report["completed"], report["failures"]) == (1, [])
    assert (report["replayed"], report["executed"]) == (1, 0)
    assert (folder / "ledger").read_text().split() == ["42"]  # paid once, replayed after
    assert journal(kafka_store_opener).completed
