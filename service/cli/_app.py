"""The ``actionstate`` Typer application: the root and its commands.

Every command group lives in its own module beside this one and defines
``register(app: typer.Typer) -> None``, adding its commands there (a group with
``app.add_typer(group, name="kafka")``, a single command with ``app.command("serve")``).
Adding a command is one import and one entry in ``_REGISTERS``.
"""

from __future__ import annotations

import typer

from actionstate.service.cli import _demo, _inspect, _kafka, _resolve, _send, _serve, _worker

__all__ = ["build_app", "main"]

_REGISTERS = (
    _kafka.register,
    _inspect.register,
    _demo.register,
    _serve.register,
    _resolve.register,
    _send.register,
    _worker.register,
)


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

    for register in _REGISTERS:
        register(app)
    return app


def main() -> None:
    """Run the ``actionstate`` command line."""
    build_app()()
