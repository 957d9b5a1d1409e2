"""Studies of a model compiled with a `MultiOptimizer`: the trial's schedule drives the
reference group (the head), every other group follows at a ratio, searched as
`group_ratio` for two groups and kept at the compiled ratios for more."""

from __future__ import annotations

import logging

import keras
import numpy as np
import optuna
import pytest
from tests.optimizers.test_keras_classes import one_cycle
from tests.support.groups import copy_weights, digits, fine_tune_model, network, sgd_groups_by_hand

import lrsearch
from lrsearch.core.errors import ConfigError
from lrsearch.study.space import SearchSpace
from lrsearch.study.trial import configure_model

optuna.logging.set_verbosity(optuna.logging.WARNING)

BATCH, SAMPLES = 32, 320
STEPS = SAMPLES // BATCH  # one epoch: the one-cycle's length
POINT = {"family": "one_cycle", "oc_max_lr": 0.2, "oc_pct_start": 0.3, "oc_div_factor": 10.0,
         "oc_final_div_factor": 100.0, "oc_anneal_strategy": "cos"}


class GroupRates(keras.callbacks.Callback):
    """Each trial's rate of every group's next update after each batch, with the update count."""

    def __init__(self):
        super().__init__()
        self.trials = []

    def on_train_begin(self, logs=None):
        self.trials.append([])

    def on_train_batch_end(self, batch, logs=None):
        subs = self.model.optimizer.optimizers
        self.trials[-1].append((int(self.model.optimizer.iterations), [float(s.learning_rate) for s in subs]))


def test_space_searches_the_ratio_of_two_groups_only():
    two = SearchSpace(base_lr=1e-3, max_lr=1e-1, steps_per_epoch=10, epochs=2, groups=2, group_ratio=0.1)
    ratio = next(p for p in two.params() if p.name == "group_ratio")
    assert (ratio.kind, ratio.low, ratio.high, ratio.log) == ("float", pytest.approx(0.01), pytest.approx(1.0), True)
    assert two.suggested_params()["group_ratio"] == 0.1
    assert two.build({**POINT, "group_ratio": 0.3}).group_ratio == 0.3
    three = SearchSpace(base_lr=1e-3, max_lr=1e-1, steps_per_epoch=10, epochs=2, groups=3)
    assert "group_ratio" not in {p.name for p in three.params()}
    assert SearchSpace.from_dict(two.to_dict()) == two
    with pytest.raises(ConfigError, match="group_ratio"):
        SearchSpace(base_lr=1e-3, max_lr=1e-1, steps_per_epoch=10, epochs=2, groups=2, group_ratio=-1.0)


def test_a_trial_trains_each_group_at_its_schedule_times_the_ratio():
    """The trial's optimizer against plain SGD by hand: head at one-cycle(step), backbone at
    one-cycle(step) * group_ratio, every step of the epoch."""
    x, y = digits(SAMPLES)
    model = fine_tune_model(head_lr=0.05, ratio=0.1, cls=keras.optimizers.SGD)
    space = SearchSpace(base_lr=1e-3, max_lr=1e-1, steps_per_epoch=STEPS, epochs=1, groups=2, group_ratio=0.1)
    setup = space.build({**POINT, "group_ratio": 0.3})
    hand = network(0)
    copy_weights(model, hand)
    optimizer = configure_model(model, setup)
    assert [type(s._learning_rate).__name__ for s in optimizer.optimizers] == ["Scaled", "OneCycle"]
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    lrs = [one_cycle(s, 0.2, STEPS, 0.3, 10.0, 100.0, "cos") for s in range(STEPS)]
    sgd_groups_by_hand(hand, x, y, BATCH, lrs, 0.3)
    for got, want in zip(model.trainable_variables, hand.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-4, atol=1e-6)
    assert np.isfinite(history.history["loss"][0])


