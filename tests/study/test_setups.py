"""The range test and studies under the training setups that break most LR finders.

Where each setup is tested (items of docs/range-test.md's "Training setups"):

1. Mixed precision (`mixed_float16`, a `LossScaleOptimizer` around the optimizer):
   here `test_mixed_precision_range_test_records_unscaled_float32_losses_and_restores`,
   `test_mixed_precision_trial_schedules_reach_the_inner_optimizer`,
   `test_sessions_cleared_between_trials_keep_the_user_settings`; in test_optimizers
   `test_schedules_act_inside_a_loss_scale_optimizer`,
   `test_mixed_precision_rebuild_and_schedules_act`.
2. Gradient accumulation: in test_finder
   `test_gradient_accumulation_records_the_mean_of_the_micro_batches` (one rate per
   update); in test_optimizers `test_gradient_accumulation_feeds_schedules_the_update_count`;
   here `test_gradient_accumulation_trial_schedule_is_sized_in_updates`,
   `test_keras_optimizers_run_schedules_k_times_too_fast_under_accumulation`.
3. `steps_per_execution > 1`: in test_finder
   `test_steps_per_execution_does_not_change_what_is_recorded`; here a trial in
   `test_one_cycle_spans_the_real_steps_of_a_trial`.
4. Several inputs / outputs, sample weights, dict batches: in test_finder
   `test_multi_input_dict_model`,
   `test_dataset_is_read_in_order_and_repeated_with_sample_weights_and_validation`;
   here `test_multi_output_range_test_records_the_weighted_total_loss`,
   `test_tune_on_dict_batches_optimizes_the_total_loss`.
5. Random state and training-mode layers: in test_finder
   `test_restore_is_bit_exact_including_slots_bn_stats_and_seed_state`,
   `test_next_fit_is_as_if_no_range_test_ran`; here
   `test_seeded_shuffled_fit_after_a_range_test_is_identical`,
   `test_dropout_and_noise_act_as_in_training_during_the_range_test`.
6. Early stopping, checkpoints, schedule length in studies: here
   `test_early_stopping_and_checkpoint_keep_working_in_tune`,
   `test_callbacks_that_set_the_rate_are_refused_before_any_trial`,
   `test_one_cycle_spans_the_real_steps_of_a_trial`,
   `test_steps_per_epoch_reads_on_across_epochs`.
7. `tf.distribute.MirroredStrategy` (2 logical CPUs, in a subprocess running
   `tests/support/mirrored_worker.py`: range test, momentum sweep, copies of a compiled model,
   one trial): here
   `test_mirrored_strategy_range_test_and_trial`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
import tensorflow as tf

import lrsearch
from lrsearch import optimizers as lo
from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.core.errors import ConfigError, DataError
from lrsearch.rangetest.finder import lr_sweep, range_test
from lrsearch.schedules import OneCycle
from lrsearch.study.tune import clear_keras_session, tune
from tests.support import SUPPORT

optuna.logging.set_verbosity(optuna.logging.WARNING)

BOUNDS = LRSuggestion(base_lr=1e-3, max_lr=0.05, steepest_lr=0.01, valley_lr=0.01,
                      min_loss_lr=0.03, warnings=())
W = np.array([1.5, -2.0, 0.5])


def _regression(n=64, seed=0, sign=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (sign * (x @ W))[:, None].astype("float32")


def _dense(optimizer=None, zeros=False):
    keras.utils.set_random_seed(0)
    init = "zeros" if zeros else "glorot_uniform"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer=init)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model


def _tune(tmp_path, build, data, val, **kw):
    kw.setdefault("suggestion", BOUNDS)
    return tune(build, data, validation_data=val, families=("one_cycle",), pruner="none",
                seed=0, out_dir=tmp_path / "study", study_name="s", **kw)


def _one_cycle_at(spec, steps):
    """The trial's own rate schedule evaluated at `steps` (its epoch ends)."""
    return [float(spec.schedule(s)) for s in steps]


def _state(model):
    vs = [*model.variables, *model.metrics_variables, *model.optimizer.variables]
    return [(v.path, np.array(v.numpy(), copy=True)) for v in vs]


