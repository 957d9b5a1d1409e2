"""Cost of scheduling rate, momentum and weight decay inside the compiled train step.

Trains the same small MLP on scikit-learn's digits with Keras' SGD (constants: the
baseline), Keras' SGD with a one-cycle rate, lrsearch's SGD with constants, lrsearch's
SGD with rate + momentum + weight-decay schedules, and Keras' SGD driven by a per-batch
Python callback (the pattern lrsearch avoids), then Keras' AdamW next to lrsearch's
Schedule-Free AdamW and SGD (whose update does more per step). Prints a markdown table of milliseconds
per step, wall clock and processor time, each the best epoch of `--epochs` x `--repeats`
(after a warm-up epoch that traces the step; a short window is more often one the other
processes of a shared machine left alone), the ratios to the baseline measured in the same
run, and the operations in the graph of one optimizer step (TensorFlow: `optimizer.apply`
traced alone, a count that machine load cannot move). Target: the three schedules cost at
most 1.1 x the baseline's step (wall clock).

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
from scripts.common import target_line  # noqa: E402
from scripts.setups import scaled_digits  # noqa: E402

BASELINE = "Keras SGD, constants (baseline)"
SCHEDULED = "lrsearch SGD, rate + momentum + weight-decay schedules"
TARGET = 1.1


class PerBatchLR(keras.callbacks.Callback):
    """The classic callback: set the rate from Python before every batch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(float(self.schedule(self.step)))
        self.step += 1


class EpochClock(keras.callbacks.Callback):
    """Wall-clock and processor seconds of each epoch (no batch hooks: costs nothing per step)."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))


def build(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def step_ops(make, model) -> int | None:
    """Operations in the TensorFlow graph of one `apply` of a fresh optimizer from `make`
    on `model`'s variables (its cond branches included); `None` on another backend."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    optimizer, _ = make()
    variables = model.trainable_variables
    optimizer.build(variables)
    grads = [tf.zeros_like(v) for v in variables]
    graph = tf.function(lambda: optimizer.apply(grads, variables)).get_concrete_function().graph
    return len(graph.get_operations()) + sum(len(f.node_def) for f in graph.as_graph_def().library.function)


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
        BASELINE: lambda: (keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=5e-4), []),
        "Keras SGD, OneCycle rate": lambda: (keras.optimizers.SGD(one_cycle(), momentum=0.9), []),
        "lrsearch SGD, constants": lambda: (optimizers.SGD(0.05, momentum=0.9, weight_decay=5e-4, decay_all=True), []),
        SCHEDULED: lambda: (
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
    wall = dict.fromkeys(variants, float("inf"))
    cpu = dict.fromkeys(variants, float("inf"))
    ops = dict.fromkeys(variants)
    for _ in range(args.repeats):  # round robin, so a busy moment hits every variant alike
        for name, make in variants.items():
            optimizer, callbacks = make()
            model = build(optimizer)
            if ops[name] is None:
                ops[name] = step_ops(make, model)
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=callbacks)  # trace
            clock = EpochClock()
            model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[*callbacks, clock])
            wall[name] = min(wall[name], *(w / steps_per_epoch for w, _ in clock.epochs))
            cpu[name] = min(cpu[name], *(c / steps_per_epoch for _, c in clock.epochs))
            keras.backend.clear_session()

    base, base_cpu = wall[BASELINE], cpu[BASELINE]
    print(f"{steps_per_epoch} steps per epoch; best of {args.epochs} epochs x {args.repeats} repeats\n")
    print("| optimizer | ms / step | ratio to baseline | processor ms / step | ratio to baseline "
          "| graph ops of one optimizer step |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in variants:
        print(f"| {name} | {wall[name] * 1e3:.3f} | {wall[name] / base:.2f} | {cpu[name] * 1e3:.3f} "
              f"| {cpu[name] / base_cpu:.2f} | {'-' if ops[name] is None else ops[name]} |")
    ratio = wall[SCHEDULED] / base
    print()
    print(target_line(f"rate + momentum + weight-decay schedules in the step: {ratio:.2f} x the "
                      f"constant-rate baseline <= {TARGET}", ratio <= TARGET))


if __name__ == "__main__":
    main()
