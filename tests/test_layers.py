"""The one statement of lrsearch's layers: its subpackages in pipeline order, imports
pointing one way.

A module of a package may import modules of packages before its own in `PACKAGES` and
modules of its own package, never one of a later package (no upward or sideways
import), and the modules inside a package import each other without a cycle. Imports
inside functions count; imports under `if TYPE_CHECKING:` do not (they never run).
Checked from the source, so modules that are expensive to import are covered too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests.support import ROOT

PACKAGE = ROOT / "lrsearch"

# bottom first; each may import only from those before it (and from itself)
PACKAGES = ("core", "viz", "schedules", "optimizers", "data", "export", "rangetest", "study", "run", "cli")
# the facade and `python -m lrsearch` sit above every package
TOP = {"lrsearch", "lrsearch.__main__"}
# modules that must stay importable without these (pure arithmetic and the bottom layer)
HEAVY = {"keras", "tensorflow", "optuna", "keras_tuner", "matplotlib", "jax", "torch"}
LIGHT = {"lrsearch.core", "lrsearch.schedules.formulas", "lrsearch.rangetest.analysis", "lrsearch.study.budget"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _runtime_imports(path: Path) -> set[str]:
    """Every module an import statement names, `TYPE_CHECKING` blocks left out; for
    `from a import b` also `a.b` when that is a module."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
            names |= modules
            if len(modules) < len(node.names):  # some names are attributes of node.module itself
                names.add(node.module)
    return names


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else None


def test_every_module_belongs_to_a_package():
    strays = [m for m in MODULES if m not in TOP and _package(m) is None]
    assert not strays, f"modules outside the packages {PACKAGES}: {strays}; move them or name their package"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    own = _package(module)
    if own is None:
        return  # the facade may import anything
    rank = PACKAGES.index(own)
    for name in _runtime_imports(MODULES[module]):
        if not name.startswith("lrsearch"):
            continue
        target = _package(name)
        assert name not in TOP, f"{module} imports the facade {name}; import the module that defines the name"
        assert target is not None and PACKAGES.index(target) <= rank, (
            f"{module} (package {own}) imports {name} (package {target}), which comes later in {PACKAGES}"
        )


@pytest.mark.parametrize("package", PACKAGES)
def test_no_cycle_inside_a_package(package):
    prefix = f"lrsearch.{package}"
    inside = {m for m in MODULES if m == prefix or m.startswith(prefix + ".")}
    packages = {m for m in inside if MODULES[m].name == "__init__.py"}
    graph = {m: {n for n in _runtime_imports(MODULES[m]) if n in inside and n not in packages and n != m}
             for m in inside - packages}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail(f"import cycle inside {prefix}: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(m == p or m.startswith(p + ".") for p in LIGHT)))
def test_light_modules_import_nothing_heavy(module):
    heavy = {n for n in _runtime_imports(MODULES[module]) if n.split(".")[0] in HEAVY}
    assert not heavy, f"{module} must stay importable without {sorted(heavy)}"


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lrsearch"):
                crossing += [f"{module} <- {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing, f"private names imported from another module: {crossing}"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule bites: a `core` module importing from `study` is reported."""
    fake = tmp_path / "bad.py"
    fake.write_text("def f():\n    from lrsearch.study.tune import tune\n")
    monkeypatch.setitem(MODULES, "lrsearch.core.bad", fake)
    with pytest.raises(AssertionError, match="comes later"):
        test_imports_point_down("lrsearch.core.bad")
