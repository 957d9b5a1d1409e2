"""The range test on every backend: data kinds, bad batches, what the model holds after
the test, TensorFlow-only features refused elsewhere, and the same curve on all three.

The hand-computed trajectories and the bit-exact restore are in `tests/rangetest/test_finder.py`
(marked `backends`); run these with `KERAS_BACKEND=jax python -m pytest -m backends ...`.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from lrsearch.core.errors import ConfigError, DataError
from lrsearch.rangetest.finder import lr_sweep, range_test
from tests.support import ROOT, SUPPORT

BACKEND = keras.backend.backend()
D = 3


class _Terminal(io.StringIO):
    """A stream that reports itself as a terminal (the bytes written are kept)."""

    def isatty(self):
        return True


def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype("float32")
    y = x @ np.array([1.5, -2.0, 0.5]) + 3.0 * (np.arange(n) // 8 % 2)
    return x, y.astype("float32")[:, None]


def _linear(**compile_kw):
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", **compile_kw)
    return model


def _sgd(x, y, lrs, bs):
    """Plain SGD on mean squared error from w = 0, in float64: (losses, final weights)."""
    w, losses = np.zeros(D), []
    per_pass = len(x) // bs
    for i, lr in enumerate(lrs):
        s = slice(i % per_pass * bs, i % per_pass * bs + bs)
        xb, yb = x[s].astype(np.float64), y[s, 0].astype(np.float64)
        r = xb @ w - yb
        losses.append(np.mean(r**2))
        w = w - lr * 2 * r @ xb / bs
    return np.array(losses), w


@pytest.mark.backends
def test_without_restore_the_model_holds_the_weights_of_the_last_step():
    # on JAX the threaded state is written back to the variables when the test ends
    x, y = _regression()
    model = _linear()
    lrs = lr_sweep(1e-2, 0.2, 7)
    r = range_test(model, (x, y), min_lr=1e-2, max_lr=0.2, steps=7, batch_size=16, restore=False, verbose=0)
    losses, w = _sgd(x, y, lrs, 16)
    np.testing.assert_allclose(r.frame["loss"], losses, rtol=2e-5)
    np.testing.assert_allclose(model.layers[0].kernel.numpy()[:, 0], w, rtol=2e-5)
    assert int(model.optimizer.iterations.numpy()) == 7
    # the optimizer's own rate is back, and the next fit trains with it
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.0
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(model.layers[0].kernel.numpy()[:, 0], w, rtol=2e-5)


@pytest.mark.backends
def test_an_eager_step_records_the_same_trajectory():
    # run_eagerly: TensorFlow without tf.function, JAX without jit, PyTorch without compile
    x, y = _regression()
    r = range_test(_linear(run_eagerly=True), (x, y), min_lr=1e-2, max_lr=0.2, steps=6, batch_size=16, verbose=0)
    np.testing.assert_allclose(r.frame["loss"], _sgd(x, y, lr_sweep(1e-2, 0.2, 6), 16)[0], rtol=2e-5)


@pytest.mark.backends
def test_interrupt_without_restore_keeps_the_last_completed_step(monkeypatch):
    x, y = _regression()
    model = _linear()
    real = keras.utils.Progbar.update

    def update(self, current, values=None, **kw):
        if current == 4:
            raise KeyboardInterrupt
        return real(self, current, values, **kw)

    monkeypatch.setattr(keras.utils.Progbar, "update", update)
    monkeypatch.setattr("sys.stdout", _Terminal())  # Keras' bar is drawn on a terminal only
    with pytest.raises(KeyboardInterrupt) as info:
        range_test(model, (x, y), min_lr=1e-2, max_lr=0.2, steps=10, batch_size=16, restore=False, verbose=1)
    assert len(info.value.range_test_result.frame) == 4
    _, w = _sgd(x, y, lr_sweep(1e-2, 0.2, 10)[:4], 16)
    np.testing.assert_allclose(model.layers[0].kernel.numpy()[:, 0], w, rtol=2e-5)


@pytest.mark.backends
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_torch_dataloader_gives_the_curve_of_the_arrays():
    import torch

    x, y = _regression()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16, shuffle=False
    )
    kw = dict(min_lr=1e-3, max_lr=0.5, steps=10, verbose=0)
    a = range_test(_linear(), loader, **kw)  # 4 batches a pass, read 2.5 times
    expected, _ = _sgd(x, y, lr_sweep(1e-3, 0.5, 10), 16)
    np.testing.assert_allclose(a.frame["loss"], expected, rtol=2e-5)
    assert a.meta["batch_size"] is None


@pytest.mark.backends
def test_validation_loss_after_each_update():
    x, y = _regression(48)
    xv, yv = _regression(20, seed=1)  # batches of 16 and 4: the mean weighs samples
    r = range_test(_linear(), (x, y), min_lr=1e-3, max_lr=0.2, steps=5, batch_size=16,
                   validation_data=(xv, yv), verbose=0)
    w, val = np.zeros(D), []
    for i, lr in enumerate(lr_sweep(1e-3, 0.2, 5)):
        s = slice(i % 3 * 16, i % 3 * 16 + 16)
        r_ = x[s] @ w - y[s, 0]
        w = w - lr * 2 * r_ @ x[s] / 16
        val.append(np.mean((xv @ w - yv[:, 0]) ** 2))
    np.testing.assert_allclose(r.frame["val_loss"], val, rtol=2e-5)


def _labels_with_one_out_of_range():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, 3, 64)
    y[40] = 7  # batch 3 of 16
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    return model, x, y


@pytest.mark.backends
def test_a_label_out_of_range_mid_run():
    model, x, y = _labels_with_one_out_of_range()
    kw = dict(min_lr=1e-6, max_lr=1e-5, steps=6, batch_size=16, verbose=0)
    if BACKEND == "jax":
        # XLA raises nothing in a compiled step: the label is one-hot encoded as zeros,
        # so that sample adds no loss; with the weights near zero every other sample's
        # loss is log(3)
        r = range_test(model, (x, y), **kw)
        assert r.frame["loss"][2] == pytest.approx(np.log(3) * 15 / 16, rel=1e-4)
        assert r.frame["loss"][0] == pytest.approx(np.log(3), rel=1e-4)
        return
    cause = "label 7 out of range for 3 classes .labels must be 0 to 2."  # the same line on PyTorch
    with pytest.raises(DataError, match=f"{cause} in batch 3 of the training data \\(range-test step 3\\)"):
        range_test(model, (x, y), **kw)
    assert not model.layers[0].kernel.numpy().any()  # restored


@pytest.mark.backends
@pytest.mark.skipif(BACKEND == "tensorflow", reason="tf.distribute is TensorFlow's")
def test_a_tf_distribute_strategy_is_refused_with_one_line():
    x, y = _regression()
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(ConfigError, match="tf.distribute strategies need KERAS_BACKEND=tensorflow"):
            range_test(_linear(), (x, y), steps=5, verbose=0)


def test_a_keras_distribution_off_jax_is_refused_with_one_line(tmp_path):
    """Keras' distribution API is JAX's: on TensorFlow the range test and tune would train
    on one device, so they refuse it (here a mesh of the one CPU)."""
    from lrsearch.study.tune import tune

    x, y = _regression()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=["cpu:0"]))
    message = r"^keras.distribution needs KERAS_BACKEND=jax \(current: tensorflow\); .*MirroredStrategy on TensorFlow$"
    try:
        with pytest.raises(ConfigError, match=message):
            range_test(_linear(), (x, y), steps=5, verbose=0)
        with pytest.raises(ConfigError, match=message):
            tune(_linear, (x, y), validation_data=(x, y), bounds=(1e-3, 1e-1), epochs=1, trials=1,
                 out_dir=tmp_path)
    finally:
        keras.distribution.set_distribution(None)


@pytest.mark.slow
def test_jax_and_torch_give_tensorflow_s_curve():
    """Same model, initial weights, batches and rates: the first 20 losses agree to float
    tolerance (Adam on a tanh network, so every backend's kernels and update are used)."""
    curves = {}
    for backend in ("tensorflow", "jax", "torch"):
        if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
            pytest.skip(f"needs {backend}")
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, str(SUPPORT / "range_worker.py"), "20"], capture_output=True,
                              text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        curves[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert curves[backend]["backend"] == backend
    reference = curves["tensorflow"]
    assert len(reference["loss"]) == 20
    for backend in ("jax", "torch"):
        np.testing.assert_array_equal(curves[backend]["lr"], reference["lr"])
        np.testing.assert_allclose(curves[backend]["loss"], reference["loss"], rtol=1e-4, err_msg=backend)
