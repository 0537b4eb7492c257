"""``actionstate demo`` end to end: real broker, real sidecar, two real fleet workers, a real
SIGKILL, a real takeover through the consumer group.

The demo runs as a subprocess, as a user would run it. Besides its exit code and verdict,
the tests read the payment provider's books the demo leaves in its run folder, and check
that every process the demo reports having started is gone when it returns. The judge is
also fed forged evidence: each broken invariant must fail its check.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actionstate.service._process import alive
from actionstate.service.demo import AGENT_KEY, PaymentProvider, Seen, Warehouse, judge
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from tests._support import assert_eventually
from tests._support.kafka import delete_topics

ACTIONSTATE = Path(sys.executable).with_name("actionstate")
VERDICT = (
    f"✓ every order charged exactly once; the surviving worker took over {AGENT_KEY}'s "
    "partition and reconciled it once"
)


def demo_env(bootstrap: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "120"  # rich wraps at the terminal's width; the tests read whole lines
    if bootstrap is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return env


def reported_pids(out: str) -> list[tuple[str, int]]:
    [line] = [ln for ln in out.splitlines() if ln.startswith("pids: ")]
    return [(role, int(pid)) for role, pid in re.findall(r"(\w+)=(\d+)", line)]


def reported_topics(out: str) -> list[str]:
    """The state topic the demo named, its requests topic and that one's dead letters."""
    match = re.search(r"topic (actionstate-demo-[0-9a-f]+)", out)
    assert match is not None, out
    state = match[1]
    return [state, f"{state}-requests", f"{state}-requests.dead-letter"]


def the_run_folder(demo_dir: Path) -> Path:
    [run] = list((demo_dir / "runs").iterdir())
    return run


def assert_all_gone(pids: list[tuple[str, int]]) -> None:
    left = [(role, pid) for role, pid in pids if alive(pid)]
    assert not left, f"processes the demo started are still running: {left}"


def assert_books_balanced(run: Path) -> None:
    payments = PaymentProvider(run / "payments.json")
    charges = payments.charges()
    orders = Counter(c["order_id"] for c in charges)
    assert AGENT_KEY in orders
    assert len(orders) > 2  # several orders, over both workers
    assert set(orders.values()) == {1}, orders  # each order charged once
    keys = [c["idempotency_key"] for c in charges]
    assert sorted(payments.requests()) == sorted(keys)  # never asked to charge twice
    [hung] = payments.charges(AGENT_KEY)
    assert payments.lookups() == [hung["idempotency_key"]]  # the reconciler asked once
    reserved = Counter(r["order_id"] for r in Warehouse(run / "warehouse.json").reservations())
    assert reserved == orders


@pytest.fixture
def demo_topics(kafka_bootstrap: str) -> Iterator[list[str]]:
    """Topics listed here are deleted from the shared broker after the test."""
    topics: list[str] = []
    yield topics
    if topics:
        delete_topics(kafka_bootstrap, *topics)