# ------------------------------------------------------------------ 1. mixed precision


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_range_test_records_unscaled_float32_losses_and_restores(mixed_float16):
    """Naive finders read the loss the LossScaleOptimizer differentiates (2**15 times too
    large) or the float16 output's loss, set the rate on the wrapper (the inner optimizer
    keeps its own), and forget the loss scale when restoring."""
    x, y = _regression()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    before = _state(model)
    assert any("dynamic_scale" in p for p, _ in before)
    hidden = np.asarray(model.layers[0](x[:16]), dtype=np.float64)
    pred = model(x[:16], training=True)
    assert pred.dtype == "float16"
    p = np.asarray(pred, dtype=np.float64)[:, 0]
    residual = p - y[:16, 0]
    expected = np.mean(residual**2)
    r = range_test(model, (x, y), min_lr=1e-4, max_lr=1e-2, steps=8, batch_size=16, verbose=0)
    # The range test's traced forward pass may round each float16 result one unit in the
    # last place away from this eager one (eps = 2**-10 relative): a prediction moves by
    # eps * |p| from its own rounding and by eps * sum_j |w_j h_j| from the 4 hidden units
    # it sums; the mean of the 16 squared residuals then moves by mean(2 |r| dp + dp**2),
    # and summing them in float32 adds 16 float32 roundings. (The loss read off the scaled
    # loss instead would be 2**15 times too large; the float16 output's loss, 1e-3 off.)
    eps16, eps32 = float(np.finfo(np.float16).eps), float(np.finfo(np.float32).eps)
    kernel = np.abs(np.asarray(model.layers[1].kernel, dtype=np.float64))[:, 0]
    dp = eps16 * (np.abs(p) + np.abs(hidden) @ kernel)
    tolerance = np.mean(2 * np.abs(residual) * dp + dp**2) + 16 * eps32 * expected
    assert tolerance < 2e-3 * expected  # the bound is float16's, not a loose one
    assert abs(r.frame["loss"][0] - expected) <= tolerance
    np.testing.assert_array_equal(r.frame["lr"], lr_sweep(1e-4, 1e-2, 8))
    after = _state(model)
    assert [p for p, _ in after] == [p for p, _ in before]
    for (p, a), (_, b) in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg=p)

    # the ramp reaches the inner optimizer: at its own rate of 0 only the ramp moves weights
    model.optimizer.inner_optimizer.learning_rate.assign(0.0)
    kernel = model.layers[0].kernel.numpy().copy()
    range_test(model, (x, y), min_lr=1e-3, max_lr=1e-2, steps=4, batch_size=16, restore=False,
               verbose=0)
    assert np.abs(model.layers[0].kernel.numpy() - kernel).max() > 1e-5


