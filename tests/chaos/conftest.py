"""The chaos suite: real brokers and worker processes, killed and restarted under load.

Every test here runs in two sizes: the bounded one ``.ci/run`` runs, and the long one
``scripts/chaos`` runs (``--chaos-long``); ``chaos_long`` tells a test which.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chaos_long(request: pytest.FixtureRequest) -> bool:
    """Whether this is the long run (``--chaos-long``)."""
    return bool(request.config.getoption("--chaos-long"))
