"""Run folders met again: moved to another place, studied again after the model changed.

Each command runs with `python -m lrsearch` in a new interpreter on the folder an earlier
command wrote, as a user would run them one after another.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from tests.cli.test_fresh_process import lrsearch_cli, stdout_lines
from tests.support import CLI_MODEL

pytestmark = pytest.mark.slow

TINY = ["--trials", "1", "--epochs", "1", "--steps", "30", "--no-sweeps", "--pruner", "none"]
TUNE = ["--bounds", "0.01", "0.1", "--trials", "1", "--epochs", "1", "--pruner", "none", "--families", "one_cycle"]


def _texts(folder: Path) -> str:
    """The run folder's files but the study and its artifacts (earlier versions, kept as they were)."""
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*")
                     if p.is_file() and p.suffix != ".db" and "artifacts" not in p.relative_to(folder).parts)


def test_a_moved_run_folder_names_where_it_is_now(tmp_path):
    first = tmp_path.resolve() / "first"
    lrsearch_cli("auto", CLI_MODEL, "--out", first, *TINY)
    moved = tmp_path.resolve() / "moved"
    first.rename(moved)
    here = f"sqlite:///{moved / 'study.db'}"

    report = lrsearch_cli("report", moved)
    assert stdout_lines(report) == [str(moved / "report.html")]
    assert here in (moved / "report.html").read_text() and str(first) not in (moved / "report.html").read_text()

    export = lrsearch_cli("export", "--from", moved)
    assert stdout_lines(export) == [str(moved / "schedule.json")]
    assert json.loads((moved / "schedule.json").read_text())["provenance"]["storage"] == here

    rerun = lrsearch_cli("auto", CLI_MODEL, "--out", moved, *TINY)
    assert f"next: lrsearch dashboard --out {moved}" in rerun.stderr
    assert "reusing the range test in" in rerun.stderr  # the evidence still knows its model
    assert str(first) not in rerun.stderr + rerun.stdout + _texts(moved)
    study = optuna.load_study(study_name="cli_model", storage=here)  # resumed, not a cli_model-2
    assert len(study.trials) == 2
    assert [s.study_name for s in optuna.get_all_study_summaries(here)] == ["cli_model"]


def test_tune_keeps_the_trials_of_another_model_apart_and_export_takes_the_latest(tmp_path):
    model = tmp_path / "m.py"
    shutil.copy(CLI_MODEL, model)
    out = tmp_path / "run"
    lrsearch_cli("tune", model, "--out", out, "--study", "s", *TUNE)
    text = model.read_text()
    assert 'activation="softmax")' in text
    model.write_text(text.replace('activation="softmax")',
                                  'activation="softmax", kernel_regularizer=keras.regularizers.L2(1e-3))'))
    again = lrsearch_cli("tune", model, "--out", out, "--study", "s", *TUNE)
    assert ("study 's' was made from another model or data (the model file changed; the model (layers, optimizer "
            "or loss) changed): its trials are kept; this run starts study 's-2'") in again.stderr
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1
    assert len(optuna.load_study(study_name="s-2", storage=storage).trials) == 1
    assert json.loads((out / "schedule.json").read_text())["provenance"]["study"] == "s-2"
    # the unchanged model resumes its own study again
    lrsearch_cli("tune", model, "--out", out, "--study", "s", *TUNE)
    assert len(optuna.load_study(study_name="s-2", storage=storage).trials) == 2
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1

    export = lrsearch_cli("export", "--from", out, "-o", tmp_path / "chosen.json")
    assert stdout_lines(export) == [str(tmp_path / "chosen.json")]
    assert (f"exporting study 's-2', the one {out / 'schedule.json'} names (the folder holds s, s-2; "
            "pass --study to pick another)") in export.stderr
    assert json.loads((tmp_path / "chosen.json").read_text())["provenance"]["study"] == "s-2"
