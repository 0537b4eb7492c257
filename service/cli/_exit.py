"""The one rule that turns a command's errors into a message and an exit code.

Every command is wrapped by ``@exit_rule()``: commands raise, they never pick an exit
code with ``typer.Exit`` themselves. What a command cannot do prints one line on stderr,
never a traceback:

- ``CommandFailed(message, code)``: the message (if any), then ``code``;
- an exception type the command maps with ``codes=``: its message, then the mapped code;
- ``ActionStateError`` or ``OSError``: its message, then ``ExitCode.FAILED`` (1);
- a pydantic ``ValidationError`` (bad settings from options or the environment): its first
  error, then ``ExitCode.USAGE`` (2, what click exits with for a bad parameter); so does a
  ``KafkaConfigError`` (librdkafka refused a property);
- ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM where a command turns it into one):
  ``ExitCode.INTERRUPTED`` (130, as shells report a SIGINT).

``typer.BadParameter`` and the other click usage errors are left to click (exit code 2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import ParamSpec

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from actionstate.client import KafkaConfigError
from actionstate.serde import ActionStateError
from actionstate.service._errors import ServiceError

__all__ = ["CommandFailed", "ExitCode", "exit_rule"]

P = ParamSpec("P")


class ExitCode(IntEnum):
    """The exit codes of the ``actionstate`` commands."""

    OK = 0
    FAILED = 1
    # click's code for a bad parameter; bad settings use it too
    USAGE = 2
    # ``resolve``: the topic holds no live state under the state key (or no such topic)
    NOT_FOUND = 3
    # ``kafka status``: no broker runs (LSB's "program is not running"); same value
    NOT_RUNNING = 3
    # ``resolve``: the state has no such call, or its outcome is already journaled
    NOT_PENDING = 4
    # ``send --wait``: a request has no completed state within ``--timeout``
    TIMEOUT = 5
    # after Ctrl-C or SIGTERM: 128 + SIGINT, as shells report it
    INTERRUPTED = 130


class CommandFailed(ServiceError):
    """A command ends with ``code``; ``message``, when not empty, is printed as the error.

    An empty message is for a command that already printed its answer (``kafka status``
    saying no broker runs, the demo's verdict) and only the exit code is left to give.
    """

    def __init__(self, message: str = "", code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.code))


# Created once; rich resolves ``sys.stderr`` at each print, so a test runner's capture works.
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str, code: ExitCode) -> typer.Exit:
    if message:
        _err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(int(code))


def _first_error(exc: ValidationError) -> str:
    """The first error of a settings validation, as ``field: message``."""
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def exit_rule(
    *, codes: Mapping[type[ActionStateError], ExitCode] | None = None, interrupted: str = ""
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Wrap a command in the error -> exit-code rule (module docstring).

    ``codes`` maps the command's own error types to their exit codes (checked first, in
    order); ``interrupted`` is said after "interrupted:" when Ctrl-C stops the command.
    """
    mapped = tuple((codes or {}).items())

    def wrap(command: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                command(*args, **kwargs)
            except CommandFailed as exc:
                raise _error(exc.message, exc.code) from None
            except KeyboardInterrupt:
                said = f": {escape(interrupted)}" if interrupted else ""
                _err.print(f"[bold yellow]interrupted[/]{said}")
                raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
            except ValidationError as exc:
                raise _error(_first_error(exc), ExitCode.USAGE) from None
            except KafkaConfigError as exc:
                raise _error(str(exc), ExitCode.USAGE) from None
            except (ActionStateError, OSError) as exc:
                code = next((c for t, c in mapped if isinstance(exc, t)), ExitCode.FAILED)
                raise _error(str(exc), code) from None

        return run

    return wrap
