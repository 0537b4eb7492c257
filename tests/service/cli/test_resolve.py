"""``actionstate resolve``: a person settles a PENDING call; the next recovery replays it.

The command runs as a real subprocess against the real broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from actionstate.client import (
    DurableContext,
    KafkaStore,
    ReconcileLater,
    ResolvedCallError,
    Worker,
)
from actionstate.serde import CallStatus
from actionstate.service.cli import ExitCode
from tests._support.kafka import delete_topics

PARTITIONS = 2
SECRET = "resolve-test-secret"


class Crash(BaseException):
    """The worker dies while the payment runs: its slot stays PENDING."""


class World:
    def __init__(self) -> None:
        self.crash = True
        self.lookups = 0

    def pay(self, order: str) -> str:
        if self.crash:
            raise Crash
        return f"paid:{order}"

    def lookup(self) -> str:
        self.lookups += 1
        raise ReconcileLater("the ledger does not know yet")


@pytest.fixture
def topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    yield topic_name
    delete_topics(kafka_bootstrap, topic_name)


def open_store(bootstrap: str, topic: str) -> KafkaStore:
    return KafkaStore(
        bootstrap_servers=bootstrap, topic=topic, partitions=PARTITIONS, signing_secret=SECRET
    )


def build(store: KafkaStore, world: World) -> Worker:
    worker = Worker(store)

    @worker.action("checkout")
    def checkout(data: Any, ctx: DurableContext) -> Any:
        return {"paid": ctx.durable_execute(world.pay, data["order"], reconciler=world.lookup)}

    return worker


def resolve(bootstrap: str, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ACTIONSTATE_SIGNING_SECRET": SECRET,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "actionstate.service.cli", "resolve", *args, "--topic", topic],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard; the command ends by itself
        check=False,
    )


def unsettled_state_key(store: KafkaStore, world: World, order: str) -> str:
    """Journal a PENDING call whose reconciler says "later"; returns its state key."""
    with pytest.raises(Crash):
        build(store, world).submit(order, {"order": order}, seq=0)
    store.rebuild()
    [unsettled] = build(store, world).recover().unsettled
    assert unsettled.call_index == 0
    return unsettled.state_key


def test_resolve_result_is_replayed_by_the_next_recovery(kafka_bootstrap: str, topic: str) -> None:
    world = World()
    with open_store(kafka_bootstrap, topic) as store:
        skey = unsettled_state_key(store, world, "o-1")

    done = resolve(kafka_bootstrap, topic, skey, "0", "--result", '"paid:o-1 (by hand)"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"resolved call #0 of {skey} as SUCCEEDED"

    again = resolve(kafka_bootstrap, topic, skey, "0", "--result", '"twice"')
    assert again.returncode == ExitCode.NOT_PENDING
    assert "is SUCCEEDED, not PENDING" in again.stderr

    with open_store(kafka_bootstrap, topic) as store:
        store.rebuild()
        [(_, state)] = store.states()
        assert [c.status for c in state.call_results] == [CallStatus.SUCCEEDED]
        world.crash = False
        report = build(store, world).recover()
        assert report.ok, report
        assert (report.calls_replayed, world.lookups) == (1, 1)
        assert build(store, world).submit("o-1", {"order": "o-1"}, seq=0) == {
            "paid": "paid:o-1 (by hand)"
        }


def test_resolve_error_replays_as_resolved_call_error(kafka_bootstrap: str, topic: str) -> None:
    world = World()
    with open_store(kafka_bootstrap, topic) as store:
        skey = unsettled_state_key(store, world, "o-2")

    done = resolve(kafka_bootstrap, topic, skey, "0", "--error", "refunded by hand")
    assert done.returncode == 0, done.stderr

    with open_store(kafka_bootstrap, topic) as store:
        store.rebuild()
        [failure] = build(store, world).recover().failures
        assert isinstance(failure.error, ResolvedCallError)
        assert str(failure.error) == "refunded by hand"


def test_resolve_refuses_what_it_cannot_settle(kafka_bootstrap: str, topic: str) -> None:
    world = World()
    with open_store(kafka_bootstrap, topic) as store:
        skey = unsettled_state_key(store, world, "o-3")
    agent, seq, event_part, action_part = skey.split("_")
    missing = f"{agent}_{int(seq) + 5}_{event_part}_{action_part}"

    cases = [
        ((missing, "0", "--result", "1"), ExitCode.NOT_FOUND, "no state"),
        ((skey, "3", "--result", "1"), ExitCode.NOT_PENDING, "has no call #3"),
        ((skey, "0", "--result", "{not json"), 2, "not JSON"),
        ((skey, "0"), 2, "exactly one of --result JSON or --error MESSAGE"),
        (("not-a-state-key", "0", "--result", "1"), 2, "STATE_KEY"),
    ]
    for args, code, message in cases:
        refused = resolve(kafka_bootstrap, topic, *args)
        assert refused.returncode == code, (args, refused.stderr)
        assert message in refused.stderr, (args, refused.stderr)

    no_topic = resolve(kafka_bootstrap, f"{topic}-missing", skey, "0", "--result", "1")
    assert no_topic.returncode == ExitCode.NOT_FOUND
    assert "does not exist" in no_topic.stderr

    with open_store(kafka_bootstrap, topic) as store:  # nothing was written
        store.rebuild()
        [(_, state)] = store.states()
        assert [c.status for c in state.call_results] == [CallStatus.PENDING]
