"""Range test on a `MultiOptimizer`: every group ramps at its compiled ratio to the head."""

from __future__ import annotations

import keras
import numpy as np
from lrsearch.rangetest.finder import range_test
from lrsearch.rangetest.result import RangeTestResult
from tests.support.groups import digits, fine_tune_model, network, sgd_groups_by_hand


def test_every_group_ramps_at_its_ratio():
    steps, batch, lo, hi, ratio = 12, 32, 1e-3, 1.0, 0.25
    x, y = digits(steps * batch)
    model = fine_tune_model(head_lr=0.4, ratio=ratio, cls=keras.optimizers.SGD)
    before = [v.numpy().copy() for v in model.trainable_variables]
    result = range_test(model, (x, y), min_lr=lo, max_lr=hi, steps=steps, batch_size=batch,
                        diverge=0, restore=False, verbose=0)
    lrs = lo * (hi / lo) ** (np.arange(steps) / (steps - 1))
    np.testing.assert_allclose(result.frame["lr"], lrs, rtol=1e-12)  # the head's (reference) rate
    hand = network(0)
    for var, value in zip(hand.trainable_variables, before):
        var.assign(value)
    losses = sgd_groups_by_hand(hand, x, y, batch, lrs, ratio)
    np.testing.assert_allclose(result.frame["loss"], losses, rtol=2e-5)
    for got, want, start in zip(model.trainable_variables, hand.trainable_variables, before):
        assert not np.allclose(got.numpy(), start)  # both groups moved
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-4, atol=1e-6)
    assert result.meta["groups"] == {"reference": 1, "ratios": [ratio, 1.0], "optimizers": ["SGD", "SGD"]}


def test_restore_puts_every_group_back():
    x, y = digits(640)
    model = fine_tune_model()
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)  # slots and counters not zero
    subs = model.optimizer.optimizers
    rates = [sub._learning_rate for sub in subs]
    state = [v.numpy().copy() for v in [*model.weights, *model.optimizer.variables]]
    range_test(model, (x, y), steps=20, verbose=0)
    assert [sub._learning_rate for sub in subs] == rates  # the same variables, not the ramp
    np.testing.assert_allclose([float(sub.learning_rate) for sub in subs], [1e-4, 1e-3], rtol=1e-6)
    for v, value in zip([*model.weights, *model.optimizer.variables], state):
        np.testing.assert_array_equal(v.numpy(), value)


def test_curve_descends_and_records_the_ratios(tmp_path):
    x, y = digits()
    model = fine_tune_model(head_lr=1e-3, ratio=0.1)
    result = range_test(model, (x, y), min_lr=1e-6, max_lr=10.0, steps=150, verbose=0)
    s = result.suggestion
    assert not s.warnings
    assert 1e-3 < s.max_lr < 0.3  # Adam's usual range, not the top of the sweep
    smooth = result.frame["smooth_loss"].to_numpy()
    assert smooth.min() < 0.8 * smooth[0]  # before: flat from 1e-7 to 10
    loaded = RangeTestResult.load(result.save(tmp_path / "curve.csv"))
    np.testing.assert_allclose(loaded.meta["groups"]["ratios"], [0.1, 1.0], rtol=1e-6)
    assert loaded.meta["groups"]["reference"] == 1


def test_a_pattern_that_names_no_variable_is_told_in_one_line(caplog):
    x, y = digits(64)
    model = network(0)
    miss = keras.optimizers.OptimizerMap(keras.optimizers.SGD(0.1), {"backbone.*": keras.optimizers.SGD(0.01)})
    model.compile(keras.optimizers.MultiOptimizer(miss), "sparse_categorical_crossentropy")
    with caplog.at_level("WARNING", logger="lrsearch"):
        range_test(model, (x, y), steps=2, diverge=0, verbose=0)
    told = [r.getMessage() for r in caplog.records if "names no variable" in r.getMessage()]
    path = model.trainable_variables[0].path
    assert path.endswith("/backbone_1/kernel")
    assert told == [f"the MultiOptimizer's pattern 'backbone.*' names no variable (Keras matches the whole path, "
                    f"e.g. {path!r}), so that group trains nothing; write the pattern to match whole paths, e.g. "
                    "'.*backbone.*'"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="lrsearch"):
        range_test(fine_tune_model(), (x, y), steps=2, diverge=0, verbose=0)  # ".*backbone.*" names both layers
    assert not [r for r in caplog.records if "names no variable" in r.getMessage()]
