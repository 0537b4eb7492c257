"""Real crashes: a worker process is SIGKILLed mid-action, a new process recovers it.

The worker (``_crash_worker.py``) journals to the real broker; its payment appends to a
ledger file, the reconciler looks payments up there. The tests wait on marker files the
worker touches at the kill point, never on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actionstate.client import KafkaStore
from actionstate.serde import ActionState, CallStatus
from tests._support import assert_eventually

WORKER = Path(__file__).with_name("_crash_worker.py")
EXPECTED_OUTPUT = {"order": 42, "receipt": "receipt-42", "shipped": "shipped-42"}


def worker_args(
    mode: str, bootstrap: str, topic: str, folder: Path, *, reconcile: bool, is_async: bool
) -> list[str]:
    args = [sys.executable, str(WORKER), mode, bootstrap, topic, str(folder), "--partitions", "4"]
    if reconcile:
        args.append("--reconciler")
    if is_async:
        args.append("--async")
    return args


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def fresh_state(kafka_store_opener: Callable[[], KafkaStore]) -> Callable[[], ActionState]:
    """The single state on the test's topic, as a newly opened store rebuilds it.

    The topic (created by the worker process) is deleted after the test.
    """

    def read() -> ActionState:
        with kafka_store_opener() as store:
            store.rebuild()
            [(_, state)] = store.states()
        return state

    return read


def kill_at(point: str, args: list[str], folder: Path) -> None:
    """Run the worker until it reaches ``point``, then SIGKILL it."""
    proc = subprocess.Popen(
        [*args, "--hang", point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:

        def reached() -> None:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(
                    f"the worker exited ({proc.returncode}) before {point}:\n{err.decode()}"
                )
            assert (folder / point).exists(), f"the worker has not reached {point} yet"

        assert_eventually(reached, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def recover(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=180, check=False, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("reconcile", [True, False], ids=["reconciler", "no-reconciler"])
def test_killed_inside_a_call_after_its_pending_slot_was_persisted(
    kafka_bootstrap: str,
    topic_name: str,
    tmp_path: Path,
    fresh_state: Callable[[], ActionState],
    reconcile: bool,
    is_async: bool,
) -> None:
    run_args = worker_args(
        "run", kafka_bootstrap, topic_name, tmp_path, reconcile=reconcile, is_async=is_async
    )
    kill_at("pay", run_args, tmp_path)

    crashed = fresh_state()
    assert not crashed.completed
    assert len(lines(tmp_path / "ledger")) == 1  # the side effect happened, its outcome not
    if reconcile:
        assert [c.status for c in crashed.call_results] == [CallStatus.PENDING]
    else:
        assert crashed.call_results == []  # completion-only calls journal their outcome only

    report = recover(
        worker_args(
            "recover", kafka_bootstrap, topic_name, tmp_path, reconcile=reconcile, is_async=is_async
        )
    )

    assert report["resumed"] == report["completed"] == 1
    assert report["failures"] == report["unknown"] == []
    if reconcile:
        assert len(lines(tmp_path / "ledger")) == 1  # exactly once
        assert len(lines(tmp_path / "lookups")) == 1  # the reconciler ran once
        assert (report["reconciled"], report["executed"], report["replayed"]) == (1, 1, 0)
    else:
        assert len(lines(tmp_path / "ledger")) == 2  # no reconciler: the call ran again
        assert lines(tmp_path / "lookups") == []
        assert (report["reconciled"], report["executed"], report["replayed"]) == (0, 2, 0)
    assert_completed(fresh_state())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("reconcile", [True, False], ids=["reconciler", "no-reconciler"])
def test_killed_after_a_call_finished_before_the_action_completed(
    kafka_bootstrap: str,
    topic_name: str,
    tmp_path: Path,
    fresh_state: Callable[[], ActionState],
    reconcile: bool,
    is_async: bool,
) -> None:
    run_args = worker_args(
        "run", kafka_bootstrap, topic_name, tmp_path, reconcile=reconcile, is_async=is_async
    )
    kill_at("after-pay", run_args, tmp_path)

    crashed = fresh_state()
    assert not crashed.completed
    assert [c.status for c in crashed.call_results] == [CallStatus.SUCCEEDED]

    report = recover(
        worker_args(
            "recover", kafka_bootstrap, topic_name, tmp_path, reconcile=reconcile, is_async=is_async
        )
    )

    assert report["resumed"] == report["completed"] == 1
    assert report["failures"] == []
    assert (report["replayed"], report["executed"], report["reconciled"]) == (1, 1, 0)
    assert len(lines(tmp_path / "ledger")) == 1  # a finished call is never run again
    assert lines(tmp_path / "lookups") == []
    assert_completed(fresh_state())


def test_a_second_recovery_finds_nothing_to_do(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path, fresh_state: Callable[[], ActionState]
) -> None:
    kill_at(
        "pay",
        worker_args("run", kafka_bootstrap, topic_name, tmp_path, reconcile=True, is_async=False),
        tmp_path,
    )
    recover_args = worker_args(
        "recover", kafka_bootstrap, topic_name, tmp_path, reconcile=True, is_async=False
    )
    assert recover(recover_args)["completed"] == 1
    again = recover(recover_args)
    assert (again["resumed"], again["executed"], again["reconciled"]) == (0, 0, 0)
    assert len(lines(tmp_path / "ledger")) == 1
    assert_completed(fresh_state())


def assert_completed(state: ActionState) -> None:
    assert state.completed
    assert state.call_results == []
    assert state.task_event is not None
    assert state.task_event.attributes == {"input": {"order": 42}}
    assert [e.attributes for e in state.output_events] == [{"output": EXPECTED_OUTPUT}]
