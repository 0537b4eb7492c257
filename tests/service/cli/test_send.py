"""``actionstate send``: the real command as a subprocess, against the real broker.

Waiting is checked with the outcome a ``Worker.submit`` in the test process journals for
the request, as the worker loop runs it (seq = the request's offset).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from actionstate.client import DurableContext, KafkaStore, Worker
from actionstate.client.kafka import KafkaAdmin, KafkaConnection
from actionstate.serde import Request, RequestId, decode_request, partition_for
from actionstate.service.cli import ExitCode, build_app
from tests._support import assert_eventually, read_topic
from tests._support.kafka import delete_topics

PARTITIONS = 3
MARK = "SECRET-5c1e"


@pytest.fixture
def topics(kafka_bootstrap: str, topic_name: str) -> Iterator[tuple[str, str]]:
    """A state topic (created) and a requests topic (not yet)."""
    state, requests = f"{topic_name}-state", f"{topic_name}-requests"
    KafkaStore(bootstrap_servers=kafka_bootstrap, topic=state, partitions=PARTITIONS).close()
    yield state, requests
    delete_topics(kafka_bootstrap, state, requests)


def command(bootstrap: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "actionstate.service.cli", "send", *args]


def environment(bootstrap: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "COLUMNS": "200"}


def send(bootstrap: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(bootstrap, *args),
        input=stdin,
        env=environment(bootstrap),
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard; the command ends by itself
        check=False,
    )


def stored_requests(bootstrap: str, requests: str) -> dict[RequestId, Request]:
    out: dict[RequestId, Request] = {}
    for record in read_topic(bootstrap, requests):
        request = decode_request(record.key(), record.value())
        assert isinstance(request, Request), request
        out[RequestId(record.partition() or 0, record.offset() or 0)] = request
    return out


def build_worker(store: KafkaStore) -> Worker:
    worker = Worker(store)

    def charge_card(order: Any) -> str:
        return f"receipt-{order}"

    @worker.action("charge")
    def charge(data: Any, ctx: DurableContext) -> Any:
        return {"receipt": ctx.durable_execute(charge_card, data["order"])}

    return worker


def test_single_send_prints_the_request_id(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    done = send(
        "127.0.0.1:1",  # the flag wins over the environment
        "--bootstrap-servers",
        kafka_bootstrap,
        "--requests",
        requests,
        "--topic",
        state,
        "--action",
        "charge",
        "order-42",
        '{"order": 42}',
    )
    assert done.returncode == 0, done.stderr
    rid = RequestId.parse(done.stdout.strip())
    assert rid.partition == partition_for("order-42", PARTITIONS)
    assert stored_requests(kafka_bootstrap, requests) == {
        rid: Request("order-42", "charge", {"order": 42})
    }


def test_from_file_skips_bad_lines_by_number(
    kafka_bootstrap: str, topics: tuple[str, str], tmp_path: Path
) -> None:
    state, requests = topics
    lines = [
        '{"key": "order-1", "action": "charge", "data": {"order": 1}}',
        f"not json {MARK}",
        "",
        f'{{"key": "a_{MARK}", "action": "charge"}}',
        f'{{"action": "charge", "data": "{MARK}"}}',
        '{"key": "order-2", "action": "refund", "data": [1, 2], "note": "extra is ignored"}',
        f'["{MARK}"]',
        f'{{"key": "order-3", "action": "", "data": "{MARK}"}}',
        '{"key": "order-3", "action": "charge"}',
        "   ",
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = send(kafka_bootstrap, "--requests", requests, "--topic", state, "--from-file", str(path))
    assert done.returncode == ExitCode.FAILED, done.stderr
    assert MARK not in done.stderr
    for number, says in ((2, "not JSON"), (4, "\"key\" must not contain '_'"), (5, 'no "key"')):
        assert f"line {number}: skipped: {says}" in done.stderr
    assert 'line 7: skipped: an array, not an object with "key"' in done.stderr
    assert 'line 8: skipped: "action" must be a non-empty str' in done.stderr
    assert "5 bad lines skipped" in done.stderr
    assert "line 3" not in done.stderr
    assert "line 10" not in done.stderr
    ids = [RequestId.parse(line) for line in done.stdout.split()]
    stored = stored_requests(kafka_bootstrap, requests)
    assert [stored[rid] for rid in ids] == [
        Request("order-1", "charge", {"order": 1}),
        Request("order-2", "refund", [1, 2]),
        Request("order-3", "charge", None),
    ]


def test_from_stdin(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    stdin = "".join(
        orjson.dumps({"key": f"order-{i}", "action": "charge", "data": i}).decode() + "\n"
        for i in range(20)
    )
    done = send(
        kafka_bootstrap, "--requests", requests, "--topic", state, "--from-file", "-", stdin=stdin
    )
    assert done.returncode == 0, done.stderr
    ids = [RequestId.parse(line) for line in done.stdout.split()]
    stored = stored_requests(kafka_bootstrap, requests)
    assert [stored[rid] for rid in ids] == [Request(f"order-{i}", "charge", i) for i in range(20)]


def test_client_properties_pass_through_and_reserved_ones_are_refused(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    state, requests = topics
    base = ("--requests", requests, "--topic", state, "--action", "charge")
    done = send(kafka_bootstrap, *base, "-X", "client.id=send-test", "-X", "linger.ms=1", "k", "1")
    assert done.returncode == 0, done.stderr
    refused = send(kafka_bootstrap, *base, "-X", "acks=0", "k", "1")
    assert refused.returncode == ExitCode.USAGE
    assert "'acks' cannot be overridden" in refused.stderr
    malformed = send(kafka_bootstrap, *base, "--property", "linger.ms", "k", "1")
    assert malformed.returncode == ExitCode.USAGE
    assert "'linger.ms' is not KEY=VALUE" in malformed.stderr
    assert len(stored_requests(kafka_bootstrap, requests)) == 1


def test_usage_errors(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    base = ("--requests", requests, "--topic", state)
    # refused before any connection: run in-process, the same command without the start-up
    usage: list[tuple[tuple[str, ...], str]] = [
        ((*base, "k", "1"), "--action NAME"),
        ((*base, "--action", "charge", "k"), "give KEY and DATA"),
        ((*base, "--action", "charge", "k", "{nope"), "not JSON"),
        ((*base, "--action", "charge", "a_b", "1"), "must not contain '_'"),
        ((*base, "--from-file", "-", "k"), "give no KEY, DATA or --action"),
        (("--requests", requests, "--wait", "--action", "a", "k", "1"), "--topic"),
        (("--action", "a", "k", "1"), "requests"),
        ((*base, "--timeout", "0", "--wait", "--action", "a", "k", "1"), "--timeout"),
    ]
    runner = CliRunner()
    app = build_app()
    for args, says in usage:
        done = runner.invoke(app, ["send", *args], env={"COLUMNS": "200"})
        assert done.exit_code == ExitCode.USAGE, (args, done.output)
        assert says in done.output, (args, done.output)
    failed: list[tuple[tuple[str, ...], str]] = [
        ((*base, "--from-file", "/nonexistent/requests.jsonl"), "No such file"),
        (
            ("--requests", f"{requests}-missing", "--action", "a", "k", "1"),
            "does not exist; give the state topic",
        ),
    ]
    for args, says in failed:
        done_process = send(kafka_bootstrap, *args)
        assert done_process.returncode == ExitCode.FAILED, (args, done_process.stderr)
        assert says in done_process.stderr, (args, done_process.stderr)
    # refused before anything was sent: not even the requests topic was created
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=kafka_bootstrap))
    assert admin.partition_count(requests) is None


def run_requests_as_the_loop(
    worker: Worker, bootstrap: str, requests: str, count: int
) -> dict[RequestId, Any]:
    """Wait for ``count`` requests to land, then run each as the worker loop would."""
    admin = KafkaAdmin(KafkaConnection(bootstrap_servers=bootstrap))

    def landed() -> None:
        # The command creates the topic: read it only once it exists and holds them all.
        partitions = admin.partition_count(requests)
        assert partitions is not None
        assert sum(admin.end_offsets(requests, list(range(partitions))).values()) == count

    assert_eventually(landed, timeout=60)
    return {
        rid: worker.submit(r.agent_key, r.data, seq=rid.offset, action=r.action)
        for rid, r in stored_requests(bootstrap, requests).items()
    }


def test_wait_prints_the_outcome(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    args = ("--requests", requests, "--topic", state, "--wait", "--timeout", "60")
    with (
        KafkaStore(bootstrap_servers=kafka_bootstrap, topic=state, partitions=PARTITIONS) as store,
        subprocess.Popen(
            command(kafka_bootstrap, *args, "--action", "charge", "order-7", '{"order": 7}'),
            env=environment(kafka_bootstrap),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        try:
            outputs = run_requests_as_the_loop(build_worker(store), kafka_bootstrap, requests, 1)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    [(rid, output)] = outputs.items()
    assert output == {"receipt": "receipt-7"}
    assert out == f'{rid} {{"receipt":"receipt-7"}}\n'


def test_wait_from_a_file_prints_each_outcome(
    kafka_bootstrap: str, topics: tuple[str, str], tmp_path: Path
) -> None:
    state, requests = topics
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(
            f'{{"key": "order-{i}", "action": "charge", "data": {{"order": {i}}}}}\n'
            for i in range(3)
        )
    )
    args = ("--requests", requests, "--topic", state, "--from-file", str(path), "--wait")
    with (
        KafkaStore(bootstrap_servers=kafka_bootstrap, topic=state, partitions=PARTITIONS) as store,
        subprocess.Popen(
            command(kafka_bootstrap, *args),
            env=environment(kafka_bootstrap),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        try:
            outputs = run_requests_as_the_loop(build_worker(store), kafka_bootstrap, requests, 3)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    printed = {}
    for line in out.splitlines():
        rid, _, text = line.partition(" ")
        printed[RequestId.parse(rid)] = orjson.loads(text)
    assert printed == outputs
    assert outputs == {
        rid: {"receipt": f"receipt-{i}"}
        for i, rid in enumerate(sorted_by_key(kafka_bootstrap, requests))
    }


def sorted_by_key(bootstrap: str, requests: str) -> list[RequestId]:
    stored = stored_requests(bootstrap, requests)
    return sorted(stored, key=lambda rid: stored[rid].agent_key)


def test_wait_timeout_has_its_own_exit_code(kafka_bootstrap: str, topics: tuple[str, str]) -> None:
    state, requests = topics
    done = send(
        kafka_bootstrap,
        *("--requests", requests, "--topic", state, "--wait", "--timeout", "1"),
        *("--action", "charge", "order-9", "null"),
    )
    assert done.returncode == ExitCode.TIMEOUT, done.stderr
    [rid] = stored_requests(kafka_bootstrap, requests)
    assert f"request {rid} ('charge') has no completed state in topic {state!r}" in done.stderr
    assert "may still be running" in done.stderr
    assert done.stdout == ""
