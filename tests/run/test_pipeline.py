"""lrsearch.auto end to end on a tiny model: every file, the bounds handed on, resume."""

from __future__ import annotations

import json

import keras
import numpy as np
import optuna
import pandas as pd
import pytest

import lrsearch
from lrsearch.core.errors import ConfigError, DataError
from lrsearch.run.auto import AutoResult, auto
from tests.support import CLI_MODEL

MODEL = CLI_MODEL
SMALL = dict(epochs=1, trials=2, range_steps=40, min_lr=1e-4, max_lr=10.0, pruner=None, verbose=0,
             momentum_values=(0.9, 0.8), weight_decay_values=(0.0, 1e-3))


@pytest.mark.slow
def test_auto_writes_every_file_and_resumes(tmp_path):
    out = tmp_path / "run"
    result = auto(str(MODEL), out_dir=out, study_name="tiny", **SMALL)
    assert isinstance(result, AutoResult) and result.out_dir == out
    expected = {"range_test.csv", "range_test.png", "sweep_momentum.csv", "sweep_momentum.png",
                "sweep_weight_decay.csv", "sweep_weight_decay.png", "trials.csv", "history.csv", "study.db",
                "schedule.json", "report.html"}
    assert set(result.paths) == expected and all(p.exists() for p in result.paths.values())

    # the study searched inside the range test's bounds and the sweeps' candidates
    s = result.suggestion
    provenance = json.loads((out / "schedule.json").read_text())["provenance"]
    assert provenance["study"] == "tiny" and provenance["bounds"] == {"base_lr": s.base_lr, "max_lr": s.max_lr}
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2
    for col in ("params_oc_max_lr", "params_clr_base_lr", "params_clr_max_lr"):
        if col in trials:
            values = trials[col].dropna()
            assert ((values >= s.base_lr * (1 - 1e-9)) & (values <= s.max_lr * (1 + 1e-9))).all()
    assert set(result.sweeps) == {"momentum", "weight_decay"}
    history = pd.read_csv(out / "history.csv")
    assert sorted(history["trial"].unique()) == [0, 1] and (history["epoch"] == 1).all()
    page = (out / "report.html").read_text()
    best = result.tune.study.best_trial
    assert f"<th>best trial</th><td>{best.number}</td>" in page

    # a second run reuses the range test and sweeps, and adds trials to the same study
    stamp = (out / "range_test.csv").stat().st_mtime_ns
    first = [t.params for t in result.tune.study.trials]
    again = auto(str(MODEL), out_dir=out, study_name="tiny", **SMALL)
    assert (out / "range_test.csv").stat().st_mtime_ns == stamp
    assert again.suggestion == result.suggestion
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    assert [t.params for t in study.trials[:2]] == first


@pytest.mark.backends
@pytest.mark.slow
def test_auto_fine_tunes_a_model_object(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")], name="pre")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x[:200], y[:200], epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    result = auto(model, ((x[:300], y[:300]), (x[300:400], y[300:400])), out_dir=tmp_path, sweeps=False,
                  report=False, families=("one_cycle",), **{k: v for k, v in SMALL.items() if "values" not in k})
    assert result.out_dir == tmp_path and result.tune.study.study_name == "pre"
    assert result.schedule.to_dict()["schedule"]["class_name"] == "OneCycle"
    for a, b in zip(before, model.get_weights()):  # the user's model itself is untouched
        np.testing.assert_array_equal(a, b)


@pytest.mark.backends
def test_auto_refuses_bad_options_before_training(tmp_path):
    with pytest.raises(ConfigError, match="Argument `min_lr` must be below max_lr"):
        auto(str(MODEL), out_dir=tmp_path, min_lr=1.0, max_lr=0.1)
    with pytest.raises(ConfigError, match="Argument `trials` must be an integer >= 1"):
        auto(str(MODEL), out_dir=tmp_path, trials=0)
    with pytest.raises(lrsearch.StorageError, match="unknown storage kind"):
        auto(str(MODEL), out_dir=tmp_path, storage="mongodb://x")
    with pytest.raises(DataError, match=r"pass data=\(train, validation\)"):
        auto(lambda: None)
    assert not (tmp_path / "range_test.csv").exists()


@pytest.mark.slow
def test_auto_with_keras_tuner_writes_the_report_from_the_tables(tmp_path):
    """The KerasTuner backend's study is a tuner, not an Optuna study: the report is
    written from the run folder's tables."""
    out = tmp_path / "kt"
    result = auto(str(MODEL), out_dir=out, study_name="kt", backend="keras-tuner", sweeps=False,
                  epochs=1, trials=1, range_steps=40, min_lr=1e-4, max_lr=10.0, verbose=0)
    assert "report.html" in result.paths and "study.db" not in result.paths
    page = (out / "report.html").read_text()
    assert "<h1>kt</h1>" in page and "No study found for this run." in page
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0] and trials["state"][0] == "COMPLETE"
