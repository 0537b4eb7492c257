"""The processes ``actionstate demo`` starts: launched in their own session, stopped by pid.

Each child gets its own session so a Ctrl-C in the terminal reaches only the demo, which
then stops its children in order (workers, sidecar, broker) instead of racing them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from actionstate.service._errors import ServiceError

__all__ = ["Child", "StartedProcess", "log_tail", "poll_until", "python_module"]

T = TypeVar("T")


@dataclass(frozen=True)
class StartedProcess:
    """A process the demo started: its role ("broker", "sidecar", "worker") and pid."""

    role: str
    pid: int


def python_module(module: str, *args: str) -> list[str]:
    """The command running ``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file ("" when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """One child process: stderr (and stdout unless piped) go to ``log``."""

    def __init__(
        self,
        role: str,
        command: Sequence[str],
        log: Path,
        *,
        pipe_stdout: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.role = role
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe_stdout else sink,
                stderr=sink,
                start_new_session=True,
                close_fds=True,
                env=None if env is None else dict(env),
            )

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.proc.pid

    @property
    def stdout(self) -> IO[bytes] | None:
        """The child's stdout when it was piped."""
        return self.proc.stdout

    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.proc.poll() is None

    def failure(self, what: str) -> ServiceError:
        """An error saying the child exited while ``what``, with its log's last lines."""
        tail = log_tail(self.log)
        shown = f"\n--- last lines of {self.log} ---\n{tail}" if tail else ""
        return ServiceError(
            f"the {self.role} (pid {self.pid}) exited with code {self.proc.returncode} "
            f"while {what}{shown}"
        )

    def kill(self) -> int:
        """SIGKILL the child and reap it; returns its exit status (-9 when killed)."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps the child."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def poll_until(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    child: Child | None = None,
    interval: float = 0.1,
) -> T:
    """Call ``check`` until it returns something other than None, and return that.

    Raises ServiceError when ``child`` exits first or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if child is not None and not child.running():
            raise child.failure(what)
        if time.monotonic() >= deadline:
            raise ServiceError(f"timed out after {timeout:.0f}s {what}")
        time.sleep(interval)
