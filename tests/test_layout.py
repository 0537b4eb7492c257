"""The layout rules of issue 9, read from the source with ast (nothing here imports it).

client/kafka/ is the one Kafka seam; client's private modules stay private to client/;
serde is the pure bottom layer; each package's ``__all__`` is sorted and each public object
has one import path. tests/ are out of scope: tests/client/ are white-box tests of client
internals.
"""

from __future__ import annotations

import ast
import functools
import itertools
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
SEAM = "actionstate.client.kafka"
KAFKA_CLIENTS = frozenset({"Consumer", "Producer", "AdminClient"})


@dataclass(frozen=True)
class Module:
    """One source file: where it is, its dotted name, and its syntax tree."""

    path: str
    name: str
    is_package: bool
    tree: ast.Module

    def within(self, package: str) -> bool:
        return self.name == package or self.name.startswith(f"{package}.")


@functools.cache
def _modules() -> tuple[Module, ...]:
    """Every module of the three packages (named per pyproject's package-dir) and bench/."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = {**pyproject["tool"]["setuptools"]["package-dir"], "bench": "bench"}
    found = []
    for package, folder in roots.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = PurePosixPath(path.relative_to(ROOT / folder).as_posix()).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join([package, *parts[:-1]] if is_package else [package, *parts])
            source = path.read_text()
            found.append(
                Module(path.relative_to(ROOT).as_posix(), name, is_package, ast.parse(source))
            )
    return tuple(found)


def _in(package: str) -> list[Module]:
    return [module for module in _modules() if module.within(package)]


def _imports(module: Module) -> Iterator[tuple[int, str, str | None]]:
    """(line, imported module, name imported from it or None) for each import, anywhere in
    the file; relative imports resolved against the module's own package."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.name.split(".")
                if not module.is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                yield node.lineno, base, alias.name


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _kafka_client_calls(module: Module) -> Iterator[str]:
    """``path:line Name(`` for each Consumer/Producer/AdminClient of confluent_kafka built."""
    bound: dict[str, str] = {}  # local name -> what it refers to, from the module's imports
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func)
        if called is None:
            continue
        head, _, rest = called.partition(".")
        target = bound.get(head, head) + (f".{rest}" if rest else "")
        if target.startswith("confluent_kafka.") and target.rsplit(".", 1)[1] in KAFKA_CLIENTS:
            yield f"{module.path}:{node.lineno} {called}("


def test_kafka_clients_are_built_only_in_the_seam() -> None:
    outside = [m for m in _modules() if not m.within(SEAM) and not m.within("bench")]
    calls = [call for module in outside for call in _kafka_client_calls(module)]
    assert calls == [], f"build Kafka clients through {SEAM} (its reader/writer/admin): {calls}"


def test_only_the_seam_imports_confluent_kafka() -> None:
    # One KafkaError -> exception mapping and one set of fatal errors: nothing else needs
    # confluent_kafka's types either.
    outside = [m for m in _modules() if not m.within(SEAM) and not m.within("bench")]
    found = [
        f"{m.path}:{line} {base}"
        for m in outside
        for line, base, _ in _imports(m)
        if base.split(".")[0] == "confluent_kafka"
    ]
    assert found == [], f"confluent_kafka is imported outside {SEAM}: {found}"


def test_client_private_modules_are_imported_only_inside_client() -> None:
    found = []
    for module in _modules():
        if module.within("actionstate.client"):
            continue
        for line, base, name in _imports(module):
            dotted = base if name is None or name == "*" else f"{base}.{name}"
            parts = dotted.split(".")
            if parts[:2] == ["actionstate", "client"] and any(p.startswith("_") for p in parts[2:]):
                found.append(f"{module.path}:{line} {dotted}")
    assert found == [], f"use actionstate.client's (or client.kafka's) public names: {found}"


def test_serde_imports_no_transport_and_no_upper_layer() -> None:
    banned = ("confluent_kafka", "httpx", "fastapi", "starlette", "uvicorn")
    upper = ("actionstate.client", "actionstate.service")
    found = [
        f"{m.path}:{line} {base}"
        for m in _in("actionstate.serde")
        for line, base, _ in _imports(m)
        if base.split(".")[0] in banned or any(base == u or base.startswith(f"{u}.") for u in upper)
    ]
    assert found == [], f"serde is pure: no Kafka, HTTP or client/service imports: {found}"


def _all_of(module: Module) -> list[str] | None:
    """The module's ``__all__`` (None: it has none), from its top-level ``=`` and ``+=``."""
    exported: list[str] | None = None
    for node in module.tree.body:
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = ast.literal_eval(node.value)
                assert isinstance(value, list | tuple), f"{module.path}: __all__ is not literal"
                names = [str(name) for name in value]
                exported = [*(exported or []), *names] if isinstance(node, ast.AugAssign) else names
    return exported


def _packages() -> list[Module]:
    return [m for m in _modules() if m.is_package and not m.within("bench")]


def test_every_package_all_is_sorted() -> None:
    # isort-style order (constants, classes, functions), as ruff's RUF022 keeps it
    def style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    unsorted = {}
    for package in _packages():
        exported = _all_of(package)
        if exported is None or exported != sorted(exported, key=style):
            unsorted[package.path] = exported
    assert unsorted == {}, f"give each package a sorted __all__ (ruff's RUF022): {unsorted}"


def _lifted(parent: Module, name: str, child: str) -> bool:
    """Whether package ``parent`` imports ``name`` from its subpackage ``child``."""
    return any(
        imported == name and (base == child or base.startswith(f"{child}."))
        for _, base, imported in _imports(parent)
    )


def test_no_name_is_exported_by_two_packages() -> None:
    # One import path per public object. The one exception is a package that lifts a name
    # from one of its own subpackages (actionstate.service.SidecarServer from its sidecar
    # subpackage): the subpackage is where the object lives, the parent its short path.
    packages = {p.name: p for p in _packages()}
    exports = {name: set(_all_of(p) or ()) for name, p in packages.items()}
    clashes = [
        f"{name}: {first} and {second}"
        for first, second in itertools.combinations(sorted(exports), 2)
        for name in sorted(exports[first] & exports[second])
        if not (second.startswith(f"{first}.") and _lifted(packages[first], name, second))
    ]
    assert clashes == [], f"export each name from one package only: {clashes}"


def test_service_top_level_holds_only_shared_modules() -> None:
    # Each concern is a subpackage (sidecar, inspect, local_kafka, demo, cli); the top level
    # keeps only what several of them share.
    (root,) = (m for m in _modules() if m.name == "actionstate.service")
    folder = PurePosixPath(root.path).parent
    top = {PurePosixPath(m.path).name for m in _modules() if PurePosixPath(m.path).parent == folder}
    extra = sorted(top - {"__init__.py", "_errors.py", "_process.py"})
    assert extra == [], f"move these into a service subpackage: {extra}"


def test_every_package_has_an_exports_test() -> None:
    # tests/ mirror the packages; each package's __all__ is pinned by its own exports test.
    missing = []
    for package in _packages():
        folder = PurePosixPath(package.path).parent
        mirror = ROOT / "tests" / folder / "test_exports.py"
        if not mirror.is_file():
            missing.append(mirror.relative_to(ROOT).as_posix())
    assert missing == [], f"write an exports test for each package: {missing}"