def test_a_study_of_two_groups_completes_each_group_on_its_schedule(tmp_path):
    x, y = digits(SAMPLES + 64)
    rates = GroupRates()
    result = lrsearch.tune(lambda: fine_tune_model(head_lr=1e-2, ratio=0.1), (x[:SAMPLES], y[:SAMPLES]),
                           validation_data=(x[SAMPLES:], y[SAMPLES:]), bounds=(1e-3, 1e-1), epochs=1, trials=2,
                           families=("one_cycle",), batch_size=BATCH, pruner="none", seed=0, study_name="g",
                           out_dir=tmp_path / "g", callbacks=[rates])
    trials = result.trials
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert trials["params_group_ratio"].iloc[0] == 0.1  # the first trial: the compiled ratio
    assert 0.01 <= trials["params_group_ratio"].iloc[1] <= 1.0
    for (_, row), seen in zip(trials.iterrows(), rates.trials):
        steps = [s for s, _ in seen if s < STEPS]
        assert steps == list(range(1, STEPS))
        head = [one_cycle(s, row["params_oc_max_lr"], STEPS, row["params_oc_pct_start"], row["params_oc_div_factor"],
                          row["params_oc_final_div_factor"], row["params_oc_anneal_strategy"]) for s in steps]
        got = np.array([r for s, r in seen if s < STEPS])  # columns: backbone, head (.optimizers order)
        tiny = 1e-6 * max(head)  # float32 near the anneal's end
        np.testing.assert_allclose(got[:, 1], head, rtol=1e-5, atol=tiny)
        np.testing.assert_allclose(got[:, 0], np.array(head) * row["params_group_ratio"], rtol=1e-5, atol=tiny)
    best = result.best
    assert best.groups[0]["patterns"] == [".*backbone.*"]
    chosen = trials.loc[trials["value"].idxmin(), "params_group_ratio"]
    assert best.groups[0]["ratio"] == pytest.approx(chosen, rel=1e-12)


def test_three_groups_keep_their_compiled_ratios(tmp_path, caplog):
    def build():
        model = network(0)
        opt = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(keras.optimizers.Adam(1e-2), {
            ".*backbone_1.*": keras.optimizers.Adam(1e-3), ".*backbone_2.*": keras.optimizers.Adam(5e-3)}))
        model.compile(opt, "sparse_categorical_crossentropy")
        return model

    x, y = digits(SAMPLES + 64)
    rates = GroupRates()
    with caplog.at_level(logging.INFO, logger="lrsearch"):
        result = lrsearch.tune(build, (x[:SAMPLES], y[:SAMPLES]), validation_data=(x[SAMPLES:], y[SAMPLES:]),
                               bounds=(1e-3, 1e-1), epochs=1, trials=1, families=("one_cycle",), batch_size=BATCH,
                               pruner="none", seed=0, study_name="g3", out_dir=tmp_path / "g3", callbacks=[rates])
    told = [r.getMessage() for r in caplog.records if "3 groups" in r.getMessage()]
    assert len(told) == 1 and "0.1, 0.5, 1" in told[0]
    assert "params_group_ratio" not in result.trials
    got = np.array([r for _, r in rates.trials[0]])
    np.testing.assert_allclose(got[:, 0], got[:, 2] * 0.1, rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], got[:, 2] * 0.5, rtol=1e-6)
    assert [g["ratio"] for g in result.best.groups] == [0.1, 0.5]


def test_a_callable_selector_is_refused_in_one_line(tmp_path):
    def build():
        model = network(0)
        head, backbone = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-3)
        model.compile(keras.optimizers.MultiOptimizer(lambda v: backbone if "backbone" in v.path else head),
                      "sparse_categorical_crossentropy")
        return model

    x, y = digits(SAMPLES)
    with pytest.raises(ConfigError, match="callable selector.*OptimizerMap") as info:
        lrsearch.tune(build, (x, y), validation_data=(x[:64], y[:64]), bounds=(1e-3, 1e-1), epochs=1, trials=1,
                      batch_size=BATCH, study_name="c", out_dir=tmp_path / "c")
    assert "\n" not in str(info.value)
