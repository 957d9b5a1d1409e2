"""Range test: per-batch losses against a trajectory computed by hand, restore, stops, data kinds."""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from lrsearch.data.reader import as_dataset, steps_per_epoch, take_batches
from lrsearch.core.errors import ConfigError, CurveError, DataError, DivergenceError
from lrsearch.rangetest.finder import lr_sweep, range_test
from lrsearch.rangetest.result import RangeTestResult

D = 3


class _Terminal(io.StringIO):
    """A stream that reports itself as a terminal (the bytes written are kept)."""

    def isatty(self):
        return True


def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype("float32")
    y = (x @ np.array([1.5, -2.0, 0.5]) + rng.normal(0, 0.1, n) + 3.0 * (np.arange(n) // 8 % 2))
    return x, y.astype("float32")[:, None]


def _linear(l2=0.0, optimizer=None, **compile_kw):
    model = keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer="zeros",
                kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
            ),
        ]
    )
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.0), loss="mse", **compile_kw)
    return model


def _sgd_by_hand(batches, lrs, l2=0.0, accum=1, val=None):
    """Plain SGD on mean squared error + l2 * |w|^2, in float64.

    Returns the loss of each optimizer step (mean over its `accum` batches, under the
    weights before the update) and the validation loss after each update.
    """
    w = np.zeros(D)
    losses, val_losses = [], []
    k = 0
    for lr in lrs:
        grads, step_losses = [], []
        for _ in range(accum):
            x, y, sw = batches[k % len(batches)]
            k += 1
            r = x @ w - y[:, 0]
            step_losses.append(np.sum(sw * r**2) / len(r) + l2 * np.sum(w**2))
            grads.append(2 * (sw * r) @ x / len(r) + 2 * l2 * w)
        losses.append(np.mean(step_losses))
        w = w - lr * np.mean(grads, axis=0)
        if val is not None:
            val_losses.append(np.mean((val[0] @ w - val[1][:, 0]) ** 2))
    return np.array(losses), np.array(val_losses)


def _split(x, y, bs, sw=None):
    sw = np.ones(len(x)) if sw is None else sw
    return [(x[i : i + bs], y[i : i + bs], sw[i : i + bs]) for i in range(0, len(x) - bs + 1, bs)]


# ---------------------------------------------------------------- the recorded losses


@pytest.mark.backends
def test_each_step_records_its_own_batch_loss_with_regularization():
    x, y = _regression()
    model = _linear(l2=0.05)
    r = range_test(model, (x, y), min_lr=1e-3, max_lr=0.1, steps=20, batch_size=16, verbose=0)
    lrs = lr_sweep(1e-3, 0.1, 20)
    expected, _ = _sgd_by_hand(_split(x, y, 16), lrs, l2=0.05)
    assert list(r.frame.columns) == ["step", "lr", "loss", "smooth_loss"]
    np.testing.assert_array_equal(r.frame["lr"], lrs)
    np.testing.assert_allclose(r.frame["loss"], expected, rtol=2e-5)
    # the batches alternate between two target levels: a running mean would be far off
    running = np.cumsum(expected[:4]) / np.arange(1, 5)
    assert not np.allclose(r.frame["loss"][:4], running, rtol=0.01)


@pytest.mark.backends
def test_dataset_is_read_in_order_and_repeated_with_sample_weights_and_validation():
    x, y = _regression(48)
    sw = np.linspace(0.5, 2.0, 48)
    xv, yv = _regression(16, seed=1)
    ds = tf.data.Dataset.from_tensor_slices((x, y, sw.astype("float32"))).batch(16)
    model = _linear()
    r = range_test(
        model, ds, min_lr=1e-3, max_lr=0.2, steps=10, mode="linear",
        validation_data=(xv, yv), verbose=0,
    )
    lrs = np.linspace(1e-3, 0.2, 10)
    loss, val = _sgd_by_hand(_split(x, y, 16, sw), lrs, val=(xv, yv))
    np.testing.assert_allclose(r.frame["lr"], lrs, rtol=1e-12)
    np.testing.assert_allclose(r.frame["loss"], loss, rtol=2e-5)
    np.testing.assert_allclose(r.frame["val_loss"], val, rtol=2e-5)


@pytest.mark.backends
def test_gradient_accumulation_records_the_mean_of_the_micro_batches():
    x, y = _regression()
    opt = keras.optimizers.SGD(0.0, gradient_accumulation_steps=2)
    r = range_test(_linear(optimizer=opt), (x, y), min_lr=1e-2, max_lr=0.1, steps=6,
                   batch_size=8, verbose=0)
    expected, _ = _sgd_by_hand(_split(x, y, 8), lr_sweep(1e-2, 0.1, 6), accum=2)
    np.testing.assert_allclose(r.frame["loss"], expected, rtol=2e-5)


