"""The one fit / check split (scripts/split.py) and the ledger of check-half runs.

Every script with halves defaults to the fit half (read from its own argument parser),
no script labels setups itself, every setup is in exactly one half, and a check run
appends exactly one ledger row with the commit, the date and what it printed.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as dt
import importlib
import json
import re
import subprocess

import pytest

from scripts import split
from tests.support import ROOT

SCRIPTS = ROOT / "scripts"
WITH_HALVES = ["bench_budget_suite", "bench_instrument", "bench_schedule_free_rate", "bench_study_space",
               "bench_suggestions"]


class _Parsed(Exception):
    pass


def _parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a script's `main()` builds, caught at `parse_args` (nothing runs)."""
    seen = []

    def parse_args(self, *a, **k):
        seen.append(self)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    mod = importlib.import_module(f"scripts.{module}")
    with pytest.raises(_Parsed):
        mod.main()
    return seen[0]


def test_the_scripts_with_halves_are_those_that_take_the_flag():
    found = sorted(p.stem for p in SCRIPTS.glob("bench_*.py") if "add_half_argument" in p.read_text())
    assert found == WITH_HALVES


@pytest.mark.parametrize("module", WITH_HALVES)
def test_every_script_with_halves_defaults_to_the_fit_half(module, monkeypatch):
    parser = _parser_of(module, monkeypatch)
    action = next(a for a in parser._actions if "--half" in a.option_strings)
    assert action.default == "fit"
    assert tuple(action.choices) == ("fit", "check")


def _sources():
    return [p for p in sorted(SCRIPTS.rglob("*.py")) if p.name != "split.py"]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(SCRIPTS).as_posix())
def test_no_script_defines_its_own_split(path):
    text = path.read_text()
    # no selection by a literal half, no half given to a setup or case
    assert not re.search(r"(?<!args)\.half\s*==\s*['\"]", text)  # args.half: the flag
    assert not re.search(r"half\s*=\s*['\"](fit|check)['\"]", text)
    assert "FIT =" not in text and "CHECK =" not in text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("Setup", "Case", "InstrumentSetup"):
            literals = [a.value for a in node.args if isinstance(a, ast.Constant)]
            assert "fit" not in literals and "check" not in literals


def test_every_setup_is_in_exactly_one_half():
    from scripts.cases import CASES, Case
    from scripts.instrument import SETUPS as NEW
    from scripts.setups import SETUPS, Setup

    assert not split.FIT & split.CHECK
    assert split.SEEN <= split.CHECK
    assert "half" not in {f.name for f in dataclasses.fields(Setup)} | {f.name for f in dataclasses.fields(Case)}
    for item in (*SETUPS, *CASES, *NEW):
        assert item.half == ("fit" if item.name in split.FIT else "check")
    # the old check setups are all seen; the new check setups are not, and there are at least 4
    assert {s.name for s in SETUPS if s.half == "check"} <= split.SEEN
    assert {c.name for c in CASES if c.half == "check"} <= split.SEEN
    new_check = [s.name for s in NEW if s.half == "check"]
    assert len(new_check) >= 4 and not set(new_check) & split.SEEN
    with pytest.raises(KeyError, match="neither half"):
        split.half("no-such-setup")


def test_a_check_run_appends_exactly_one_row_with_commit_date_and_output(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps({"commit": "old"}) + "\n")
    with split.check_run("check", "bench_x", ["--half", "check", "--seeds", "2"], ledger=ledger):
        print("| setup | score |\ntarget: check half: x: met")
    rows = split.read_ledger(ledger)
    assert len(rows) == 2 and rows[0] == {"commit": "old"}
    row = rows[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert row["commit"] == head and isinstance(row["dirty"], bool)
    when = dt.datetime.strptime(row["date"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 300
    assert row["script"] == "bench_x" and row["args"] == ["--half", "check", "--seeds", "2"]
    assert row["printed"] == "| setup | score |\ntarget: check half: x: met\n"
    assert capsys.readouterr().out == row["printed"]  # still printed as well


def test_a_fit_run_or_a_failed_check_run_appends_nothing(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    with split.check_run("fit", "bench_x", [], ledger=ledger):
        print("fit numbers")
    with pytest.raises(RuntimeError), split.check_run("check", "bench_x", [], ledger=ledger):
        print("half a table")
        raise RuntimeError("interrupted")
    assert not ledger.exists()


def test_a_check_run_of_the_instrument_writes_one_row_and_no_tuning(tmp_path, monkeypatch, capsys):
    """`bench_instrument --half check` on an empty cache with --cached-only: nothing trains,
    the final tables print, and one ledger row records them."""
    from scripts import bench_instrument

    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setattr(split, "LEDGER", ledger)
    argv = ["--half", "check", "--cached-only", "--setups", "i-lstm-adam", "--arms", "auto,default,oracle",
            "--seeds", "2", "--budgets", "4", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "t.md")]
    bench_instrument.main(argv)
    rows = split.read_ledger(ledger)
    assert len(rows) == 1 and rows[0]["script"] == "bench_instrument" and rows[0]["args"] == argv
    out = capsys.readouterr().out
    assert rows[0]["printed"] == out and out.startswith("check half: 1 setups")
    assert "What each arm did" not in out and "best peak" not in out


def test_the_committed_ledger_holds_the_numbers_recorded_before_it():
    rows = split.read_ledger()
    before = [r for r in rows if r.get("recorded", "").startswith("before the ledger")]
    scripts = {r["script"] for r in before}
    assert {"bench_suggestions", "bench_study_space", "bench_budget_suite", "bench_schedule_free_rate"} <= scripts
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]) and r["printed"].strip()
        # each recorded commit is one of this repository's
        assert subprocess.run(["git", "cat-file", "-e", r["commit"]], cwd=ROOT).returncode == 0
