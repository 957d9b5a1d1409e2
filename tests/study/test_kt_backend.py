"""The KerasTuner backend: the same bounded space, the same tables and schedule file."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from tests.support.study_workload import SUGGESTION, build_model, digits

from lrsearch.export.spec import load_schedule
from lrsearch.study.tune import tune


@pytest.mark.backends
@pytest.mark.slow
def test_keras_tuner_runs_the_bounded_space_into_the_same_tables(tmp_path):
    train, val = digits(256, 128)
    kw = dict(validation_data=val, suggestion=SUGGESTION, epochs=2, study_name="kt",
              out_dir=tmp_path, backend="keras-tuner", seed=1)
    # a storage URL has no meaning for KerasTuner: its trials stay in out_dir
    result = tune(build_model, train, trials=2, storage="sqlite:///unused.db", **kw)
    assert not Path("unused.db").exists()
    trials, history = result.trials, result.history
    assert trials["number"].tolist() == [0, 1]
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert (trials["epochs_run"] == 2).all() and (trials["duration_s"] > 0).all()
    assert list(zip(history["trial"], history["epoch"])) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    last = history[history["epoch"] == 2].set_index("trial")["val_loss"]
    pd.testing.assert_series_equal(trials.set_index("number")["value"], last,
                                   check_names=False)
    for _, row in trials.iterrows():
        if row["family"] == "one_cycle":
            # one-cycle's peak is searched up to the loss minimum (space.from_suggestion)
            assert SUGGESTION.base_lr <= row["params_oc_max_lr"] <= SUGGESTION.min_loss_lr
        else:
            assert SUGGESTION.base_lr <= row["params_clr_base_lr"] <= row["params_clr_max_lr"]
            assert row["params_clr_max_lr"] <= SUGGESTION.max_lr
    spec = load_schedule(tmp_path / "schedule.json")
    assert spec.provenance["backend"] == "keras-tuner"
    assert spec.provenance["value"] == pytest.approx(trials["value"].min())
    assert spec.epochs == 2 and spec.steps_per_epoch == 8
    # the schedule at the end of the best trial's epochs is the rate it recorded
    best_rows = history[history["trial"] == spec.provenance["trial"]]
    lr_end = float(spec.build_schedule()(2 * 8))
    assert math.isclose(best_rows["lr"].iloc[-1], lr_end, rel_tol=1e-5)
    assert (tmp_path / "trials.csv").exists() and (tmp_path / "history.csv").exists()

    # the same out_dir and name resumes: one more trial
    more = tune(build_model, train, trials=1, **kw)
    assert more.trials["number"].tolist() == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["wsd", "schedule_free"])
def test_keras_tuner_searches_wsd_and_schedule_free(tmp_path, family):
    from lrsearch.schedules import WarmupStableDecay

    train, val = digits(256, 128)
    result = tune(build_model, train, validation_data=val, suggestion=SUGGESTION, epochs=2, trials=2,
                  study_name="ktf", out_dir=tmp_path, backend="keras-tuner", seed=1,
                  families=(family,))
    trials, history = result.trials, result.history
    assert trials["state"].tolist() == ["COMPLETE"] * 2
    assert trials["family"].tolist() == [family] * 2
    last = history[history["epoch"] == 2].set_index("trial")["val_loss"]
    pd.testing.assert_series_equal(trials.set_index("number")["value"], last, check_names=False)
    for _, row in trials.iterrows():
        rows = history[history["trial"] == row["number"]]
        if row["family"] == "wsd":  # every WSD run ends at its floor, 0
            assert SUGGESTION.base_lr <= row["params_wsd_max_lr"] <= SUGGESTION.max_lr
            assert rows["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-9)
        else:  # a constant rate: past its warmup (<= 10% of 16 steps) the sampled one
            assert rows["lr"].tolist() == pytest.approx([row["params_sf_lr"]] * 2, rel=1e-6)
            assert rows["momentum"].tolist() == pytest.approx([row["params_sf_beta"]] * 2)
    spec = load_schedule(tmp_path / "schedule.json")
    if spec.provenance["family"] == "wsd":
        assert isinstance(spec.schedule, WarmupStableDecay) and spec.optimizer == "SGD"
    else:
        assert spec.optimizer == "ScheduleFreeSGD"
