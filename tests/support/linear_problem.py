"""The linear regression both optimizer transcriptions (Schedule-Free, Prodigy) are
stepped on: data, a Keras model of it, and the exact gradient of its mse loss."""

from __future__ import annotations

import keras
import numpy as np

N, D, O = 8, 3, 2  # batch, inputs, outputs of the linear model


def data(batches: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batches * N, D)).astype("float32")
    t = (x @ rng.normal(size=(D, O)) + 0.3).astype("float32")
    return x, t


def linear_model(optimizer, seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(O, bias_initializer="glorot_uniform")])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def grads(params, x, t):
    """Gradient of Keras' mse (mean over outputs and batch) of `x @ W + b` against `t`."""
    w, b = params
    err = x @ w + b - t
    return [2.0 / err.size * x.T @ err, 2.0 / err.size * err.sum(axis=0)]