def test_demo_on_a_given_broker(
    kafka_bootstrap: str, tmp_path: Path, demo_topics: list[str]
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
        demo_topics.extend(reported_topics(done.stdout))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == VERDICT
    assert f"using the configured broker at {kafka_bootstrap}" in done.stdout
    pids = reported_pids(done.stdout)
    assert sorted(role for role, _ in pids) == ["sidecar", "worker", "worker"]
    assert_all_gone(pids)
    run = the_run_folder(demo_dir)
    assert_books_balanced(run)
    # The PENDING slot and the survivor's takeover line are part of the output.
    assert "PaymentProvider.charge" in done.stdout
    assert re.search(r"worker [AB]: assigned \[[0-9, ]+\]: fenced in", done.stdout), done.stdout
    assert f"logs in {run}" in done.stdout


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
    kafka_bootstrap: str, tmp_path: Path, demo_topics: list[str]
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

        def both_workers_started() -> None:
            assert proc.poll() is None, out_path.read_text()
            assert "worker B (pid" in out_path.read_text()

        assert_eventually(both_workers_started, timeout=300)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out_path.read_text()
    demo_topics.extend(reported_topics(text))
    assert code == 130, text
    assert "interrupted" in text
    pids = reported_pids(text)
    assert sorted(role for role, _ in pids) == ["sidecar", "worker", "worker"]
    assert_all_gone(pids)


# -- the judge -------------------------------------------------------------------------------

OTHER = "order-1"
PAYMENT = "actionstate.service.demo._world.PaymentProvider.charge"


def call_id(agent_key: str, seq: int) -> str:
    return f"{agent_key}_{seq}_e_a:1"


def books(run: Path, *, charge_twice: bool = False) -> dict[str, str]:
    """The books of a good run (one charge per order, one lookup for the hung one); the
    charge id of each order."""
    payments = PaymentProvider(run / "payments.json")
    warehouse = Warehouse(run / "warehouse.json")
    charged = {}
    for key in (OTHER, AGENT_KEY):
        warehouse.reserve(key, "sku", 1)
        charged[key] = payments.charge(key, 100, idempotency_key=call_id(key, 0))["charge_id"]
    if charge_twice:  # as a worker that ran the order again under a new seq would
        payments.charge(AGENT_KEY, 100, idempotency_key=call_id(AGENT_KEY, 9))
    payments.lookup(call_id(AGENT_KEY, 0))
    return charged


def good_seen(charged: dict[str, str]) -> Seen:
    return Seen(
        orders=[OTHER, AGENT_KEY],
        pids={"worker A": 101, "worker B": 102},
        hung_partition=1,
        killed="worker B",
        kill_status=-signal.SIGKILL,
        survivor="worker A",
        pending_function=PAYMENT,
        pending_offset=14,
        takeover=[("assigned", [0, 1])],
        final_states={
            OTHER: {"completed": True, "pending_calls": 0, "offset": 8},
            AGENT_KEY: {"completed": True, "pending_calls": 0, "offset": 18},
        },
        outputs={
            OTHER: {"charge_id": charged[OTHER], "worker_pid": 102},
            AGENT_KEY: {"charge_id": charged[AGENT_KEY], "worker_pid": 101},
        },
        survivor_exit=0,
    )


def failed_checks(run: Path, seen: Seen) -> set[str]:
    return {c.name for c in judge(run, seen) if not c.ok}


def test_the_judge_passes_a_good_run(tmp_path: Path) -> None:
    seen = good_seen(books(tmp_path))
    assert failed_checks(tmp_path, seen) == set(), judge(tmp_path, seen)


def test_a_double_charge_fails_the_judge(tmp_path: Path) -> None:
    """The exit code is only as honest as the checks: two charges must fail them."""
    seen = good_seen(books(tmp_path, charge_twice=True))
    assert failed_checks(tmp_path, seen) == {
        "charges booked per order",
        "charge requests per order",
        f"{AGENT_KEY}'s output: the charge booked",
    }


def test_a_lookup_for_another_order_fails_the_judge(tmp_path: Path) -> None:
    seen = good_seen(books(tmp_path))
    PaymentProvider(tmp_path / "payments.json").lookup(call_id(OTHER, 0))
    assert failed_checks(tmp_path, seen) == {"reconciler lookups for the other orders"}


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"takeover": [("revoked", [2])]}, "partition 1 taken over by worker A (its log)"),
        ({"pending_function": None}, "payment PENDING after the kill"),
        ({"kill_status": 0}, "worker B ended by SIGKILL"),
        ({"survivor_exit": 1}, "worker A exit code on SIGTERM"),
    ],
)
def test_missing_evidence_fails_the_judge(
    tmp_path: Path, change: dict[str, object], failed: str
) -> None:
    seen = dataclasses.replace(good_seen(books(tmp_path)), **change)
    assert failed_checks(tmp_path, seen) == {failed}


def test_a_completed_state_not_from_the_survivor_fails_the_judge(tmp_path: Path) -> None:
    seen = good_seen(books(tmp_path))
    seen.outputs[AGENT_KEY]["worker_pid"] = 102  # the killed worker
    seen.final_states[AGENT_KEY]["offset"] = 12  # before the PENDING record
    assert failed_checks(tmp_path, seen) == {
        f"{AGENT_KEY} completed by",
        f"{AGENT_KEY}'s completed state written after the kill",
    }


def test_an_order_left_incomplete_fails_the_judge(tmp_path: Path) -> None:
    seen = good_seen(books(tmp_path))
    seen.final_states[OTHER] = {"completed": False, "pending_calls": 1, "offset": 9}
    assert failed_checks(tmp_path, seen) == {"orders completed"}
