"""Widening a study's rate ranges when its best trials sit at an edge."""

from __future__ import annotations

import math

import keras
import numpy as np
import optuna
import pytest

from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.study.sampling import OptunaSampler
from lrsearch.study.space import SearchSpace
from lrsearch.study.tune import tune
from lrsearch.study.widening import STEP, RangeAwareTPESampler, edge_widening

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(**kw):
    kw = {"base_lr": 1e-3, "max_lr": 1e-2, "peak_max_lr": 1e-2, "limit_lr": 0.1,
          "floor_lr": 1e-4, "steps_per_epoch": 10, "epochs": 2, **kw}
    return SearchSpace(**kw)


def test_a_best_peak_at_the_top_widens_the_top_by_half_a_decade():
    space = _space()
    new, events = edge_widening(space, [{"family": "one_cycle", "oc_max_lr": 0.0095}])
    assert new.peak_max_lr == pytest.approx(1e-2 * STEP)
    assert (new.base_lr, new.max_lr) == (1e-3, 1e-2)  # CLR's ranges stay
    assert [(e["param"], e["side"]) for e in events] == [("oc_max_lr", "top")]
    assert events[0]["old"] == [1e-3, 1e-2]
    assert events[0]["new"] == pytest.approx([1e-3, 1e-2 * STEP])
    assert events[0]["changed"] == ["oc_max_lr"]


def test_a_schedule_free_rate_at_the_top_widens_its_peak_range():
    space = _space(peak_max_lr=2e-2, families=("schedule_free",))
    new, events = edge_widening(space, [{"family": "schedule_free", "sf_lr": 0.019}])
    assert new.peak_max_lr == pytest.approx(2e-2 * STEP) and new.max_lr == 1e-2
    assert events[0]["old"] == [1e-3, 2e-2] and events[0]["changed"] == ["sf_lr"]


def test_inside_the_range_nothing_moves_and_the_limits_cap_it():
    space = _space()
    # 10% of one decade in log scale: 10**-0.1 * 1e-2 = 0.00794 is the edge of the top
    assert edge_widening(space, [{"family": "one_cycle", "oc_max_lr": 0.0075}]) == (space, [])
    assert edge_widening(space, [{"family": "one_cycle", "oc_max_lr": 0.0081}])[1]
    near_cap = _space(limit_lr=0.012)
    new, _ = edge_widening(near_cap, [{"family": "one_cycle", "oc_max_lr": 0.01}])
    assert new.peak_max_lr == 0.012
    at_cap = _space(limit_lr=0.01)
    assert edge_widening(at_cap, [{"family": "one_cycle", "oc_max_lr": 0.01}])[1] == []
    by_hand = _space(limit_lr=None, floor_lr=None)  # bounds given by hand: a wall
    assert edge_widening(by_hand, [{"family": "one_cycle", "oc_max_lr": 0.01}])[1] == []


def test_clr_bounds_at_the_edges_widen_both_sides():
    space = _space(peak_max_lr=None)
    point = {"family": "cyclic", "clr_base_lr": 1.1e-3, "clr_max_lr": 9.5e-3}
    new, events = edge_widening(space, [point])
    assert new.base_lr == pytest.approx(1e-3 / STEP) and new.max_lr == pytest.approx(1e-2 * STEP)
    assert {(e["param"], e["side"]) for e in events} == {("clr_base_lr", "bottom"),
                                                         ("clr_max_lr", "top")}
    assert set(events[0]["changed"]) == {"oc_max_lr", "clr_base_lr", "clr_max_lr"}


def test_from_suggestion_sets_the_limits_from_the_curve():
    s = LRSuggestion(base_lr=1e-3, max_lr=1e-2, steepest_lr=3e-3, valley_lr=3e-3,
                     min_loss_lr=0.03)
    space = SearchSpace.from_suggestion(s, steps_per_epoch=10, epochs=2)
    assert space.peak_max_lr == 0.03
    assert space.limit_lr == pytest.approx(0.3) and space.floor_lr == pytest.approx(1e-4)
    assert SearchSpace.from_dict(space.to_dict()) == space


def _peak_study(sampler, widen_after: int, trials: int = 30):
    """Optimum at a peak of 0.05, above the first range [1e-3, 1e-2]; the range is
    widened to [1e-3, 0.1] after `widen_after` trials, as the study's callback records it."""
    narrow = _space(families=("one_cycle",), momentum=False)
    wide = _space(families=("one_cycle",), momentum=False, peak_max_lr=0.1)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    study.set_user_attr("lrsearch", {})
    for n in range(trials):
        if n == widen_after:
            study.set_user_attr("lrsearch", {"widened": [{"changed": ["oc_max_lr"]}]})
        trial = study.ask()
        p = (narrow if n < widen_after else wide).sample(OptunaSampler(trial))
        study.tell(trial, (math.log10(p["oc_max_lr"]) - math.log10(0.05)) ** 2
                   + 0.01 * p["oc_pct_start"])
    return [t.params["oc_max_lr"] for t in study.trials[widen_after:]]


def test_multivariate_group_tpe_keeps_the_old_range_the_range_aware_one_leaves_it():
    kw = dict(seed=0, multivariate=True, group=True, n_startup_trials=5)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        plain = _peak_study(optuna.samplers.TPESampler(**kw), widen_after=10)
        aware = _peak_study(RangeAwareTPESampler(**kw), widen_after=10)
    # Optuna's group decomposition keeps the first trial's distribution: never past 0.01
    assert max(plain) <= 1e-2
    # sampled independently over the new range, TPE moves to the optimum above the edge
    assert sum(p > 1e-2 for p in aware) >= 10
    assert min(abs(math.log10(p / 0.05)) for p in aware) < 0.1


def _regression(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]


def _linear():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.0), loss="mse")
    return model


def test_a_study_whose_best_peak_lies_above_its_range_widens_and_samples_beyond(tmp_path, caplog):
    """Linear regression with SGD for 12 steps: the larger the peak (up to ~1, where
    plain SGD on unit-variance inputs diverges), the lower the loss, so the best peak
    lies above the range test's first range [1e-3, 1e-2] and the widening limit 0.1."""
    x, y = _regression()
    s = LRSuggestion(base_lr=1e-3, max_lr=1e-2, steepest_lr=3e-3, valley_lr=3e-3,
                     min_loss_lr=1e-2)
    with caplog.at_level("INFO", logger="lrsearch.study.backends.optuna_study"):
        result = tune(_linear, (x, y), validation_data=(x, y), suggestion=s, epochs=3,
                      trials=8, families=("one_cycle",), pruner="none", seed=0,
                      batch_size=32, out_dir=tmp_path / "s", study_name="s")
    meta = result.study.user_attrs["lrsearch"]
    events = meta["widened"]
    assert events[0]["param"] == "oc_max_lr" and events[0]["side"] == "top"
    assert events[0]["after_trials"] == 3
    assert events[0]["old"] == [1e-3, 1e-2]
    assert events[0]["new"] == pytest.approx([1e-3, 1e-2 * STEP])
    assert meta["space"]["peak_max_lr"] == pytest.approx(events[-1]["new"][1])
    assert meta["space"]["peak_max_lr"] <= 0.1 + 1e-12  # the limit: ten times the minimum
    peaks = result.trials.set_index("number")["params_oc_max_lr"]
    assert peaks.loc[:2].max() <= 1e-2
    assert peaks.loc[3:].max() > 1e-2  # a later trial sampled beyond the old edge
    assert sum("widened to" in r.getMessage() for r in caplog.records) == len(events)
    assert result.best.provenance["widened"] == events
