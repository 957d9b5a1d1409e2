"""Small helpers shared by the example studies: digits data, repeated fits, tables.

Not part of the lrsearch package; each study adds this folder to `sys.path`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402


def digits(images: bool = True, validation: int = 360, seed: int = 0):
    """scikit-learn's bundled 8x8 digits: ((x_train, y_train), (x_val, y_val)), pixels in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    if images:
        x = x.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:validation], order[validation:]
    return (x[train], y[train].astype("int32")), (x[val], y[val].astype("int32"))


def mlp() -> keras.Model:
    """A fresh compiled 64-64-10 MLP with SGD, momentum 0.9 (a study replaces the rate)."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fit(build: Callable[[], keras.Model], train, val, *, epochs: int, batch_size: int = 32,
        seeds: Sequence[int] = (0, 1, 2), callbacks: Callable[[], list] | None = None) -> dict[str, Any]:
    """Train `build()` once per seed; mean and spread of the final and best validation accuracy."""
    finals, bests, losses, ran = [], [], [], []
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        model = build()
        history = model.fit(*train, validation_data=val, epochs=epochs, batch_size=batch_size, verbose=0,
                            callbacks=callbacks() if callbacks else None).history
        finals.append(history["val_accuracy"][-1])
        bests.append(max(history["val_accuracy"]))
        losses.append(history["val_loss"][-1])
        ran.append(len(history["val_accuracy"]))
        keras.backend.clear_session()
    return {
        "final val acc": f"{np.mean(finals):.4f} ± {np.std(finals):.4f}",
        "best val acc": f"{np.mean(bests):.4f}",
        "final val loss": f"{np.mean(losses):.4f}",
        "epochs run": f"{np.mean(ran):.1f}",
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts with the same keys as a markdown table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)