def test_steps_per_execution_does_not_change_what_is_recorded():
    x, y = _regression()
    a = range_test(_linear(), (x, y), min_lr=1e-3, max_lr=0.1, steps=12, batch_size=8, verbose=0)
    b = range_test(_linear(steps_per_execution=4), (x, y), min_lr=1e-3, max_lr=0.1, steps=12,
                   batch_size=8, verbose=0)
    np.testing.assert_array_equal(a.frame["loss"], b.frame["loss"])


def test_lr_sweep_spacing():
    exp = lr_sweep(1e-6, 1.0, 7)
    np.testing.assert_allclose(exp, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)
    np.testing.assert_allclose(lr_sweep(0.1, 0.5, 5, "linear"), [0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(ConfigError, match="max_lr"):
        lr_sweep(1.0, 0.1, 10)
    with pytest.raises(ConfigError, match="mode"):
        lr_sweep(1e-3, 1.0, 10, "cosine")


# ---------------------------------------------------------------- stops


@pytest.mark.backends
def test_divergence_stop_is_the_first_step_past_the_threshold():
    x, y = _regression()
    r = range_test(_linear(), (x, y), min_lr=1e-3, max_lr=100.0, steps=100, batch_size=8,
                   smooth=0.9, diverge=4.0, verbose=0)
    assert r.stopped == "diverged"
    sm = r.frame["smooth_loss"].to_numpy()
    over = sm > 4.0 * np.minimum.accumulate(sm)
    assert over[-1] and not over[:-1].any()
    assert len(r.frame) < 100


@pytest.mark.backends
def test_nan_stop_without_divergence_rule():
    x, y = _regression()
    r = range_test(_linear(), (x, y), min_lr=1e-3, max_lr=1e6, steps=200, batch_size=8,
                   diverge=0, verbose=0)
    assert r.stopped == "nan"
    assert not np.isfinite(r.frame["loss"].iloc[-1])
    assert np.isfinite(r.frame["loss"].iloc[:-1]).all()


@pytest.mark.backends
def test_nan_at_the_first_step_raises_and_restores():
    x, y = _regression()
    x[0, 0] = np.nan
    model = _linear()
    model.layers[0].kernel.assign(np.ones((D, 1)))
    with pytest.raises(DivergenceError, match="first step"):
        range_test(model, (x, y), steps=10, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.ones((D, 1)))


# ---------------------------------------------------------------- restore


def _classifier(optimizer):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _cls_data(n=96):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")


def _state(model):
    vs = [*model.variables, *model.metrics_variables, *model.optimizer.variables]
    return [(v.path, v.numpy().copy()) for v in vs]


@pytest.mark.backends
def test_restore_is_bit_exact_including_slots_bn_stats_and_seed_state():
    x, y = _cls_data()
    model = _classifier(keras.optimizers.Adam(1e-3))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    before = _state(model)
    assert any("seed_generator" in p for p, _ in before)
    range_test(model, (x, y), min_lr=1e-5, max_lr=1.0, steps=30, batch_size=16, verbose=0)
    after = _state(model)
    assert [p for p, _ in after] == [p for p, _ in before]
    for (p, a), (_, b) in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg=p)
    assert isinstance(model.optimizer._learning_rate, keras.Variable)


@pytest.mark.backends
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.5)),
    ],
    ids=["sgd-unbuilt", "adam-schedule"],
)
def test_next_fit_is_as_if_no_range_test_ran(make_opt):
    x, y = _cls_data()
    plain = _classifier(make_opt())
    plain.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    tested = _classifier(make_opt())
    schedule = tested.optimizer._learning_rate
    range_test(tested, (x, y), min_lr=1e-5, max_lr=1.0, steps=20, batch_size=16, verbose=0)
    assert tested.optimizer._learning_rate is schedule
    tested.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    for a, b in zip(plain.variables, tested.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.backends
def test_interrupt_restores_and_keeps_the_curve(monkeypatch):
    x, y = _cls_data()
    model = _classifier(keras.optimizers.SGD(0.01))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = _state(model)
    real = keras.utils.Progbar.update

    def update(self, current, values=None, **kw):
        if current == 5:
            raise KeyboardInterrupt
        return real(self, current, values, **kw)

    monkeypatch.setattr(keras.utils.Progbar, "update", update)
    monkeypatch.setattr("sys.stdout", _Terminal())  # Keras' bar is drawn on a terminal only
    with pytest.raises(KeyboardInterrupt) as info:
        range_test(model, (x, y), steps=50, batch_size=16, verbose=1)
    partial = info.value.range_test_result
    assert partial.stopped == "interrupted" and len(partial.frame) == 5
    for (p, a), (_, b) in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b, err_msg=p)


