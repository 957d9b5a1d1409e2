"""One range test on the backend named by KERAS_BACKEND, from weights given as NumPy arrays.

Run as a script by `tests/test_backends.py` (a backend is chosen once per process).
Backends' initializers differ, so the weights are set from a seeded NumPy generator;
the model has no dropout, so the same batches give the same curve up to float rounding.
Prints one JSON line: the backend, the rates and the losses.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lrsearch.rangetest.finder import range_test  # noqa: E402


def main(steps: int) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (np.tanh(x @ rng.normal(size=(6, 1))) + 0.1 * rng.normal(size=(256, 1))).astype("float32")
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="tanh"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.set_weights([(0.5 * rng.normal(size=w.shape)).astype("float32") for w in model.get_weights()])
    r = range_test(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=steps, batch_size=32, verbose=0)
    print(json.dumps({"backend": keras.backend.backend(), "lr": r.frame["lr"].tolist(),
                      "loss": r.frame["loss"].tolist()}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
