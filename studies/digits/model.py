"""A small CNN on scikit-learn's bundled 8x8 digits: the README's first example.

`lrsearch auto studies/digits/model.py` imports this file, calls `load_data()` once and
`build_model()` once per range test, sweep value and trial.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

VALIDATION = 360  # of 1797 images; the rest (1437) train


def load_data():
    """((x_train, y_train), (x_val, y_val)): 8x8x1 images scaled to [0, 1], labels 0-9.

    The split is a fixed permutation, so every run and every trial sees the same data.
    """
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    y = y.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    val, train = order[:VALIDATION], order[VALIDATION:]
    return (x[train], y[train]), (x[val], y[val])


def build_model() -> keras.Model:
    """A fresh compiled CNN (about 8.7k parameters), plain SGD with momentum.

    The optimizer's rate is only a starting point: the range test replaces it, and each
    trial rebuilds the optimizer with its own schedules.
    """
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
