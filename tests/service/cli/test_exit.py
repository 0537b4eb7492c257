"""The one error -> exit-code rule every command is wrapped in."""

from __future__ import annotations

import pydantic
import pytest
import typer
from typer.testing import CliRunner

from actionstate.client import StoreReadError
from actionstate.serde import ActionStateError
from actionstate.service.cli import CommandFailed, ExitCode
from actionstate.service.cli._exit import exit_rule


class _Settings(pydantic.BaseModel):
    port: int
    host: str


class _Mapped(ActionStateError):
    """An error the command maps to its own exit code."""


def _run(
    error: BaseException,
    *,
    codes: dict[type[ActionStateError], ExitCode] | None = None,
    interrupted: str = "",
) -> tuple[int, str]:
    app = typer.Typer()

    @app.command()
    @exit_rule(codes=codes, interrupted=interrupted)
    def fail() -> None:
        """Raise the error under test."""
        raise error

    result = CliRunner().invoke(app, [])
    return result.exit_code, result.stderr


def _validation_error() -> pydantic.ValidationError:
    try:
        _Settings.model_validate({"port": "x", "host": 1})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (StoreReadError("topic gone"), ExitCode.FAILED, "error: topic gone"),
        (OSError("disk full"), ExitCode.FAILED, "error: disk full"),
        (CommandFailed("no such state", ExitCode.NOT_FOUND), ExitCode.NOT_FOUND, "no such state"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
    ],
)
def test_each_error_has_its_exit_code_and_one_line(
    error: BaseException, code: ExitCode, said: str
) -> None:
    exit_code, stderr = _run(error)
    assert exit_code == code
    assert said in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def test_a_bad_setting_is_a_usage_error_naming_the_first_field() -> None:
    exit_code, stderr = _run(_validation_error())
    assert exit_code == ExitCode.USAGE
    assert stderr.strip().splitlines() == [
        "error: port: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_a_command_failed_without_a_message_only_sets_the_code() -> None:
    assert _run(CommandFailed(code=ExitCode.NOT_RUNNING)) == (ExitCode.NOT_RUNNING, "")


def test_a_command_maps_its_own_errors_and_says_what_an_interrupt_stopped() -> None:
    mapped = _run(_Mapped("later"), codes={_Mapped: ExitCode.NOT_PENDING})
    assert mapped == (ExitCode.NOT_PENDING, "error: later\n")
    code, said = _run(KeyboardInterrupt(), interrupted="stopped the broker")
    assert (code, said) == (ExitCode.INTERRUPTED, "interrupted: stopped the broker\n")
