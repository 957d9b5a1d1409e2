"""`--families` on the command line: every family of the study space, in `auto` and `tune`."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from lrsearch.cli.main import main
from lrsearch.study.results import ATTR
from lrsearch.export.spec import load_schedule
from tests.support import CLI_MODEL

MODEL = CLI_MODEL


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["auto", "tune"])
def test_help_lists_every_family(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "--families LIST" in text
    assert "of one_cycle, cyclic, wsd, schedule_free (default one_cycle,cyclic)" in text


def test_an_unknown_family_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "tune", MODEL, "--bounds", "0.003", "0.3", "--families", "wsd,warmup",
                       "--out", tmp_path / "run")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1
    assert lines[0] == ("lrsearch: error: unknown family 'warmup': use one of one_cycle, cyclic, wsd, "
                        "schedule_free")


@pytest.mark.slow
def test_tune_searches_the_families_it_is_given(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run(capsys, "tune", MODEL, "--bounds", "0.003", "0.3", "--families",
                       "one_cycle,wsd,schedule_free", "--trials", "4", "--epochs", "1", "--pruner", "none",
                       "--seed", "0", "--out", out_dir, "-q")
    assert code == 0
    trials = pd.read_csv(out_dir / "trials.csv")
    assert (trials["state"] == "COMPLETE").all()
    assert trials["family"].iloc[0] == "one_cycle"  # the suggested point
    assert set(trials["family"]) <= {"one_cycle", "wsd", "schedule_free"}
    spec = load_schedule(out_dir / "schedule.json")
    family = spec.provenance["family"]
    optimizer = {"schedule_free": "ScheduleFreeSGD"}.get(family, "SGD")
    assert spec.optimizer == optimizer and spec.epochs == 1


@pytest.mark.slow
def test_auto_runs_a_schedule_free_and_wsd_study(capsys, tmp_path):
    out_dir = tmp_path / "auto"
    code, out, _ = run(capsys, "auto", MODEL, "--families", "schedule_free,wsd", "--trials", "2",
                       "--epochs", "1", "--steps", "40", "--no-sweeps", "--pruner", "none", "--out", out_dir,
                       "-q")
    assert code == 0
    trials = pd.read_csv(out_dir / "trials.csv")
    assert trials["family"].iloc[0] == "schedule_free"  # the first family's suggested point
    spec = load_schedule(out_dir / "schedule.json")
    assert spec.provenance["family"] in ("schedule_free", "wsd")
    # the suggested Schedule-Free trial trains at the range test's max_lr, with 5% warmup
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{out_dir / 'study.db'}")
    max_lr = study.user_attrs[ATTR]["space"]["max_lr"]
    first = trials.iloc[0]
    assert first["params_sf_lr"] == pytest.approx(max_lr)
    assert first["params_sf_warmup_fraction"] == 0.05 and first["params_sf_beta"] == 0.9


SF_MODEL = '''
import keras
from sklearn.datasets import load_digits

import lrsearch


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:320], y[:320]), (x[320:480], y[320:480])


def build_model():
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    optimizer = lrsearch.optimizers.ScheduleFreeAdamW(0.0025, warmup_steps=500, weight_lr_power=1.0)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''


@pytest.mark.slow
def test_auto_on_a_schedule_free_model_searches_its_rate_warmup_and_beta(capsys, tmp_path):
    model = tmp_path / "sf_model.py"
    model.write_text(SF_MODEL)
    out_dir = tmp_path / "auto"
    code, out, err = run(capsys, "auto", model, "--trials", "2", "--epochs", "2", "--steps", "40",
                         "--pruner", "none", "--out", out_dir, "-q")
    assert code == 0, err
    # the range test ran the model's own optimizer (its warmup paused) and the sweeps ran
    meta = (out_dir / "range_test.meta.json").read_text()
    assert '"optimizer": "ScheduleFreeAdamW"' in meta
    assert (out_dir / "sweep_momentum.csv").is_file()
    # the default families (one_cycle, cyclic) gave way to schedule_free: no cycled beta
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{out_dir / 'study.db'}")
    space = study.user_attrs[ATTR]["space"]
    assert space["families"] == ["schedule_free"] and space["momentum"] is False
    assert space["momentum_candidates"] is None
    trials = pd.read_csv(out_dir / "trials.csv")
    assert trials["family"].tolist() == ["schedule_free", "schedule_free"]
    assert (trials["state"] == "COMPLETE").all()
    first = trials.iloc[0]
    assert first["params_sf_lr"] == pytest.approx(space["max_lr"])
    assert (first["params_sf_warmup_fraction"], first["params_sf_beta"]) == (0.05, 0.9)
    # the exported schedule is the user's optimizer with the trial's values, and loads back
    spec = load_schedule(out_dir / "schedule.json")
    optimizer = spec.build_optimizer()
    best = trials.loc[trials["value"].idxmin()]
    assert type(optimizer).__name__ == "ScheduleFreeAdamW" and spec.epochs == 2
    assert float(optimizer.learning_rate) == pytest.approx(best["params_sf_lr"])
    assert optimizer.weight_lr_power == 1.0  # kept from the model file
    assert optimizer.warmup_steps == round(best["params_sf_warmup_fraction"] * 2 * 10)  # 320 / 32 per epoch
    assert optimizer.beta_1 == best["params_sf_beta"]
