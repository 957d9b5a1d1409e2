"""fit_one_cycle: range test restored, the one-cycle rates at the suggested peak, the spec."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import lrsearch
from lrsearch.core.errors import ConfigError
from lrsearch.export.spec import ScheduleSpec


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def _model(optimizer):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _one_cycle(step, max_lr, total, pct=0.3, div=25.0, final_div=1e4):
    """PyTorch's OneCycleLR (two phases, cosine), by hand."""
    initial, final = max_lr / div, max_lr / div / final_div
    step = min(step, total - 1)
    peak = pct * total - 1
    if step <= peak:
        return max_lr + (initial - max_lr) / 2 * (1 + math.cos(math.pi * step / peak))
    frac = (step - peak) / (total - 1 - peak)
    return final + (max_lr - final) / 2 * (1 + math.cos(math.pi * frac))


def _momentum(step, total, pct=0.3, low=0.85, high=0.95):
    """One-cycle's momentum (cosine), by hand."""
    peak = pct * total - 1
    if step <= peak:
        return low + (high - low) / 2 * (1 + math.cos(math.pi * step / peak))
    frac = (step - peak) / (total - 1 - peak)
    return high + (low - high) / 2 * (1 + math.cos(math.pi * frac))


class _Rates(keras.callbacks.Callback):
    """The rate and momentum the optimizer applies at each batch (read before the update)."""

    def on_train_begin(self, logs=None):
        self.lrs, self.moms, self.weights = [], [], None

    def on_train_batch_begin(self, batch, logs=None):
        opt = self.model.optimizer
        if self.weights is None:
            self.weights = [w.numpy().copy() for w in self.model.weights]
        self.lrs.append(float(opt.learning_rate))
        self.moms.append(float(opt._value(opt.momentum, "float32")))


@pytest.mark.slow
def test_fit_one_cycle_trains_with_one_cycle_at_the_suggested_peak(tmp_path):
    x, y = _data()
    model = _model(keras.optimizers.SGD(0.01, momentum=0.9))
    model(x[:1])
    before = [w.numpy().copy() for w in model.weights]
    rates = _Rates()
    run = lrsearch.fit_one_cycle(model, (x, y), 2, validation_data=(x[:32], y[:32]), batch_size=16,
                                 callbacks=[rates], range_test_kwargs={"steps": 60}, verbose=0)
    peak = run.range_test.suggestion.max_lr
    total = 2 * 6  # 96 samples / 16 per batch, 2 epochs
    assert len(run.range_test.frame) >= 60
    # the range test put the weights back: fit started from them
    for w0, w1 in zip(before, rates.weights, strict=True):
        np.testing.assert_array_equal(w0, w1)
    assert len(rates.lrs) == total and int(model.optimizer.iterations) == total
    for step in (0, 3, 7, 11):
        assert rates.lrs[step] == pytest.approx(_one_cycle(step, peak, total), rel=1e-5)
    # cyclical momentum, the inverse: 0.95 -> 0.85 at step 0.3 * 12 - 1 = 2.6 -> 0.95
    for step in (0, 2, 3, 11):
        assert rates.moms[step] == pytest.approx(_momentum(step, total), rel=1e-5)
    assert set(run.history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(run.history.history["loss"]) == 2
    spec = run.schedule
    assert spec.optimizer == "SGD" and spec.steps_per_epoch == 6 and spec.epochs == 2
    bounds = spec.provenance["bounds"]
    assert bounds == {"base_lr": run.range_test.suggestion.base_lr, "max_lr": peak}
    spec.save(tmp_path / "s.json")
    back = lrsearch.load_schedule(tmp_path / "s.json")
    assert back.provenance == spec.provenance
    for step in (0, 5, 11):
        assert float(back.schedule(step)) == pytest.approx(_one_cycle(step, peak, total), rel=1e-5)
    assert isinstance(back, ScheduleSpec)


@pytest.mark.slow
def test_fit_one_cycle_given_peak_and_adam_beta1():
    x, y = _data()
    model = _model(keras.optimizers.Adam(1e-3))
    rates = _Rates()
    rates.on_train_batch_begin = lambda batch, logs=None: rates.lrs.append(
        float(model.optimizer.learning_rate))
    run = lrsearch.fit_one_cycle(model, (x, y), 1, batch_size=8, max_lr=0.02, callbacks=[rates],
                                 range_test_kwargs={"steps": 40}, verbose=0)
    assert rates.lrs[0] == pytest.approx(0.02 / 25, rel=1e-5)
    assert rates.lrs == pytest.approx([_one_cycle(s, 0.02, 12) for s in range(12)], rel=1e-5)
    assert run.schedule.momentum_name == "beta_1"
    assert run.schedule.provenance["max_lr_given"] is True
    assert run.schedule.provenance["params"] == {"max_lr": 0.02}


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"),
    ({"epochs": 1, "max_lr": -1.0}, "max_lr"),
    ({"epochs": 1, "callbacks": [keras.callbacks.ReduceLROnPlateau()]}, "callbacks"),
])
def test_fit_one_cycle_rejects_bad_arguments(kwargs, match):
    x, y = _data()
    model = _model(keras.optimizers.SGD(0.01))
    epochs = kwargs.pop("epochs")
    with pytest.raises(ConfigError, match=match):
        lrsearch.fit_one_cycle(model, (x, y), epochs, **kwargs)


@pytest.mark.slow
def test_fit_one_cycle_counts_updates_of_a_dataset_under_gradient_accumulation():
    import tensorflow as tf

    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # 6 batches
    model = _model(keras.optimizers.SGD(0.01, momentum=0.9, gradient_accumulation_steps=2))
    seen = []
    rates = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs=None: seen.append(float(model.optimizer.learning_rate)))
    run = lrsearch.fit_one_cycle(model, ds, 2, max_lr=0.1, callbacks=[rates],
                                 range_test_kwargs={"steps": 30}, verbose=0)
    assert run.schedule.steps_per_epoch == 3 and run.schedule.total_steps == 6
    assert int(model.optimizer.iterations) == 6  # 12 batches, 2 per update
    # each rate holds for the two batches of its update
    expected = [_one_cycle(u, 0.1, 6) for u in range(6) for _ in range(2)]
    assert seen == pytest.approx(expected, rel=1e-5)
