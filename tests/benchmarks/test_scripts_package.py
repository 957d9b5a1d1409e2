"""scripts/ as a package: what the runner runs exists, the scripts share modules instead of
importing one another, and the shared helpers print what `scripts.benchmarks` reads.

The slow test starts every benchmark with `--help` (`python -m scripts.<name>`): it
parses its arguments without training, so a name moved inside lrsearch shows up here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from scripts.benchmarks import TARGET_LINE
from scripts.common import code_tag, package_files, target_line
from scripts.sections import BENCHES
from tests.support import ROOT

SCRIPTS = ROOT / "scripts"
BENCHMARKS = sorted(p.stem for p in SCRIPTS.glob("bench_*.py"))
RUNNABLE = ["benchmarks", *BENCHMARKS, "references.check_schedule_free_reference"]


def _imported(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_every_section_runs_a_benchmark_module_that_exists():
    assert {b.module for b in BENCHES} <= set(BENCHMARKS)


@pytest.mark.parametrize("path", sorted(SCRIPTS.rglob("*.py")), ids=lambda p: p.relative_to(SCRIPTS).as_posix())
def test_no_script_edits_sys_path_or_imports_another_benchmark(path):
    assert "sys.path" not in path.read_text()
    others = {f"scripts.{name}" for name in BENCHMARKS} - {f"scripts.{path.stem}"}
    assert not _imported(path) & others


def test_a_target_line_is_what_the_runner_reads():
    m = TARGET_LINE.match(target_line("check half: worst ratio 0.970 >= 0.97", False))
    assert m.groups() == ("check half: worst ratio 0.970 >= 0.97", "MISSED")
    assert TARGET_LINE.match(target_line("ratio 1.0 <= 1.05", True)).group(2) == "met"


def test_code_tags_follow_the_files_they_name():
    files = package_files("rangetest/*.py", "rangetest/steppers/*.py", "no/such/module.py")
    names = [f.relative_to(ROOT / "lrsearch").as_posix() for f in files]
    assert "rangetest/finder.py" in names and "rangetest/steppers/tf_step.py" in names
    assert names == sorted(names)
    assert "rangetest/finder.py" not in [
        f.relative_to(ROOT / "lrsearch").as_posix()
        for f in package_files("rangetest/*.py", skip=("rangetest/finder.py",))]
    assert code_tag("rangetest/*.py") != code_tag("rangetest/*.py", skip=("rangetest/finder.py",))
    assert code_tag("no/such/*.py") == code_tag()  # nothing matched: the hash of no bytes


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNNABLE)
def test_each_benchmark_starts(name):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", f"scripts.{name}", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:")
