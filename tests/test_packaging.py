"""The built wheel holds every module and data file of serde/, client/ and service/.

The editable install links the source folders file by file, so a subpackage missing from
pyproject's ``[tool.setuptools] packages`` (or a data file missing from its
``package-data``) still imports in every other test; only a real wheel shows the gap.
Needs no broker and no package index.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# setuptools' own PEP 517 backend, as `pip wheel --no-build-isolation` would call it: no
# package index, and no pip either (scripts/test-lowest's venv has none). setuptools is in
# the dev extra for this.
_BUILD = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_dirs() -> dict[str, str]:
    """Import package -> source folder, from pyproject's ``package-dir``."""
    package_dir: dict[str, str] = _pyproject()["tool"]["setuptools"]["package-dir"]
    return package_dir


def _source_files() -> dict[str, str]:
    """Each file the wheel must hold (its path in the wheel) -> its path in the source."""
    expected = {}
    for package, folder in _package_dirs().items():
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            inside = path.relative_to(ROOT / folder).as_posix()
            expected[f"{package.replace('.', '/')}/{inside}"] = path.relative_to(ROOT).as_posix()
    return expected


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The file names inside a wheel freshly built from a copy of the source."""
    # A copy, not the working tree: setuptools reuses an existing build/lib, so a module an
    # earlier build left there would hide one the packages list no longer names (and the
    # build would litter the tree with build/ and *.egg-info).
    src = tmp_path_factory.mktemp("src")
    readme = _pyproject()["project"]["readme"]
    assert isinstance(readme, str), "copy the readme table's file too"
    for name in ("pyproject.toml", readme):
        shutil.copy2(ROOT / name, src / name)
    for folder in _package_dirs().values():
        shutil.copytree(
            ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-c", _BUILD, str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, f"building the wheel failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_module_and_data_file(wheel_files: set[str]) -> None:
    expected = _source_files()
    missing = sorted(set(expected) - wheel_files)
    # A missing module means its package is not in the packages list (setuptools takes every
    # module of a listed package); a missing data file means a package-data pattern is.
    packages = sorted(
        {
            str(PurePosixPath(name).parent).replace("/", ".")
            for name in missing
            if name.endswith(".py")
        }
    )
    data = [expected[name] for name in missing if not name.endswith(".py")]
    advice = []
    if packages:
        advice.append(f"add {', '.join(packages)} to [tool.setuptools] packages")
    if data:
        advice.append(f"add a pattern for {', '.join(data)} to [tool.setuptools.package-data]")
    assert not missing, (
        f"not in the wheel: {', '.join(expected[name] for name in missing)}; "
        f"{' and '.join(advice)} in pyproject.toml"
    )


def test_the_wheel_holds_nothing_else(wheel_files: set[str]) -> None:
    # Only our source files and the wheel's own metadata: no stale module, no tests.
    ours = set(_source_files())
    extra = sorted(
        name
        for name in wheel_files
        if name not in ours and not name.split("/", 1)[0].endswith(".dist-info")
    )
    assert extra == [], f"in the wheel but not in serde/, client/ or service/: {extra}"
