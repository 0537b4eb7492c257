"""``actionstate inspect`` against a real topic holding every kind of record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from actionstate.client import KafkaStore, KafkaStoreSettings
from actionstate.serde import (
    ActionState,
    CallResult,
    Event,
    action_uuid,
    event_uuid,
    partition_for,
    sign_record,
    state_key,
)
from actionstate.service.cli import build_app

PARTITIONS = 3
EVENT = Event.input({"order": 42})


def skey(agent: str, seq: int = 1, action: str = "charge") -> str:
    return state_key(agent, seq, event_uuid(EVENT.attributes), action_uuid(action))


def pending_state() -> ActionState:
    return ActionState(
        task_event=EVENT,
        call_results=[
            CallResult.succeeded("shop.reserve", "00000000000000aa", b"\x80\x05N."),
            CallResult.pending("shop.charge", "00000000000000bb"),
        ],
    )


def json_state() -> ActionState:
    return ActionState(
        task_event=EVENT,
        call_results=[CallResult.succeeded("shop.quote", "00000000000000cc", b'{"price": 12}')],
    )


def done_state() -> ActionState:
    state = ActionState(task_event=EVENT, output_events=[Event.output({"ok": True})])
    state.mark_completed()
    return state


def delivered(err: Any, _msg: Any) -> None:
    assert err is None, err


@dataclass
class Topic:
    bootstrap: str
    name: str
    bad_keys: list[str | None]


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str) -> Iterator[Topic]:
    """The shared topic of the read-only tests (see ``fill``)."""
    yield from fill(kafka_bootstrap, f"test-inspect-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fresh_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[Topic]:
    """A topic of its own, for a test that writes to it."""
    yield from fill(kafka_bootstrap, topic_name)


def fill(kafka_bootstrap: str, topic_name: str) -> Iterator[Topic]:
    """10 records: 4 live states (2 incomplete, 1 pending call), a tombstone over an
    earlier state, a rewritten key, and 3 bad records (garbage value, non-UTF-8 key, a key
    that is no state key)."""
    settings = KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=PARTITIONS
    )
    with KafkaStore(settings) as store:
        store.put("alice", 1, "charge", EVENT, pending_state())
        store.put("bob", 1, "charge", EVENT, done_state())
        store.put("dave", 1, "charge", EVENT, pending_state())
        store.put("dave", 1, "charge", EVENT, done_state())  # rewritten: completed now
        store.put("erin", 1, "charge", EVENT, pending_state())
        assert store.prune("erin", 1) == 1  # a tombstone
    with KafkaStore(settings, payload_codec="json") as store:
        store.put("carol", 1, "charge", EVENT, json_state())
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    garbage_key = skey("mallory")
    producer.produce(
        topic_name,
        b"{not json",
        key=garbage_key,
        partition=partition_for("mallory", PARTITIONS),
        on_delivery=delivered,
    )
    # (a compacted topic refuses records without a key, so no such case here)
    producer.produce(topic_name, b"{}", key=b"\xff\xfe", partition=0, on_delivery=delivered)
    producer.produce(topic_name, b"{}", key=b"not-a-state-key", partition=1, on_delivery=delivered)
    assert producer.flush(30) == 0
    yield Topic(kafka_bootstrap, topic_name, [garbage_key, "\ufffd\ufffd", "not-a-state-key"])
    AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics([topic_name])


def run(topic: Topic, *args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(
        build_app(),
        ["inspect", "--bootstrap-servers", topic.bootstrap, "--topic", topic.name, *args],
        env=env,
        catch_exceptions=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


# -- JSON lines ------------------------------------------------------------------------------


def test_json_lines_with_history_show_every_record(topic: Topic) -> None:
    result = run(topic, "--format", "json", "--history")
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    kinds = [r["kind"] for r in records]
    assert len(records) == 10
    assert kinds.count("state") == 6
    assert kinds.count("tombstone") == 1
    assert kinds.count("bad") == 3
    bad = [r for r in records if r["kind"] == "bad"]
    assert sorted(str(r["key"]) for r in bad) == sorted(str(k) for k in topic.bad_keys)
    assert all(r["error"] and isinstance(r["offset"], int) for r in bad)
    tomb = next(r for r in records if r["kind"] == "tombstone")
    assert tomb["key"] == skey("erin")
    assert tomb["bytes"] == 0


def test_json_lines_decode_json_payloads_and_never_unpickle(topic: Topic) -> None:
    records = json_lines(run(topic, "--format", "json", "--agent-key", "alice").stdout)
    assert [r["kind"] for r in records] == ["state"]
    alice = records[0]
    assert alice["codec"] == "cloudpickle"
    assert alice["completed"] is False
    assert alice["pending_calls"] == 1
    reserve, charge = alice["calls"]
    assert (reserve["function_id"], reserve["status"]) == ("shop.reserve", "SUCCEEDED")
    assert reserve["payload_bytes"] == 4
    assert reserve["payload_decoded"] is False
    assert "--unpickle" in reserve["payload_note"]
    assert "payload" not in reserve
    assert (charge["function_id"], charge["status"], charge["payload_bytes"]) == (
        "shop.charge",
        "PENDING",
        None,
    )

    (carol,) = json_lines(run(topic, "--format", "json", "--agent-key", "carol").stdout)
    assert carol["codec"] == "json"
    assert carol["calls"][0]["payload"] == {"price": 12}


def test_unpickle_warns_and_decodes(topic: Topic) -> None:
    result = run(topic, "--format", "json", "--agent-key", "alice", "--unpickle")
    assert result.exit_code == 0
    assert "warning" in result.stderr
    assert "runs code" in result.stderr
    (alice,) = json_lines(result.stdout)
    assert alice["calls"][0]["payload_repr"] == "None"


def test_unpickle_with_a_secret_only_loads_verified_records(topic: Topic) -> None:
    # The fixture's records are unsigned: with a secret configured, none is unpickled.
    env = {"ACTIONSTATE_SIGNING_SECRET": "s3cret"}
    result = run(topic, "--format", "json", "--agent-key", "alice", "--unpickle", env=env)
    (alice,) = json_lines(result.stdout)
    assert alice["verified"] is False
    assert "signature" in alice["calls"][0]["payload_note"]
    assert "payload_repr" not in alice["calls"][0]


def test_by_default_each_key_shows_its_latest_record(topic: Topic) -> None:
    records = json_lines(run(topic, "--format", "json").stdout)
    # dave's PENDING record was superseded, erin's state by its tombstone; bad records stay
    assert len(records) == 8
    assert sorted((r["kind"], str(r["agent_key"])) for r in records if r["kind"] != "bad") == [
        ("state", "alice"),
        ("state", "bob"),
        ("state", "carol"),
        ("state", "dave"),
        ("tombstone", "erin"),
    ]
    (dave,) = [r for r in records if r["agent_key"] == "dave"]
    assert dave["completed"] is True
    places = [(r["partition"], r["offset"]) for r in records]
    assert places == sorted(places)


def test_status_filters_what_is_true_now(topic: Topic) -> None:
    def agents(status: str) -> list[str]:
        records = json_lines(run(topic, "--format", "json", "--status", status).stdout)
        return sorted(str(r["agent_key"]) for r in records if r["kind"] == "state")

    # dave completed after his pending record, erin was pruned: neither is pending now
    assert agents("pending") == ["alice"]
    assert agents("incomplete") == ["alice", "carol"]
    assert agents("completed") == ["bob", "dave"]


def test_history_filters_every_record(topic: Topic) -> None:
    def agents(status: str) -> list[str]:
        out = run(topic, "--format", "json", "--history", "--status", status).stdout
        return sorted(str(r["agent_key"]) for r in json_lines(out) if r["kind"] == "state")

    # every record passing the filter, an overwritten one included (dave's first)
    assert agents("pending") == ["alice", "dave", "erin"]
    assert agents("incomplete") == ["alice", "carol", "dave", "erin"]
    assert agents("completed") == ["bob", "dave"]


def test_unknown_status_is_a_usage_error(topic: Topic) -> None:
    result = run(topic, "--status", "sleeping")
    assert result.exit_code == 2
    assert "sleeping" in result.output


def test_state_key_and_partition_filters(topic: Topic) -> None:
    records = json_lines(run(topic, "--format", "json", "--state-key", skey("dave")).stdout)
    assert [r["completed"] for r in records] == [True]
    dave = run(topic, "--format", "json", "--history", "--state-key", skey("dave")).stdout
    assert [r["completed"] for r in json_lines(dave)] == [False, True]
    part = partition_for("bob", PARTITIONS)
    records = json_lines(run(topic, "--format", "json", "--partition", str(part)).stdout)
    assert records
    assert {r["partition"] for r in records} == {part}


def test_offsets_start_the_read_later(topic: Topic) -> None:
    part = partition_for("dave", PARTITIONS)
    everything = json_lines(run(topic, "--format", "json", "--partition", str(part)).stdout)
    last = everything[-1]["offset"]
    later = json_lines(
        run(
            topic, "--format", "json", "--partition", str(part), "--offsets", f"{part}:{last}"
        ).stdout
    )
    assert [r["offset"] for r in later] == [last]


def test_the_broker_and_topic_come_from_the_environment() -> None:
    # typer 0.26.0 ignored envvar= on required options ("Missing option"); no broker needed:
    # the bad --offsets is refused before anything connects
    result = CliRunner().invoke(
        build_app(),
        ["inspect", "--offsets", "zero:1"],
        env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "ACTIONSTATE_TOPIC": "orders"},
    )
    assert result.exit_code == 2
    assert "PARTITION:OFFSET" in result.output
    assert "Missing option" not in result.output


def test_bad_offsets_and_a_missing_topic_are_clear_errors(topic: Topic) -> None:
    result = run(topic, "--offsets", "zero:1")
    assert result.exit_code == 2
    assert "PARTITION:OFFSET" in result.output
    result = CliRunner().invoke(
        build_app(),
        ["inspect", "--bootstrap-servers", topic.bootstrap, "--topic", topic.name + "-nope"],
    )
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


# -- summary ---------------------------------------------------------------------------------


def test_summary_json_counts(topic: Topic) -> None:
    result = run(topic, "--summary", "--format", "json")
    assert result.exit_code == 0
    (summary,) = json_lines(result.stdout)
    assert summary["kind"] == "summary"
    assert summary["records"] == 10
    assert summary["live_keys"] == 4  # alice, bob, carol, dave
    assert summary["tombstones"] == 1
    assert summary["bad_records"] == 3
    assert summary["actions_incomplete"] == 2  # alice, carol
    assert summary["calls_pending"] == 1  # alice
    assert summary["bytes"] > 0
    per = summary["partitions"]
    assert sum(p["records"] for p in per.values()) == 10
    assert sum(p["live_keys"] for p in per.values()) == 4
    assert per[str(partition_for("alice", PARTITIONS))]["calls_pending"] >= 1


def test_summary_with_status_narrows_live_counts(topic: Topic) -> None:
    (summary,) = json_lines(
        run(topic, "--summary", "--format", "json", "--status", "pending").stdout
    )
    assert summary["live_keys"] == 1
    assert summary["records"] == 10


def test_summary_table(topic: Topic) -> None:
    result = run(topic, "--summary")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    total = next(line for line in lines if " all " in line)
    assert [int(cell) for cell in total.replace("│", " ").split()[1:-1]] == [10, 4, 1, 3, 2, 1]


# -- table -----------------------------------------------------------------------------------


def test_table_with_history_shows_each_record(topic: Topic) -> None:
    result = run(topic, "--history")
    assert result.exit_code == 0
    out = result.stdout
    assert out.count("BAD") == 3
    assert out.count("tombstone") == 1
    assert out.count("pending") == 3
    assert "shop.charge PENDING" in out
    assert 'result 13 B = {"price":12}' in out
    assert skey("alice") in out
    assert "10 records read, 1 tombstones, 3 bad records" in result.stderr


def test_table_shows_the_latest_record_of_each_key(topic: Topic) -> None:
    result = run(topic, "--status", "pending")
    assert result.exit_code == 0
    assert result.stdout.count("pending") == 1
    assert skey("alice") in result.stdout
    assert skey("dave") not in result.stdout
    assert "10 records read, 1 tombstones, 3 bad records" in result.stderr


# -- follow ----------------------------------------------------------------------------------


def test_follow_prints_records_written_later(fresh_topic: Topic) -> None:
    topic = fresh_topic
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": topic.bootstrap,
        "ACTIONSTATE_TOPIC": topic.name,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actionstate.service.cli",
            "inspect",
            "--format",
            "json",
            "--follow",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        # the latest record of each key first (8), then each record as it is written
        seen = [orjson.loads(proc.stdout.readline()) for _ in range(8)]
        assert len({r["key"] for r in seen}) == 8
        settings = KafkaStoreSettings(
            bootstrap_servers=topic.bootstrap, topic=topic.name, partitions=PARTITIONS
        )
        with KafkaStore(settings) as store:
            store.put("zoe", 1, "charge", EVENT, pending_state())
        late = orjson.loads(proc.stdout.readline())
        assert late["agent_key"] == "zoe"
        assert late["pending_calls"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
    assert proc.returncode == 0


def test_signed_records_are_verified(kafka_bootstrap: str, topic_name: str) -> None:
    settings = KafkaStoreSettings(
        bootstrap_servers=kafka_bootstrap, topic=topic_name, partitions=1, signing_secret="k"
    )
    with KafkaStore(settings) as store:
        store.put("alice", 1, "charge", EVENT, pending_state())
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    forged_key = skey("bob")
    value = b'{"taskEvent":null,"completed":false}'
    signature = sign_record(forged_key, value, b"other")
    producer.produce(
        topic_name,
        value,
        key=forged_key,
        headers=[("actionstate.hmac-sha256", signature)],
        on_delivery=delivered,
    )
    assert producer.flush(30) == 0
    try:
        result = CliRunner().invoke(
            build_app(),
            ["inspect", "--format", "json", "--unpickle"],
            env={
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "ACTIONSTATE_TOPIC": topic_name,
                "ACTIONSTATE_SIGNING_SECRET": "k",
            },
        )
        records = {r["agent_key"]: r for r in json_lines(result.stdout)}
        assert records["alice"]["verified"] is True
        assert records["alice"]["calls"][0]["payload_repr"] == "None"
        assert records["bob"]["verified"] is False
    finally:
        AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics([topic_name])