def test_mixed_precision_trial_schedules_reach_the_inner_optimizer(tmp_path, mixed_float16):
    """A trial recompiles with a rebuilt optimizer, which compile wraps again. Naive
    studies clear the Keras session between trials, which silently resets the global
    policy to float32 (Keras keeps it in that state), and read the wrapper's own counters,
    so rate and momentum never follow the schedule. Small targets keep the scaled
    gradients finite: every batch is an update (an overflow step would not count)."""
    x, y = _regression()
    y = y / 100.0
    seen = {"iterations": []}

    class Inner(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["iterations"].append(int(self.model.optimizer.inner_optimizer.iterations))

        def on_train_end(self, logs=None):
            seen["outer"] = type(self.model.optimizer)
            seen["inner"] = type(self.model.optimizer.inner_optimizer)
            seen["policy"] = self.model.dtype_policy.name

    res = _tune(tmp_path, _dense, (x, y), (x[:32], y[:32]), epochs=2, trials=1, batch_size=16,
                callbacks=[Inner()])
    spec = res.best
    assert seen == {"outer": keras.optimizers.LossScaleOptimizer, "inner": lo.SGD,
                    "policy": "mixed_float16", "iterations": [4, 8]}
    assert spec.schedule.total_steps == 8
    np.testing.assert_allclose(res.history["lr"], _one_cycle_at(spec, [4, 8]), rtol=1e-6)
    final_momentum = float(spec.momentum(8))
    assert final_momentum == pytest.approx(spec.schedule.max_momentum, rel=1e-6)
    assert res.history["momentum"].iloc[-1] == pytest.approx(final_momentum, rel=1e-6)
    # the exported optimizer is the user's class inside a LossScaleOptimizer, as the model had
    assert spec.to_dict()["optimizer"]["loss_scale"] is True
    built = lrsearch.load_schedule(spec.save(tmp_path / "schedule.json")).build_optimizer()
    assert type(built) is keras.optimizers.LossScaleOptimizer and type(built.inner_optimizer) is lo.SGD


def test_sessions_cleared_between_trials_keep_the_user_settings():
    """`keras.backend.clear_session` resets the global dtype policy, interactive logging
    and traceback filtering; studies clear between trials and must put them back."""
    config = keras.config
    try:
        config.set_dtype_policy("mixed_float16")
        config.disable_interactive_logging()
        config.disable_traceback_filtering()
        clear_keras_session()
        assert config.dtype_policy().name == "mixed_float16"
        assert not config.is_interactive_logging_enabled()
        assert not config.is_traceback_filtering_enabled()
    finally:
        config.set_dtype_policy("float32")
        config.enable_interactive_logging()
        config.enable_traceback_filtering()


# ------------------------------------------------------------- 2. gradient accumulation


def test_gradient_accumulation_trial_schedule_is_sized_in_updates(tmp_path):
    """With gradient_accumulation_steps=2 an epoch of 4 batches makes 2 updates; a
    one-cycle sized in batches (12 for 3 epochs) is only half run at the end of the trial
    and never anneals. Epochs whose batches are not a multiple of k are refused."""
    x, y = _regression(64)

    def build():
        return _dense(keras.optimizers.SGD(0.01, momentum=0.9, gradient_accumulation_steps=2))

    res = _tune(tmp_path, build, (x, y), (x[:32], y[:32]), epochs=3, trials=1, batch_size=16)
    spec = res.best
    assert spec.steps_per_epoch == 2 and spec.schedule.total_steps == 6
    assert spec.optimizer_config["gradient_accumulation_steps"] == 2
    np.testing.assert_allclose(res.history["lr"], _one_cycle_at(spec, [2, 4, 6]), rtol=1e-6)
    end = spec.schedule.max_lr / spec.schedule.div_factor / spec.schedule.final_div_factor
    assert res.history["lr"].iloc[-1] == pytest.approx(end, rel=1e-2)  # float32 arithmetic
    x5, y5 = _regression(80)  # 5 batches: the second update would straddle two epochs
    with pytest.raises(ConfigError, match="over 2 batches but an epoch has 5 batches"):
        _tune(tmp_path / "odd", build, (x5, y5), (x[:32], y[:32]), epochs=1, trials=1,
              batch_size=16)


def test_keras_optimizers_run_schedules_k_times_too_fast_under_accumulation():
    """The trap: a Keras optimizer with gradient_accumulation_steps=2 evaluates its
    schedule on the micro-batch counter, so a one-cycle of 8 updates has ended after 4;
    an lrsearch optimizer (what tune and `spec.build_optimizer()` use) is half way."""
    x, y = _regression(64)
    sched = OneCycle(0.1, total_steps=8)
    rates = {}
    for name, cls in (("keras", keras.optimizers.SGD), ("lrsearch", lo.SGD)):
        optimizer = cls(sched, gradient_accumulation_steps=2)
        _dense(optimizer).fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert int(optimizer.iterations) == 4, name  # 8 batches, 4 updates
        rates[name] = float(optimizer.learning_rate)
    assert rates["keras"] == pytest.approx(float(sched(8)), rel=1e-6)  # already at the end
    assert rates["lrsearch"] == pytest.approx(float(sched(4)), rel=1e-6)


# ------------------------------------------------- 4. several outputs, dicts, weights


def _two_headed():
    """Inputs `a` (2), `b` (1); outputs `o1` (regression) and `o2` (2 classes)."""
    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    h = keras.layers.Concatenate()([a, b])
    o1 = keras.layers.Dense(1, name="o1")(h)
    o2 = keras.layers.Dense(2, activation="softmax", name="o2")(h)
    model = keras.Model({"a": a, "b": b}, {"o1": o1, "o2": o2})
    rng = np.random.default_rng(5)
    for layer in (model.get_layer("o1"), model.get_layer("o2")):
        layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype("float32"))
        layer.bias.assign(rng.normal(size=layer.bias.shape).astype("float32"))
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={"o1": "mse", "o2": "sparse_categorical_crossentropy"},
        loss_weights={"o1": 0.3, "o2": 2.0},
    )
    return model


