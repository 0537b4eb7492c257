"""The public names of actionstate.service.cli."""

from __future__ import annotations

import actionstate.service.cli as cli
from tests._support import check_exports

PUBLIC = {"CommandFailed", "ExitCode", "build_app", "main"}


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(cli, PUBLIC)


def test_the_exit_codes_are_the_documented_ones() -> None:
    # Scripts test these numbers; they never change.
    codes = {name: int(code) for name, code in cli.ExitCode.__members__.items()}
    assert codes == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "NOT_FOUND": 3,
        "NOT_RUNNING": 3,
        "NOT_PENDING": 4,
        "TIMEOUT": 5,
        "INTERRUPTED": 130,
    }


def test_command_failed_keeps_its_code_through_pickling() -> None:
    import pickle

    failed = pickle.loads(pickle.dumps(cli.CommandFailed("gone", cli.ExitCode.NOT_FOUND)))
    assert (failed.message, failed.code) == ("gone", cli.ExitCode.NOT_FOUND)
