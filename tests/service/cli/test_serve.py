"""``actionstate serve`` as a user runs it: a process, its messages, its signals."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from actionstate.serde import (
    ActionState,
    action_uuid,
    encode_action_state,
    sign_record,
    state_key,
)
from actionstate.service.cli import build_app
from actionstate.service.local_kafka import LocalKafka, LocalKafkaSettings
from tests._support import assert_eventually
from tests._support.kafka import delete_topics

_URL = re.compile(r"listening on (http://[^\s;,()]+)")


class Serve:
    """A running ``actionstate serve`` process and the lines it printed on stderr."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actionstate.service.cli", "serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._ended = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self._ended.set()

    def next_line(self, timeout: float) -> str:
        line = self.lines.get(timeout=timeout)
        self.seen.append(line)
        return line

    def exit_and_output(self, timeout: float) -> tuple[int, str]:
        """Wait for the process to end by itself; its exit code and all it printed."""
        code = self.proc.wait(timeout=timeout)
        assert self._ended.wait(timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, "".join(self.seen)

    def wait_for_url(self, timeout: float) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no URL printed; stderr so far: {self.seen}") from None
            self.seen.append(line)
            found = _URL.search(line)
            if found:
                return found.group(1)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(extra)
    return env


def _ready(url: str) -> None:
    assert httpx.get(f"{url}/readyz").status_code == 200


@pytest.fixture
def cleanup_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    yield topic_name
    delete_topics(kafka_bootstrap, topic_name)


def test_serve_runs_until_interrupted(kafka_bootstrap: str, cleanup_topic: str) -> None:
    serve = Serve(
        ["--port", "0", "--partitions", "2"],
        _env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, ACTIONSTATE_TOPIC=cleanup_topic),
    )
    try:
        url = serve.wait_for_url(60)
        assert url.startswith("http://127.0.0.1:")
        assert_eventually(lambda: _ready(url))
        status = httpx.get(f"{url}/v1/status").json()
        assert (status["topic"], status["partitions"]) == (cleanup_topic, 2)
    finally:
        code = serve.stop()
    assert code == 0


