"""A tiny digits classifier and data shared by the study tests and their worker script."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lrsearch.rangetest.analysis import LRSuggestion  # noqa: E402

# Bounds of the kind a range test finds for this model (SGD, momentum 0.9).
SUGGESTION = LRSuggestion(
    base_lr=0.003, max_lr=0.3, steepest_lr=0.03, valley_lr=0.05, min_loss_lr=0.6, warnings=()
)


def digits(n_train: int = 512, n_val: int = 256, one_hot: bool = False):
    """8x8 digits scaled to [0, 1]: `(x, y), (x_val, y_val)` (no download)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order].astype("int32")
    if one_hot:
        y = np.eye(10, dtype="float32")[y]
    return (x[:n_train], y[:n_train]), (x[n_train : n_train + n_val], y[n_train : n_train + n_val])


def build_model(one_hot: bool = False, optimizer: str = "sgd") -> keras.Model:
    """64 -> Dense(32, relu) -> Dense(10, softmax); SGD(momentum=0.9) at Keras' default
    rate, or Adam at its default rate."""
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
         keras.layers.Dense(10, activation="softmax")],
        name="digits",
    )
    opt = keras.optimizers.SGD(momentum=0.9) if optimizer == "sgd" else keras.optimizers.Adam()
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
    return model
