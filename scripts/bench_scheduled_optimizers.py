"""Cost of scheduling rate, momentum and weight decay inside the compiled train step.

Trains the same small MLP on scikit-learn's digits with Keras' SGD (constants: the
baseline), Keras' SGD with a one-cycle rate, lrsearch's SGD with constants, lrsearch's
SGD with rate + momentum + weight-decay schedules, and Keras' SGD driven by a per-batch
Python callback (the pattern lrsearch avoids), then Keras' AdamW next to lrsearch's
Schedule-Free AdamW and SGD (whose update does more per step). Prints a markdown table of milliseconds
per step (best of `--repeats`, after a warm-up epoch that traces the step) and the
ratio to the baseline measured in the same run.

    python -m scripts.bench_scheduled_optimizers [--epochs 3] [--repeats 5] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from lrsearch import optimizers  # noqa: E402
from lrsearch.schedules import OneCycle, WarmupCosine  # noqa: E402
from scripts.setups import scaled_digits  # noqa: E402


class PerBatchLR(keras.callbacks.Callback):
    """The classic callback: set the rate from Python before every batch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(float(self.schedule(self.step)))
        self.step += 1


def build(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    x, y = scaled_digits()
    steps_per_epoch = -(-len(x) // args.batch_size)
    total = steps_per_epoch * (args.epochs + 1)

    def one_cycle():
        return OneCycle(0.1, total)

    variants = {
        "Keras SGD, constants (baseline)": lambda: (keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=5e-4), []),
        "Keras SGD, OneCycle rate": lambda: (keras.optimizers.SGD(one_cycle(), momentum=0.9), []),
        "lrsearch SGD, constants": lambda: (optimizers.SGD(0.05, momentum=0.9, weight_decay=5e-4, decay_all=True), []),
        "lrsearch SGD, rate + momentum + weight-decay schedules": lambda: (
            optimizers.SGD(one_cycle(), momentum=one_cycle().momentum_schedule(),
                           weight_decay=WarmupCosine(5e-4, total)),
            [],
        ),
        "Keras SGD, rate set by a per-batch callback": lambda: (
            keras.optimizers.SGD(0.05, momentum=0.9), [PerBatchLR(one_cycle())]
        ),
        "Keras AdamW, constants": lambda: (keras.optimizers.AdamW(2.5e-3, weight_decay=5e-4), []),
        "lrsearch ScheduleFreeAdamW": lambda: (
            optimizers.ScheduleFreeAdamW(2.5e-3, warmup_steps=50, weight_decay=5e-4), []
        ),
        "lrsearch ScheduleFreeSGD": lambda: (optimizers.ScheduleFreeSGD(0.5, warmup_steps=50), []),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeats):  # round robin, so a busy moment hits every variant alike
        for name, make in variants.items():
            optimizer, callbacks = make()
            model = build(optimizer)
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=callbacks)  # trace
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=callbacks)
            best[name] = min(best[name], (time.perf_counter() - start) / (args.epochs * steps_per_epoch))
            keras.backend.clear_session()
    rows = [(name, seconds * 1e3) for name, seconds in best.items()]

    base = rows[0][1]
    print(f"{steps_per_epoch} steps per epoch, {args.epochs} epochs timed, best of {args.repeats}\n")
    print("| optimizer | ms / step | ratio to baseline |")
    print("|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