def test_serve_refuses_a_public_bind_without_a_token() -> None:
    result = CliRunner().invoke(
        build_app(), ["serve", "--host", "0.0.0.0", "--bootstrap-servers", "127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "token" in result.stderr
    assert "127.0.0.1" in result.stderr


def test_serve_reports_a_bad_setting() -> None:
    result = CliRunner().invoke(build_app(), ["serve", "--topic", "no spaces", "--port", "1"])
    assert result.exit_code == 2
    assert "topic" in result.stderr


def test_without_bootstrap_servers_serve_runs_the_local_broker(
    broker_dirs: Callable[[str], Path],
) -> None:
    data = broker_dirs("serve-state")
    serve = Serve(["--port", "0", "--data-dir", str(data), "--topic", "orders"], _env())
    try:
        url = serve.wait_for_url(240)
        said = "".join(serve.seen)
        assert "no bootstrap servers configured" in said
        assert "starting the local Kafka broker" in said
        assert LocalKafka(LocalKafkaSettings(dir=data)).status().running
        assert_eventually(lambda: _ready(url))
        skey = state_key("alice", 1, action_uuid("e"), action_uuid("charge"))
        put = httpx.put(f"{url}/v1/states/{skey}", content=encode_action_state(ActionState()))
        assert put.status_code == 200, put.text
    finally:
        code = serve.stop(signal.SIGTERM)
        broker = LocalKafka(LocalKafkaSettings(dir=data))
        was_running = broker.status().running
        broker.stop()  # never leave a broker behind, even when the test fails
    assert code == 0
    # It stopped the broker it started, and kept its data under the data dir.
    assert not was_running
    assert any(data.iterdir())


def test_serve_refuses_a_signing_secret_without_a_token() -> None:
    serve = Serve(
        ["--port", "0"],
        _env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", ACTIONSTATE_SIGNING_SECRET="s3cret"),
    )
    try:
        code, said = serve.exit_and_output(60)
    finally:
        serve.stop()
    assert code == 2
    assert "signing secret" in said
    assert "set a token" in said
    assert "listening" not in said


def test_serve_with_a_secret_and_a_token_says_so_and_signs_for_token_holders(
    kafka_bootstrap: str, cleanup_topic: str
) -> None:
    serve = Serve(
        ["--port", "0", "--partitions", "1", "--token", "t0k3n"],
        _env(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            ACTIONSTATE_TOPIC=cleanup_topic,
            ACTIONSTATE_SIGNING_SECRET="s3cret",
        ),
    )
    try:
        url = serve.wait_for_url(60)
        enforcing = serve.next_line(30)
        assert "every request needs the token" in enforcing
        assert "signed with the signing secret" in enforcing
        auth = {"Authorization": "Bearer t0k3n"}
        assert_eventually(lambda: _ready_with(url, auth))
        key = state_key("alice", 1, action_uuid("e"), action_uuid("charge"))
        body = encode_action_state(ActionState())
        assert httpx.put(f"{url}/v1/states/{key}", content=body).status_code == 401
        written = httpx.put(f"{url}/v1/states/{key}", content=body, headers=auth)
        assert written.status_code == 200, written.text
        stored = httpx.get(f"{url}/v1/states/{key}", headers=auth).json()
        assert stored["signature"] == sign_record(key, body, b"s3cret", version=stored["version"])
    finally:
        code = serve.stop()
    assert code == 0


def _ready_with(url: str, headers: dict[str, str]) -> None:
    assert httpx.get(f"{url}/readyz", headers=headers).status_code == 200


# -- readiness under a broker that stops and comes back ------------------------------------


def _readiness(url: str) -> tuple[int, str]:
    answer = httpx.get(f"{url}/readyz", timeout=30)
    return answer.status_code, answer.json().get("error", "")


def test_readyz_follows_the_broker_away_and_back(broker_dirs: Callable[[str], Path]) -> None:
    broker = LocalKafka(LocalKafkaSettings(dir=broker_dirs("readyz-broker")))
    try:
        bootstrap = broker.start()
        pid = broker.status().pid
        assert pid is not None
        serve = Serve(
            ["--port", "0", "--partitions", "2", "--ready-max-lag", "3"],
            _env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, ACTIONSTATE_TOPIC="orders"),
        )
        try:
            url = serve.wait_for_url(120)
            assert_eventually(lambda: _readiness(url) == (200, ""), timeout=60)

            # A broker that answers nothing (stopped, not gone): 503 within a bounded time.
            os.kill(pid, signal.SIGSTOP)
            try:
                assert_eventually(
                    lambda: _readiness(url) == (503, "broker_unreachable"), timeout=60
                )
                assert httpx.get(f"{url}/healthz").status_code == 200  # alive all the same
            finally:
                os.kill(pid, signal.SIGCONT)
            assert_eventually(lambda: _readiness(url) == (200, ""), timeout=60)

            # A broker stopped and started again on its ports and data.
            broker.stop()
            assert_eventually(lambda: _readiness(url) == (503, "broker_unreachable"), timeout=60)
            assert broker.start() == bootstrap
            assert_eventually(lambda: _readiness(url) == (200, ""), timeout=120)
            key = state_key("alice", 1, action_uuid("e"), action_uuid("charge"))
            body = encode_action_state(ActionState())
            written = httpx.put(f"{url}/v1/states/{key}", content=body, timeout=60)
            assert written.status_code == 200, written.text
        finally:
            code = serve.stop()
        assert code == 0
    finally:
        broker.stop()


# -- the token from a file ---------------------------------------------------------------


def test_serve_reads_the_token_from_a_file(
    kafka_bootstrap: str, cleanup_topic: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret-t0ken\n")
    token_file.chmod(0o600)
    serve = Serve(
        ["--port", "0", "--partitions", "1", "--token-file", str(token_file)],
        _env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, ACTIONSTATE_TOPIC=cleanup_topic),
    )
    try:
        url = serve.wait_for_url(60)
        assert "every request needs the token" in serve.next_line(30)
        auth = {"Authorization": "Bearer s3cret-t0ken"}  # whitespace stripped
        assert_eventually(lambda: _ready_with(url, auth))
        assert httpx.get(f"{url}/v1/status").status_code == 401
        # The token appears in no command line.
        assert "s3cret-t0ken" not in " ".join(serve.proc.args)
    finally:
        code = serve.stop()
    assert code == 0
    assert "readable by every user" not in "".join(serve.seen)


def test_serve_warns_about_a_token_file_others_can_read(
    kafka_bootstrap: str, cleanup_topic: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t0k3n")
    token_file.chmod(0o644)
    serve = Serve(
        ["--port", "0", "--partitions", "1"],
        _env(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            ACTIONSTATE_TOPIC=cleanup_topic,
            ACTIONSTATE_TOKEN_FILE=str(token_file),
        ),
    )
    try:
        url = serve.wait_for_url(60)
        assert_eventually(lambda: _ready_with(url, {"Authorization": "Bearer t0k3n"}))
    finally:
        code = serve.stop()
    assert code == 0
    said = "".join(serve.seen)
    assert "readable by every user" in said
    assert "chmod" in said


@pytest.mark.parametrize(
    ("content", "named"),
    [(None, "cannot read the token file"), (" \n", "is empty")],
    ids=["missing", "empty"],
)
def test_serve_refuses_a_missing_or_empty_token_file(
    tmp_path: Path, content: str | None, named: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    result = CliRunner().invoke(
        build_app(),
        ["serve", "--bootstrap-servers", "127.0.0.1:1", "--token-file", str(token_file)],
    )
    assert result.exit_code == 2
    assert named in result.stderr
    assert str(token_file) in result.stderr


def test_serve_refuses_a_token_and_a_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t0k3n")
    result = CliRunner().invoke(
        build_app(),
        ["serve", "--bootstrap-servers", "127.0.0.1:1", "--token", "x", "--token-file",
         str(token_file)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "both a token and a token file" in result.stderr
