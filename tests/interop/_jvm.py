"""The Python side of the Java interop harness (``interop/java``; nothing here builds it).

Two builds: against Flink Agents 0.3.0 (``mvn -q -B -f interop/java/pom.xml package``, when
Maven Central serves it) and against the real 0.2.0 classes of the PyPI wheel
(``scripts/flink-agents-jars``, run by ``scripts/bootstrap``).

Runs Flink Agents' own classes in a JVM for the ``java``-marked tests and ``bench/vs_java.py``:
a long-lived ``check`` process answers one request per line (so hypothesis examples do
not pay JVM start-up each), and one-shot commands drive the real ``KafkaActionStateStore``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actionstate.serde import Event

__all__ = [
    "BUILD_COMMAND",
    "JAR",
    "ROOT",
    "Checker",
    "HarnessError",
    "bench",
    "ensure_jar",
    "event_spec",
    "harness_020",
    "put_spec",
    "run",
]

ROOT = Path(__file__).resolve().parents[2]
JAR = ROOT / "interop" / "java" / "target" / "actionstate-interop.jar"
BUILD_COMMAND = "mvn -q -B -f interop/java/pom.xml package"
JAR_020 = ROOT / "interop" / "java" / "target" / "flink-agents-0.2" / "actionstate-interop.jar"


class HarnessError(RuntimeError):
    """The harness is missing, could not run, or answered something unexpected."""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise HarnessError("no `java` on PATH (Java 17+ is needed for the interop harness)")
    return found


def ensure_jar() -> Path:
    """The harness jar; raises :class:`HarnessError` saying how to build it when missing
    (or that Java is missing)."""
    _java()
    if JAR.exists():
        return JAR
    raise HarnessError(
        f"the Java harness {JAR.relative_to(ROOT)} is missing: build it with "
        f"`{BUILD_COMMAND}` (needs Java 17+, Maven, and "
        "org.apache.flink:flink-agents-runtime:0.3.0 from Maven Central)"
    )


def harness_020() -> list[str]:
    """The command that runs the harness built against Flink Agents 0.2.0; raises
    :class:`HarnessError` saying how to build it when missing."""
    java = _java()
    dependencies = JAR_020.parent / "dependencies.txt"
    if not (JAR_020.exists() and dependencies.exists()):
        raise HarnessError(
            f"the Flink Agents 0.2.0 harness {JAR_020.relative_to(ROOT)} is missing: build it "
            "with `scripts/flink-agents-jars` (scripts/bootstrap runs it; needs Java 17+, "
            "Maven, and PyPI and Maven Central)"
        )
    classpath = os.pathsep.join((str(JAR_020), dependencies.read_text("utf-8").strip()))
    return [java, "-cp", classpath, "actionstate.interop.v02.Main"]


def _harness_030() -> list[str]:
    return [_java(), "-jar", str(ensure_jar())]


def run(
    args: Sequence[str],
    stdin: str = "",
    timeout: float = 300.0,
    harness: Sequence[str] | None = None,
) -> str:
    """Run one harness command (of the 0.3.0 build unless ``harness`` names another, as
    :func:`harness_020` does) and return its stdout; raises :class:`HarnessError`."""
    cmd = [*(harness or _harness_030()), *args]
    try:
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"harness {' '.join(args[:2])} timed out after {timeout} s") from e
    if done.returncode != 0:
        raise HarnessError(
            f"harness {' '.join(args[:2])} exited {done.returncode}:\n{done.stderr[-4000:]}"
        )
    return done.stdout


def bench(kind: str, options: Mapping[str, object], stdin: str = "") -> dict[str, Any]:
    """Run ``bench <kind>`` with ``--name value`` options and return its JSON report."""
    args = ["bench", kind]
    for name, value in options.items():
        args += [f"--{name}", str(value)]
    result: dict[str, Any] = json.loads(run(args, stdin=stdin, timeout=1800.0))
    return result


class Checker:
    """A long-lived ``check`` process (of the 0.3.0 build unless ``harness`` names another):
    :meth:`ask` sends one request and returns its reply."""

    def __init__(self, harness: Sequence[str] | None = None) -> None:
        self._proc = subprocess.Popen(
            [*(harness or _harness_030()), "check"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._lock = threading.Lock()
        self._count = 0

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request (see ``CheckCommand``) and return the harness's reply."""
        return self.ask_many([request])[0]

    def ask_many(self, requests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch of requests and return the replies in the same order."""
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        with self._lock:
            sent = []
            for request in requests:
                self._count += 1
                sent.append(self._count)
                proc.stdin.write(json.dumps({**request, "id": self._count}) + "\n")
            proc.stdin.flush()
            replies = []
            for expected in sent:
                line = proc.stdout.readline()
                if not line:
                    raise HarnessError(f"check process died:\n{self._stderr_tail()}")
                reply: dict[str, Any] = json.loads(line)
                if reply.get("id") != expected:
                    raise HarnessError(f"reply {reply.get('id')} out of order, expected {expected}")
                replies.append(reply)
            return replies

    def decode(self, value: bytes, compare: bytes | None = None) -> dict[str, Any]:
        """Java's reading of a record: {ok, dump, reserialized[, equal]} or {ok: False, error}."""
        request: dict[str, Any] = {"op": "decode", "value": _b64(value)}
        if compare is not None:
            request["compare"] = _b64(compare)
        return self.ask(request)

    def _stderr_tail(self) -> str:
        if self._proc.poll() is None or self._proc.stderr is None:
            return ""
        return self._proc.stderr.read()[-4000:]

    def close(self) -> None:
        """End the process (closing its input ends its loop)."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def event_spec(event: Event) -> dict[str, Any]:
    """The harness's description of an event (it builds the upstream object from it)."""
    return {
        "@class": event.class_name,
        "id": event.id,
        "type": event.type,
        "attributes": event.attributes,
    }


def put_spec(agent_key: str, seq: int, action: str, event: Event, value: bytes) -> str:
    """One JSON line for ``store-write`` / ``bench put``."""
    return json.dumps(
        {
            "agentKey": agent_key,
            "seq": seq,
            "action": action,
            "event": event_spec(event),
            "value": _b64(value),
        }
    )