def _two_headed_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(size=(n, 2)).astype("f4"), rng.normal(size=(n, 1)).astype("f4")
    y1 = (xa[:, :1] - 2 * xb).astype("f4")
    y2 = (xa[:, 0] > xb[:, 0]).astype("int32")
    sw = rng.uniform(0.2, 2.0, n).astype("f4")
    return {"a": xa, "b": xb}, {"o1": y1, "o2": y2}, sw


def test_multi_output_range_test_records_the_weighted_total_loss():
    """Naive finders record one output's loss, an unweighted sum, or ignore sample
    weights; `fit` minimizes 0.3 * mse(o1) + 2.0 * crossentropy(o2), both weighted per
    sample. Checked against NumPy on the first batch of a dict-shaped dataset."""
    x, y, sw = _two_headed_data()
    model = _two_headed()
    k1, b1 = (v.numpy().astype("f8") for v in model.get_layer("o1").weights)
    k2, b2 = (v.numpy().astype("f8") for v in model.get_layer("o2").weights)
    ds = tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(16)
    r = range_test(model, ds, min_lr=1e-4, max_lr=1e-2, steps=6, verbose=0)
    h = np.concatenate([x["a"][:16], x["b"][:16]], axis=1).astype("f8")
    w = sw[:16].astype("f8")
    mse = ((h @ k1 + b1 - y["o1"][:16]) ** 2).mean(axis=1)
    logits = h @ k2 + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    ce = -np.log(p[np.arange(16), y["o2"][:16]])
    expected = 0.3 * np.sum(w * mse) / 16 + 2.0 * np.sum(w * ce) / 16
    assert r.frame["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert r.frame["loss"][0] != pytest.approx(np.sum(w * ce) / 16, rel=1e-2)


def test_tune_on_dict_batches_optimizes_the_total_loss(tmp_path):
    """A dataset of `({inputs}, {targets}, sample_weight)` batches goes to the range test
    and to every trial as `fit` takes it; the study's `val_loss` is the weighted total of
    the two heads, and the one-cycle spans the dataset's batches (3 per epoch)."""
    x, y, sw = _two_headed_data(48)
    xv, yv, _ = _two_headed_data(16, seed=1)
    train = tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16)
    res = tune(_two_headed, train, validation_data=val, families=("one_cycle",), epochs=2,
               trials=1, pruner="none", seed=0, out_dir=tmp_path / "s", study_name="s",
               range_test_kwargs={"min_lr": 1e-4, "max_lr": 1.0, "steps": 30})
    h = res.history
    assert res.trials["state"].tolist() == ["COMPLETE"]
    np.testing.assert_allclose(h["val_loss"], 0.3 * h["val_o1_loss"] + 2.0 * h["val_o2_loss"],
                               rtol=1e-5)
    assert res.trials["value"].iloc[0] == pytest.approx(h["val_loss"].iloc[-1])
    assert res.best.schedule.total_steps == 6
    np.testing.assert_allclose(h["lr"], _one_cycle_at(res.best, [3, 6]), rtol=1e-6)


# ------------------------------------------------------------------- 5. random state


def _dropout_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, kernel_initializer="ones"),
         keras.layers.Dropout(0.5), keras.layers.GaussianNoise(0.3),
         keras.layers.Dense(1, kernel_initializer="ones")]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model


def test_dropout_and_noise_act_as_in_training_during_the_range_test():
    """Naive finders score batches with `evaluate`/`predict` (inference mode: no dropout,
    no noise). The first recorded loss is the training-mode forward pass drawn from the
    layers' own seed state."""
    x, y = _regression()
    model = _dropout_model()
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert len(seeds) == 2
    start = [v.numpy().copy() for v in seeds]
    train_loss = float(np.mean((np.asarray(model(x[:16], training=True), "f8") - y[:16]) ** 2))
    for v, s in zip(seeds, start):
        v.assign(s)
    infer_loss = float(np.mean((np.asarray(model(x[:16], training=False), "f8") - y[:16]) ** 2))
    r = range_test(model, (x, y), min_lr=1e-6, max_lr=1e-5, steps=3, batch_size=16, verbose=0)
    assert r.frame["loss"][0] == pytest.approx(train_loss, rel=1e-6)
    assert abs(train_loss - infer_loss) > 1e-3 * infer_loss
    for v, s in zip(seeds, start):  # restored: the next fit draws the same masks
        np.testing.assert_array_equal(v.numpy(), s)


