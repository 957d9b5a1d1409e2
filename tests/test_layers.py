"""Imports point one way: math at the bottom, Keras pieces, studies, CLI on top.

Checked statically from each module's import statements, so the test also covers
modules that are expensive to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lrsearch"

# layer of each module; a module may import lrsearch modules of its own layer or below.
LAYERS = {
    "__init__": 9,
    "errors": 0,
    "fileio": 0,
    "defaults": 0,
    "analysis": 0,
    "display": 0,
    "progress": 0,
    "formulas": 0,
    "budget": 0,
    "schedule_base": 1,
    "schedules": 1,
    "decay_schedules": 1,
    "optimizers": 1,
    "schedule_free": 1,
    "prodigy": 1,
    "data": 1,
    "batches": 1,
    "datafiles": 1,
    "evidence": 1,
    "rangestep": 2,
    "rangestep_jax": 2,
    "rangestep_torch": 2,
    "finder": 2,
    "sweeps": 2,
    "plots": 2,
    "spec": 2,
    "space": 3,
    "study": 3,
    "options": 3,
    "preflight": 3,
    "trial": 3,
    "results": 3,
    "quick": 3,
    "optuna_backend": 3,
    "halving": 3,
    "reuse": 3,
    "final_fit": 3,
    "budgeted": 4,
    "widening": 3,
    "storage": 3,
    "artifacts": 3,
    "kt_backend": 3,
    "modelfile": 4,
    "report": 4,
    "pipeline": 4,
    "summary": 4,
    "cli": 5,
    "commands": 5,
    "__main__": 5,
}
# modules in the bottom layer must stay importable without these
HEAVY = {"keras", "tensorflow", "optuna", "keras_tuner", "matplotlib"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(rel.parts), path


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "lrsearch":
                names.update(f"lrsearch.{a.name}" for a in node.names)
    return names


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top not in LAYERS:
        pytest.fail(f"module lrsearch.{module} has no layer: add it to LAYERS in {__file__}")
    return LAYERS[top]


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v))
def test_imports_point_down(module, path):
    own = _layer(module)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "lrsearch" and len(parts) > 1 and parts[1] in LAYERS:
            assert LAYERS[parts[1]] <= own, f"lrsearch.{module} (layer {own}) imports {name}"
        if own == 0:
            assert parts[0] not in HEAVY, f"lrsearch.{module} is pure math but imports {name}"
