"""``actionstate worker APP``: what it does with a bad APP, with an app that builds its own
store, and on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests._support import assert_eventually
from tests.fleet._fleet import (
    GROUP_PROPERTIES,
    ROOT,
    Fleet,
    check_outcomes,
    committed_offsets,
    end_offsets,
    keys_per_partition,
)

pytestmark = pytest.mark.timeout(120)

STORE_APP = "tests.fleet.store_app:worker"


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("tests.fleet.no_such_module:worker", "cannot import 'tests.fleet.no_such_module'"),
        ("tests.fleet.ledger_app:LEDGER", "tests.fleet.ledger_app.LEDGER is a str, not an"),
        ("tests.fleet.ledger_app:nothing", "tests.fleet.ledger_app.nothing is nothing, not an"),
        (":worker", "write MODULE:ATTRIBUTE"),
    ],
)
def test_a_bad_app_exits_2_saying_what_is_wrong(tmp_path: Path, app: str, message: str) -> None:
    fleet = Fleet("127.0.0.1:9", "unused", tmp_path)  # nothing connects: the app comes first
    done = subprocess.run(
        fleet.command(app, *fleet.fleet_args()),
        check=False,
        cwd=ROOT,
        env=fleet.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


def _store_env(fleet: Fleet) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": fleet.bootstrap,
        "ACTIONSTATE_TOPIC": fleet.state_topic,
        "ACTIONSTATE_PARTITIONS": str(fleet.partitions),
    }


def test_topic_disagreeing_with_the_apps_own_store_exits_2(fleet: Fleet) -> None:
    fleet.partitions = 2
    args = ["--topic", f"{fleet.state_topic}-other", "--requests", fleet.requests]
    done = subprocess.run(
        fleet.command(STORE_APP, *args, "--group", fleet.group),
        check=False,
        cwd=ROOT,
        env=fleet.env(**_store_env(fleet)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert f"the worker builds its own store (topic '{fleet.state_topic}'" in said, said
    assert "--topic disagree" in said, said


def test_an_app_with_its_own_store_runs_and_sigterm_commits_and_exits_0(fleet: Fleet) -> None:
    fleet.partitions = 2
    worker = fleet.start(
        "store-app",
        app=STORE_APP,
        fleet_args=["--requests", fleet.requests, "--group", fleet.group, *GROUP_PROPERTIES],
        env={**_store_env(fleet), "FLEET_SHIP_DELAY_S": "1"},
    )
    fleet.wait_owned([worker])
    keys = keys_per_partition(fleet.partitions, 2)
    sent = fleet.sender().send_many([(k, "charge", {"order": i}) for i, k in enumerate(keys)])

    def all_paid() -> None:
        paid = {e.state_key for e in fleet.ledger() if e.kind == "pay"}
        assert paid >= {s.state_key for s in sent}, f"{len(paid)} of {len(sent)} paid"

    assert_eventually(all_paid, timeout=30, interval=0.02)
    # SIGTERM with every action in flight (between its two calls): they get the grace
    # period to finish, their offsets are committed, the worker leaves the group.
    worker.send_signal(signal.SIGTERM)
    assert worker.popen.wait(30) == 0, worker.tail()
    worker.wait_log(r"revoked \[0, 1\]: 0 unfinished actions dropped .*, offsets committed")
    worker.wait_log(r"\bstopped$|\bstopped\n")
    outputs = check_outcomes(fleet, sent, shipped_at_most=1)
    assert {o["pid"] for o in outputs.values()} == {worker.pid}
    assert committed_offsets(fleet) == end_offsets(fleet)
    assert not fleet.problems(), fleet.problems()
