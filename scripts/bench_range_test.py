"""Cost of a range test against `model.fit` over the same batches (target: ratio <= 1.05).

Both sides start from a freshly built and compiled model, so both include tracing their
train step; the range test also includes its snapshot and restore. "ratio" compares the
whole calls; "ratio per step" the marginal cost of a step, from runs of `steps` and
`2 * steps` batches (tracing and set-up cancel out). Runs alternate; medians of
`--repeats`. The target applies to "ratio", the whole calls.

    python -m scripts.bench_range_test [--steps 300] [--repeats 5] [--batch-size 32]

Prints a markdown table and one `target:` line per model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import lrsearch  # noqa: E402
from scripts.common import print_table, target_line  # noqa: E402
from scripts.setups import dropout_mlp, scaled_digits  # noqa: E402

TARGET = 1.05


def cnn() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(name, build, x, y, steps, batch_size, repeats):
    """Median seconds of both sides for `steps` and `2 * steps` batches, fresh models."""
    base = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)
    times = {("rt", 1): [], ("fit", 1): [], ("rt", 2): [], ("fit", 2): []}

    def run(kind, k):
        n = k * steps
        ds = base.repeat().take(n)
        model = build()
        if kind == "rt":
            return timed(lambda: lrsearch.range_test(
                model, ds, min_lr=1e-5, max_lr=1e-2, steps=n, diverge=0, verbose=0))
        return timed(lambda: model.fit(ds, epochs=1, verbose=0, shuffle=False))

    order = list(times)
    for i in range(repeats):
        for key in order if i % 2 == 0 else order[::-1]:
            times[key].append(run(*key))
            keras.backend.clear_session()
    med = {key: statistics.median(v) for key, v in times.items()}
    fit_step = (med[("fit", 2)] - med[("fit", 1)]) / steps
    rt_step = (med[("rt", 2)] - med[("rt", 1)]) / steps
    return {
        "model": name,
        "steps": steps,
        "fit s": med[("fit", 1)],
        "range test s": med[("rt", 1)],
        "ratio": med[("rt", 1)] / med[("fit", 1)],
        "fit ms/step": 1e3 * fit_step,
        "range test ms/step": 1e3 * rt_step,
        "ratio per step": rt_step / fit_step,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    x, y = scaled_digits()
    y = y.astype("int32")
    keras.utils.set_random_seed(0)
    rows = [
        bench("MLP 64-64-10, SGD", dropout_mlp, x, y, args.steps, args.batch_size, args.repeats),
        bench("CNN 16c3-BN-10, Adam", cnn, x.reshape(-1, 8, 8, 1), y, args.steps,
              args.batch_size, args.repeats),
    ]
    print(f"Range test vs model.fit over the same {args.steps} batches of {args.batch_size} "
          f"(median of {args.repeats}; target ratio <= {TARGET})\n")
    print_table(rows)
    print()
    for r in rows:
        print(target_line(f"{r['model']}: range test / fit = {r['ratio']:.3f} <= {TARGET}", r["ratio"] <= TARGET))


if __name__ == "__main__":
    main()