def _draws():
    return (random.random(), float(np.random.random()), float(tf.random.uniform(())),
            float(keras.random.uniform(())))


def test_seeded_shuffled_fit_after_a_range_test_is_identical():
    """A seeded run (shuffled batches, dropout) gives the same weights and the global
    random streams (Python, NumPy, TensorFlow, Keras) the same next draws with or without
    a range test first. Naive finders shuffle, reseed or draw from the global streams."""
    x, y = _regression(96)

    def run(with_range_test):
        keras.utils.set_random_seed(21)
        model = _dropout_model()
        if with_range_test:
            range_test(model, (x, y), min_lr=1e-5, max_lr=1.0, steps=15, batch_size=16, verbose=0)
        model.fit(x, y, batch_size=16, epochs=2, shuffle=True, verbose=0)
        return model.get_weights(), _draws()

    plain, plain_draws = run(False)
    tested, tested_draws = run(True)
    for a, b in zip(plain, tested):
        np.testing.assert_array_equal(a, b)
    assert plain_draws == tested_draws


# ---------------------------------------------- 6. callbacks and schedule length in tune


def test_early_stopping_and_checkpoint_keep_working_in_tune(tmp_path):
    """Validation targets have the opposite sign, so val_loss is best after the first
    epoch and EarlyStopping(patience=0, restore_best_weights=True) stops at the second.
    Naive studies report the last epoch's val_loss although the trial ends with the best
    epoch's weights; the shared ModelCheckpoint(save_best_only=True) ends up holding the
    best model of the whole study, loadable with its lrsearch optimizer and schedule."""
    x, y = _regression(64)
    xv, yv = _regression(32, seed=1, sign=-1.0)
    path = tmp_path / "best.keras"
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)
    keep = keras.callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    res = _tune(tmp_path, lambda: _dense(zeros=True), (x, y), (xv, yv), epochs=4, trials=2,
                batch_size=16, callbacks=[stop, keep])
    h = res.history
    for number, group in h.groupby("trial"):
        row = res.trials.set_index("number").loc[number]
        assert row["state"] == "COMPLETE" and row["epochs_run"] == 2 == len(group)
        assert group["val_loss"].iloc[1] > group["val_loss"].iloc[0]  # the last is not the best
        assert row["value"] == pytest.approx(group["val_loss"].min(), rel=1e-6)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is lo.SGD
    assert isinstance(loaded.optimizer._learning_rate, OneCycle)
    val = loaded.evaluate(xv, yv, batch_size=16, verbose=0)
    assert val == pytest.approx(h["val_loss"].min(), rel=1e-5)


def test_callbacks_that_set_the_rate_are_refused_before_any_trial(tmp_path):
    """ReduceLROnPlateau and LearningRateScheduler assign `optimizer.learning_rate`, which
    an optimizer built on a schedule refuses: naive studies fail mid-trial, at the first
    plateau, with Keras' TypeError."""
    x, y = _regression(32)
    for cb in (keras.callbacks.ReduceLROnPlateau(), keras.callbacks.LearningRateScheduler(lambda e, lr: lr)):
        with pytest.raises(ConfigError, match=f"callback {type(cb).__name__} sets the learning rate"):
            _tune(tmp_path, _dense, (x, y), (x, y), epochs=1, trials=1, callbacks=[cb])
    assert not (tmp_path / "study").exists()


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, bs):
        super().__init__()
        self.x, self.y, self.bs = x, y, bs

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        return self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]


def _kinds(x, y):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    return {
        "arrays": (x, y),
        "unknown_length": ds.filter(lambda a, b: True).batch(16),
        "pydataset": _Batches(x, y, 16),
    }


