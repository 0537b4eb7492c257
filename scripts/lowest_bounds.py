"""Fail unless each direct dependency is installed at exactly its declared lower bound.

Run by scripts/test-lowest in .venv-lowest: a bound the resolver could not honour (another
dependency needs more) would otherwise never be tested.
"""

import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version


def untested_bounds(pyproject: Path) -> list[str]:
    """What is wrong with the direct dependencies' lower bounds in this environment."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wrong = []
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(line)
        bounds = [spec.version for spec in req.specifier if spec.operator == ">="]
        if len(bounds) != 1:
            wrong.append(f"{line}: give it one '>=' lower bound")
            continue
        installed = version(req.name)
        if Version(installed) != Version(bounds[0]):
            wrong.append(
                f"{line}: {installed} is installed, not {bounds[0]} (another dependency "
                "needs more); raise the bound to the version installed"
            )
    return wrong


if __name__ == "__main__":
    problems = untested_bounds(Path("pyproject.toml"))
    for problem in problems:
        print(f"lowest_bounds: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
