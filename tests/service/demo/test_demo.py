"""``actionstate demo`` end to end: real broker, real sidecar, a real SIGKILL, real recovery.

The demo runs as a subprocess, as a user would run it. Besides its exit code and verdict,
the tests read the payment provider's books the demo leaves in its run folder, and check
that every process the demo reports having started is gone when it returns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from actionstate.service._process import alive
from actionstate.service.demo import AGENT_KEY, PaymentProvider, Seen, Warehouse, judge
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from tests._support import assert_eventually

ACTIONSTATE = Path(sys.executable).with_name("actionstate")
VERDICT = f"✓ {AGENT_KEY} charged exactly once; reconciler ran once"


def demo_env(bootstrap: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["PYTHONUNBUFFERED"] = "1"
    if bootstrap is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return env


def reported_pids(out: str) -> list[tuple[str, int]]:
    [line] = [ln for ln in out.splitlines() if ln.startswith("pids: ")]
    return [(role, int(pid)) for role, pid in re.findall(r"(\w+)=(\d+)", line)]


def reported_topic(out: str) -> str:
    match = re.search(r"topic (actionstate-demo-[0-9a-f]+)", out)
    assert match is not None, out
    return match[1]


def the_run_folder(demo_dir: Path) -> Path:
    [run] = list((demo_dir / "runs").iterdir())
    return run


def assert_all_gone(pids: list[tuple[str, int]]) -> None:
    left = [(role, pid) for role, pid in pids if alive(pid)]
    assert not left, f"processes the demo started are still running: {left}"


def assert_books_balanced(run: Path) -> None:
    payments = PaymentProvider(run / "payments.json")
    [charge] = payments.charges(AGENT_KEY)
    assert payments.requests() == [charge["idempotency_key"]]  # never asked to charge twice
    assert payments.lookups() == [charge["idempotency_key"]]  # the reconciler asked once
    assert len(Warehouse(run / "warehouse.json").reservations(AGENT_KEY)) == 1


@pytest.fixture
def delete_topics(kafka_bootstrap: str) -> Iterator[list[str]]:
    """Topics listed here are deleted from the shared broker after the test."""
    topics: list[str] = []
    yield topics
    if topics:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result(timeout=60)


def test_demo_on_a_given_broker(
    kafka_bootstrap: str, tmp_path: Path, delete_topics: list[str]
) -> None:
    demo_dir = tmp_path / "demo"
    done = subprocess.run(
        [str(ACTIONSTATE), "demo", "--bootstrap-servers", kafka_bootstrap, "--dir", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=demo_env(None),
        cwd=tmp_path,
    )
    if "topic actionstate-demo-" in done.stdout:
        delete_topics.append(reported_topic(done.stdout))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == VERDICT
    assert f"using the configured broker at {kafka_bootstrap}" in done.stdout
    pids = reported_pids(done.stdout)
    assert sorted(role for role, _ in pids) == ["sidecar", "worker", "worker"]
    assert_all_gone(pids)
    assert_books_balanced(the_run_folder(demo_dir))
    # The final state as inspect shows it is part of the output.
    assert "completed" in done.stdout
    assert "PaymentProvider.charge" in done.stdout


def test_demo_starts_and_stops_its_own_broker(
    tmp_path: Path, broker_dirs: Callable[[str], Path]
) -> None:
    demo_dir = broker_dirs("demo")
    done = subprocess.run(
        [str(ACTIONSTATE), "demo", "--dir", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=demo_env(None),  # no broker configured: the demo starts the local one
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == VERDICT
    pids = reported_pids(done.stdout)
    assert sorted(role for role, _ in pids) == ["broker", "sidecar", "worker", "worker"]
    assert_all_gone(pids)
    assert not LocalKafka(LocalKafkaSettings(dir=demo_dir / "kafka")).status().running
    assert_books_balanced(the_run_folder(demo_dir))


def test_demo_stops_everything_when_interrupted(
    kafka_bootstrap: str, tmp_path: Path, delete_topics: list[str]
) -> None:
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(ACTIONSTATE), "demo", "--dir", str(tmp_path / "demo")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=demo_env(kafka_bootstrap),  # the broker comes from the environment here
            cwd=tmp_path,
        )
    try:

        def sidecar_ready_and_worker_running() -> None:
            assert proc.poll() is None, out_path.read_text()
            assert "worker A (pid" in out_path.read_text()

        assert_eventually(sidecar_ready_and_worker_running, timeout=300)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out_path.read_text()
    delete_topics.append(reported_topic(text))
    assert code == 130, text
    assert "interrupted" in text
    pids = reported_pids(text)
    assert {"sidecar", "worker"} <= {role for role, _ in pids}
    assert_all_gone(pids)


def test_a_double_charge_fails_thejudge(tmp_path: Path) -> None:
    """The exit code is only as honest as the checks: two charges must fail them."""
    payments = PaymentProvider(tmp_path / "payments.json")
    first = payments.charge(AGENT_KEY, 4200, idempotency_key="k:1")
    payments.charge(AGENT_KEY, 4200, idempotency_key="k:1-again")
    payments.lookup("k:1")
    Warehouse(tmp_path / "warehouse.json").reserve(AGENT_KEY, "sku", 1)
    seen = Seen(
        kill_status=-signal.SIGKILL,
        pending_function="actionstate.service.demo._world.PaymentProvider.charge",
        recovery_events=[
            {"event": "recovered", "reconciled": 1, "replayed": 1, "completed": 1},
            {"event": "completed", "output": {"charge_id": first["charge_id"]}},
        ],
        recovery_exit=0,
        final_records=[{"kind": "state", "offset": 4, "completed": True, "pending_calls": 0}],
    )
    failed = {c.name for c in judge(tmp_path, seen) if not c.ok}
    assert failed == {"charges booked", "charge requests received", "output's charge"}

    # The same books with one charge pass every check.
    single = tmp_path / "single"
    payments = PaymentProvider(single / "payments.json")
    receipt = payments.charge(AGENT_KEY, 4200, idempotency_key="k:1")
    payments.lookup("k:1")
    Warehouse(single / "warehouse.json").reserve(AGENT_KEY, "sku", 1)
    seen.recovery_events[1]["output"] = {"charge_id": receipt["charge_id"]}
    assert all(c.ok for c in judge(single, seen)), json.dumps(
        [c.__dict__ for c in judge(single, seen)]
    )