@pytest.mark.slow
def test_one_cycle_spans_the_real_steps_of_a_trial(tmp_path):
    """70 samples in batches of 16 are 5 steps per epoch, the last one partial. Naive
    sizing (70 // 16 = 4) ends the one-cycle early; on a dataset of unknown length `fit`
    itself counts a sixth optimizer step per epoch, running the schedule ahead. Here the
    schedule spans 5 * 2 steps for arrays, such a dataset and a PyDataset (trained with
    `steps_per_execution=3`: 3 + 2 batches per epoch, callbacks only at execution ends),
    and the rate at each epoch's end is the schedule's value there."""
    x, y = _regression(70)

    def in_threes():
        model = _dense()
        model.compile(optimizer=model.optimizer, loss="mse", steps_per_execution=3)
        return model

    for name, data in _kinds(x, y).items():
        build = in_threes if name == "pydataset" else _dense
        res = _tune(tmp_path / name, build, data, (x[:32], y[:32]), epochs=2, trials=1,
                    batch_size=16 if name == "arrays" else None)
        spec = res.best
        assert (spec.steps_per_epoch, spec.epochs, spec.schedule.total_steps) == (5, 2, 10), name
        np.testing.assert_allclose(res.history["lr"], _one_cycle_at(spec, [5, 10]), rtol=1e-6,
                                   err_msg=name)


@pytest.mark.slow
def test_steps_per_epoch_reads_on_across_epochs(tmp_path):
    """With `steps_per_epoch=3` a trial of 2 epochs runs 6 batches and its one-cycle spans
    6 steps, for a dataset that repeats forever and for a finite one of 5 batches (which
    `fit` alone would run out of in the second epoch, ending the schedule at step 5)."""
    x, y = _regression(70)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    for name, data in {"endless": ds.repeat(), "finite": ds}.items():
        res = _tune(tmp_path / name, _dense, data, (x[:32], y[:32]), epochs=2, trials=1,
                    steps_per_epoch=3)
        spec = res.best
        assert (spec.steps_per_epoch, spec.schedule.total_steps) == (3, 6), name
        np.testing.assert_allclose(res.history["lr"], _one_cycle_at(spec, [3, 6]), rtol=1e-6,
                                   err_msg=name)
    with pytest.raises(DataError, match="repeats forever.*steps_per_epoch"):
        _tune(tmp_path / "e", _dense, ds.repeat(), (x[:32], y[:32]), epochs=1, trials=1)
    with pytest.raises(ConfigError, match="Argument `steps_per_epoch` must be None unless the data is a tf.data.Dataset"):
        _tune(tmp_path / "a", _dense, (x, y), (x[:32], y[:32]), epochs=1, trials=1,
              steps_per_epoch=3)


# --------------------------------------------------------------- 7. MirroredStrategy


@pytest.mark.slow
def test_mirrored_strategy_range_test_and_trial():
    """On 2 replicas `fit` splits each global batch of 16 into two of 8, BatchNorm
    normalizes each half by its own statistics, and `evaluate` reads each replica's own
    copy of the moving statistics. Naive finders run the train and validation steps on
    the whole global batch (other losses) and build optimizer slots outside the
    strategy's scope (an error); naive sweeps and trials recompile with an optimizer made
    outside it (an error), and copies of a compiled model (`auto(model)`) fall back to
    one device."""
    proc = subprocess.run([sys.executable, str(SUPPORT / "mirrored_worker.py")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    losses = out["range_test_losses"]
    assert losses[0] == pytest.approx(out["per_replica_loss"], rel=1e-6)
    assert abs(out["global_batch_loss"] - out["per_replica_loss"]) > 1e-3
    assert out["range_test_meta"] == {"batch_size": 16, "replicas": 2, "steps": 12}
    assert out["restored"] is True
    assert out["last_val_loss"] == pytest.approx(out["evaluate_loss"], rel=1e-6)
    assert out["max_lr_at_32"] == pytest.approx(2 * out["max_lr"])  # linear scaling rule
    np.testing.assert_allclose(out["sweep_first_losses"], [out["per_replica_loss"]] * 2, rtol=1e-6)
    assert out["copy_mirrored"] is True  # auto(model) trains copies on both replicas
    assert out["copy_loss"] == pytest.approx(out["model_loss"], rel=1e-6)
    trial = out["trial"]
    assert trial["state"] == ["COMPLETE"]
    assert (trial["total_steps"], trial["spec_steps_per_epoch"], trial["iterations"]) == (8, 4, 8)
    assert trial["replicas"] == 2 and trial["mirrored"] is True
    np.testing.assert_allclose(trial["lr"], trial["expected_lr"], rtol=1e-6)