# ---------------------------------------------------------------- data kinds


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, bs):
        super().__init__()
        self.x, self.y, self.bs = x, y, bs
        self.epochs = 0

    def __len__(self):
        return len(self.x) // self.bs

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs += 1


@pytest.mark.backends
def test_arrays_dataset_and_pydataset_give_the_same_curve():
    x, y = _regression()
    kw = dict(min_lr=1e-3, max_lr=0.5, steps=12, verbose=0)
    a = range_test(_linear(), (x, y), batch_size=16, **kw)
    b = range_test(_linear(), tf.data.Dataset.from_tensor_slices((x, y)).batch(16), **kw)
    pyds = _Batches(x, y, 16)
    c = range_test(_linear(), pyds, **kw)
    np.testing.assert_array_equal(a.frame["loss"], b.frame["loss"])
    np.testing.assert_array_equal(a.frame["loss"], c.frame["loss"])
    assert pyds.epochs == 2  # 12 steps over 4 batches: three passes, two completed ends


@pytest.mark.backends
def test_multi_input_dict_model():
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(40, 2)).astype("f4"), rng.normal(size=(40, 1)).astype("f4")
    ia, ib = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([ia, ib]))
    model = keras.Model({"a": ia, "b": ib}, out)
    model.compile(optimizer="sgd", loss="mse")
    r = range_test(model, ({"a": xa, "b": xb}, xa[:, :1] - xb), steps=15, batch_size=8, verbose=0)
    assert len(r.frame) == 15 and np.isfinite(r.frame["loss"]).all()


@pytest.mark.backends
def test_data_errors_are_clear():
    x, y = _regression()
    with pytest.raises(DataError, match="different numbers of samples"):
        range_test(_linear(), (x, y[:10]), steps=10, verbose=0)
    with pytest.raises(DataError, match="cannot train on data of type"):
        range_test(_linear(), x, steps=10, verbose=0)
    with pytest.raises(DataError, match="cannot t"):
        range_test(_linear(), (np.ones((32, 5), "f4"), y[:32]), steps=10, verbose=0)
    with pytest.raises(ConfigError, match="not compiled"):
        range_test(keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)]), (x, y), verbose=0)
    with pytest.raises(ConfigError, match="min_lr"):
        range_test(_linear(), (x, y), min_lr=0.0, verbose=0)


def test_data_helpers():
    x, y = _regression(70)
    assert steps_per_epoch((x, y), 32) == 3
    ds = as_dataset((x, y), batch_size=32, drop_remainder=True)
    assert [int(b[0].shape[0]) for b in ds] == [32, 32]
    assert sum(1 for _ in take_batches(ds, 5)) == 5
    with pytest.raises(DataError, match="no samples"):
        as_dataset((np.zeros((0, 2)), np.zeros(0)))


def test_steps_none_starts_with_one_pass_clipped_to_100():
    x, y = _regression()
    r = range_test(_linear(), (x, y), min_lr=1e-4, max_lr=10.0, batch_size=8, verbose=0)
    assert r.meta["rounds"][0]["steps"] == 100  # 8 batches a pass, at least 100 steps


# ---------------------------------------------------------------- rounds (steps=None)
# The linear model on `_regression` is least squares on x ~ N(0, I): the loss's Hessian
# is 2 E[x x^T] ~ 2 I, so SGD contracts for lr < 1 and diverges above it (2 / lambda).


@pytest.mark.backends
def test_a_range_that_diverges_at_once_is_rerun_lower_and_then_read():
    x, y = _regression(256)
    r = range_test(_linear(), (x, y), min_lr=30.0, max_lr=3000.0, batch_size=8, verbose=0)
    first, last = r.meta["rounds"][0], r.meta["rounds"][-1]
    assert first["stopped"] == "diverged" and "few_points" in first["problems"]
    assert last["min_lr"] == pytest.approx(30.0 / 100**(len(r.meta["rounds"]) - 1))
    assert last["max_lr"] < 3000.0  # cut above where the first round blew up
    # the loss minimum sits below the divergence at lr ~ 1 and above 1/10 of it
    assert 0.05 < r.suggestion.min_loss_lr < 1.5 and r.suggestion.max_lr < 1.0


