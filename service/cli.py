"""The ``actionstate`` command line (entry point ``actionstate.service.cli:main``).

Every command group lives in its own private module, ``actionstate.service._cli_<name>``,
which defines ``register(app: typer.Typer) -> None`` and adds its commands there (a group
with ``app.add_typer(group, name="kafka")``, a single command with
``app.command("serve")(serve)``). Adding a module is one line in ``_COMMAND_MODULES``.
Commands print progress and diagnostics on stderr and their result on stdout, and turn
``ActionStateError`` into a one-line message and exit code 1, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

import typer

__all__ = ["build_app", "main"]

_COMMAND_MODULES: tuple[str, ...] = (
    "actionstate.service._cli_kafka",
    "actionstate.service._cli_inspect",
    "actionstate.service._cli_demo",
    "actionstate.service._cli_serve",
    "actionstate.service._cli_resolve",
)


class _CommandModule(Protocol):
    def register(self, app: typer.Typer) -> None: ...


def build_app() -> typer.Typer:
    """The ``actionstate`` Typer application with every command group registered."""
    app = typer.Typer(
        name="actionstate",
        help="Durable execution for Python workers, journaled in a compacted Kafka topic.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )

    @app.callback()
    def _root() -> None:
        """Durable execution for Python workers, journaled in a compacted Kafka topic."""

    for name in _COMMAND_MODULES:
        cast(_CommandModule, importlib.import_module(name)).register(app)
    return app


def main() -> None:
    """Run the ``actionstate`` command line."""
    build_app()()


if __name__ == "__main__":
    main()
