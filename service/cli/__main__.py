"""``python -m actionstate.service.cli``: the ``actionstate`` command line."""

from actionstate.service.cli import main

main()
