"""Per-trial overhead of `lrsearch.tune` against a bare `model.fit` of the same epochs.

A trial does what a bare fit does (a fresh model, its traced train step, the epochs)
plus sampling the trial's parameters, rebuilding the optimizer around the schedules,
recompiling, evaluating the schedules inside the train step, recording every epoch in
the SQLite storage and reporting to the pruner. This measures what that costs.

    python scripts/bench_trial_overhead.py [--trials 6] [--epochs 5] [--samples 1024]

Prints a markdown table: median seconds per bare fit and per trial, and their ratio
(target: <= 1.05). Bare fits and studies alternate so that machine load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from lrsearch.analysis import LRSuggestion  # noqa: E402
from lrsearch.study import tune  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
BOUNDS = LRSuggestion(base_lr=0.003, max_lr=0.3, steepest_lr=0.03, valley_lr=0.05,
                      min_loss_lr=0.6)


def build_model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
         keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n: int):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    reps = -(-(n + 512) // len(x))
    x, y = np.tile(x, (reps, 1)), np.tile(y, reps)
    return (x[:n], y[:n]), (x[n : n + 512], y[n : n + 512])


def bare_fit(train, val, epochs: int, batch_size: int) -> float:
    start = time.perf_counter()
    model = build_model()
    model.fit(*train, validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
              verbose=0)
    keras.backend.clear_session(free_memory=False)  # as tune does between trials
    return time.perf_counter() - start


def study_trials(train, val, epochs: int, batch_size: int, trials: int, out: Path,
                 name: str) -> tuple[list[float], float, float]:
    """Each trial's own duration, the cycle per trial (first trial's start to the last
    one's end, over the trials: sampling and between-trial work included) and the
    one-time set-up of the call (checks, storage, study creation)."""
    called = time.time()
    result = tune(build_model, train, validation_data=val, suggestion=BOUNDS, epochs=epochs,
                  trials=trials, batch_size=batch_size, out_dir=out / name, study_name=name,
                  pruner="none", seed=0)
    t = result.trials
    first = t["started"].iloc[0].timestamp()
    end = t["started"].iloc[-1].timestamp() + t["duration_s"].iloc[-1]
    return t["duration_s"].tolist(), (end - first) / trials, first - called


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    train, val = data(args.samples)
    bare_fit(train, val, 1, args.batch_size)  # warm up TensorFlow itself

    bare: list[float] = []
    trial: list[float] = []
    cycles: list[float] = []
    setups: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for _ in range(args.trials):
                bare.append(bare_fit(train, val, args.epochs, args.batch_size))
            durations, cycle, setup = study_trials(train, val, args.epochs, args.batch_size,
                                                   args.trials, Path(tmp), f"bench{r}")
            trial += durations
            cycles.append(cycle)
            setups.append(setup)

    b, t, c = statistics.median(bare), statistics.median(trial), statistics.median(cycles)
    steps = -(-args.samples // args.batch_size)
    print(f"{args.epochs} epochs x {steps} steps, batch {args.batch_size}, "
          f"{args.rounds} x {args.trials} runs each, SQLite storage\n")
    print("| run | median s | ratio to bare fit |")
    print("|---|---|---|")
    print(f"| bare `fit` (fresh model) | {b:.3f} | 1.000 |")
    print(f"| study trial (Optuna duration) | {t:.3f} | {t / b:.3f} |")
    print(f"| study cycle per trial (sampling, storage, between trials) | {c:.3f} | {c / b:.3f} |")
    print(f"\nOne-time set-up per `tune` call (checks, storage, study): "
          f"{statistics.median(setups):.2f} s")


if __name__ == "__main__":
    main()