def test_a_noisy_first_round_is_rerun_with_three_times_the_steps():
    # `_regression` shifts the targets by 3 every other batch: a sawtooth of batch losses
    x, y = _regression()
    r = range_test(_linear(), (x, y), min_lr=1e-4, max_lr=10.0, batch_size=8, verbose=0)
    rounds = r.meta["rounds"]
    assert "noisy" in rounds[0]["problems"] and rounds[0]["stopped"] == "diverged"
    assert [q["steps"] for q in rounds] == [100, 300, 900]  # noisy still: 3 rounds, no more
    # each round ends at 3x the rate where the one before diverged (SGD: above lr ~ 1)
    for before, after in zip(rounds, rounds[1:]):
        assert 1.0 < after["max_lr"] < before["max_lr"]
    assert r.meta["max_lr"] == rounds[-1]["max_lr"] and "noisy" in r.suggestion.problems


def test_explicit_steps_run_exactly_once_even_on_a_bad_curve(caplog):
    x, y = _regression()
    with caplog.at_level("WARNING", logger="lrsearch"):
        r = range_test(_linear(), (x, y), min_lr=1e-4, max_lr=1e-2, steps=40, batch_size=8, verbose=1)
    assert len(r.frame) == 40 and len(r.meta["rounds"]) == 1
    assert r.suggestion.problems  # a poor curve, returned as it is ...
    logged = [rec.getMessage() for rec in caplog.records if "range-test curve" in rec.getMessage()]
    assert len(logged) == len(r.suggestion.warnings)  # ... its warnings logged once
    r.suggestion  # reading it again logs nothing more
    assert len([rec for rec in caplog.records if "range-test curve" in rec.getMessage()]) == len(logged)
    caplog.clear()
    with caplog.at_level("WARNING", logger="lrsearch"):  # a quiet caller (auto, a sweep) tells them itself
        range_test(_linear(), (x, y), min_lr=1e-4, max_lr=1e-2, steps=40, batch_size=8, verbose=0)
    assert not [rec for rec in caplog.records if "range-test curve" in rec.getMessage()]


def test_a_curve_that_never_falls_raises_curve_error_after_the_last_round():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, D)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")  # no signal: w = 0 is already best
    # it blows up late in each round (lr ~ 1, not in the first third): a slower ramp
    # is tried, not lower rates
    with pytest.raises(CurveError, match=r"after 3 rounds \(100 steps 0.001 .*; 300 steps .*; 900 steps"):
        range_test(_linear(), (x, y), min_lr=1e-3, max_lr=100.0, batch_size=8, verbose=0)


# ---------------------------------------------------------------- files


def test_save_and_load_round_trip(tmp_path):
    x, y = _regression()
    xv, yv = _regression(16, seed=2)
    r = range_test(_linear(), (x, y), min_lr=1e-4, max_lr=10.0, steps=60, batch_size=8,
                   validation_data=(xv, yv), verbose=0)
    path = r.save(tmp_path / "curve.csv")
    meta = json.loads((tmp_path / "curve.meta.json").read_text())
    assert meta["format"] == "lrsearch.range_test" and meta["steps"] == 60
    back = RangeTestResult.load(path)
    pd.testing.assert_frame_equal(back.frame, r.frame)
    assert back.suggestion == r.suggestion
    # a CSV from elsewhere with only lr and loss
    r.frame[["lr", "loss"]].to_csv(tmp_path / "other.csv", index=False)
    other = RangeTestResult.load(tmp_path / "other.csv")
    np.testing.assert_allclose(other.frame["smooth_loss"], r.frame["smooth_loss"])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CurveError, match="no column lr, loss"):
        RangeTestResult.load(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="no range-test file"):
        RangeTestResult.load(tmp_path / "missing.csv")


@pytest.mark.parametrize("kwargs,message", [
    ({"max_lr": "1"}, "Argument `max_lr` must be a number. Received: max_lr='1'"),
    ({"min_lr": 1e-320}, "Argument `min_lr` must be a learning rate from 1.175e-38 (float32's smallest normal "
                         "number) to 1e+06. Received: min_lr=1e-320"),
    ({"max_lr": 1e7}, "Argument `max_lr` must be a learning rate from 1.175e-38"),
    ({"steps": "many"}, "Argument `steps` must be a number. Received: steps='many'"),
    ({"smooth": "high"}, "Argument `smooth` must be a number. Received: smooth='high'"),
    ({"mode": "log"}, "Argument `mode` must be one of ('exp', 'linear'). Received: mode='log'"),
])
def test_arguments_of_the_wrong_type_or_beyond_a_float32_are_refused_in_keras_shape(kwargs, message):
    x, y = _regression()
    with pytest.raises(ConfigError) as info:
        range_test(_linear(), (x, y), verbose=0, **kwargs)
    assert str(info.value).startswith(message)
