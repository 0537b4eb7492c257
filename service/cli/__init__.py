"""The ``actionstate`` command line (entry point ``actionstate.service.cli:main``).

One module per command (``_kafka``, ``_inspect``, ``_demo``, ``_serve``, ``_resolve``,
``_worker``, ``_send``), registered by ``_app``; ``_options`` holds the flags the fleet's
commands share, and ``_exit`` the one rule that turns a command's errors into a one-line
message and an exit code. Commands print progress and diagnostics on stderr and
their result on stdout. ``python -m actionstate.service.cli`` runs it too.
"""

from actionstate.service.cli._app import build_app, main
from actionstate.service.cli._exit import CommandFailed, ExitCode

__all__ = ["CommandFailed", "ExitCode", "build_app", "main"]
