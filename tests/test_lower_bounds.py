"""Behaviour the declared lower bounds must keep, and the check scripts/test-lowest runs.

scripts/test-lowest runs these (and every other unit test) on the lowest declared version
of each direct dependency; they pass on the newest too.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

from actionstate.client import KafkaStoreSettings
from actionstate.service import SidecarSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("settings_type", [KafkaStoreSettings, SidecarSettings])
def test_an_explicit_bootstrap_argument_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings_type: type[KafkaStoreSettings | SidecarSettings]
) -> None:
    # pydantic-settings < 2.7 took the environment's alias for an extra input here
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    settings = settings_type(bootstrap_servers="127.0.0.1:2", topic="orders")
    assert settings.bootstrap_servers == "127.0.0.1:2"


def _lowest_bounds() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lowest_bounds", ROOT / "scripts/lowest_bounds.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyproject(tmp_path: Path, *deps: str) -> Path:
    path = tmp_path / "pyproject.toml"
    quoted = ", ".join(f'"{d}"' for d in deps)
    path.write_text(
        f"[project]\ndependencies = [{quoted}]\n[project.optional-dependencies]\ndev = []\n"
    )
    return path


def test_bounds_that_are_installed_exactly_pass(tmp_path: Path) -> None:
    installed = version("pytest")
    assert _lowest_bounds().untested_bounds(_pyproject(tmp_path, f"pytest>={installed}")) == []


def test_a_bound_the_resolver_could_not_use_is_reported(tmp_path: Path) -> None:
    problems = _lowest_bounds().untested_bounds(_pyproject(tmp_path, "pytest>=0.1"))
    assert len(problems) == 1
    assert "pytest>=0.1" in problems[0]
    assert "raise the bound" in problems[0]


def test_a_requirement_without_a_lower_bound_is_reported(tmp_path: Path) -> None:
    problems = _lowest_bounds().untested_bounds(_pyproject(tmp_path, "pytest", "orjson<9"))
    assert [p.split(":")[0] for p in problems] == ["pytest", "orjson<9"]
    assert all("give it one '>=' lower bound" in p for p in problems)


def test_every_declared_dependency_has_a_lower_bound() -> None:
    problems = _lowest_bounds().untested_bounds(ROOT / "pyproject.toml")
    assert [p for p in problems if "give it one" in p] == []
