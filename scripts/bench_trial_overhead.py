"""Per-trial overhead of `lrsearch.tune` against a bare `model.fit` of the same epochs.

A trial does what a bare fit does (a fresh model, its traced train step, the epochs)
plus sampling the trial's parameters, rebuilding the optimizer around the schedules,
recompiling, evaluating the schedules inside the train step, recording every epoch in
the SQLite storage and reporting to the pruner. This measures what that costs.

    python scripts/bench_trial_overhead.py [--rounds 8] [--epochs 5] [--samples 1024]

Three runs per round: a bare fit at a constant rate, one trial, and a bare fit with that
trial's optimizer and schedules; the last separates what the in-step schedules cost
from what the study adds around them.

Prints a markdown table: median seconds per bare fit and per trial, and their ratio
(target: <= 1.05). Bare fits and trials alternate so that machine load hits both alike;
each round adds one trial to the same study (`tune(trials=1)`, resumed), so the
per-call set-up (checks, storage, tables) shows separately.
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
from lrsearch.spec import ScheduleSpec  # noqa: E402
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


def scheduled_fit(train, val, epochs: int, batch_size: int, spec: ScheduleSpec) -> float:
    """A bare fit with the optimizer and schedules a trial used (no study around it)."""
    start = time.perf_counter()
    model = build_model()
    model.compile(optimizer=spec.build_optimizer(), loss=model.loss, metrics=["accuracy"])
    model.fit(*train, validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True,
              verbose=0)
    keras.backend.clear_session(free_memory=False)
    return time.perf_counter() - start


def one_more_trial(train, val, epochs: int, batch_size: int,
                   out: Path) -> tuple[float, float, ScheduleSpec]:
    """Run one more trial of the benchmark study: (the trial's own duration as Optuna
    records it, the whole call's wall time, the trial's schedules)."""
    called = time.perf_counter()
    result = tune(build_model, train, validation_data=val, suggestion=BOUNDS, epochs=epochs,
                  trials=1, batch_size=batch_size, out_dir=out, study_name="bench",
                  pruner="none", seed=0)
    wall = time.perf_counter() - called
    spec = ScheduleSpec.from_dict(result.study.trials[-1].user_attrs["spec"])
    return float(result.trials["duration_s"].iloc[-1]), wall, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    train, val = data(args.samples)
    bare_fit(train, val, 1, args.batch_size)  # warm up TensorFlow itself

    bare: list[float] = []
    scheduled: list[float] = []
    trial: list[float] = []
    calls: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        one_more_trial(train, val, args.epochs, args.batch_size, Path(tmp))  # creates the study
        for _ in range(args.rounds):  # alternate, so that machine load hits both alike
            bare.append(bare_fit(train, val, args.epochs, args.batch_size))
            duration, wall, spec = one_more_trial(train, val, args.epochs, args.batch_size,
                                                  Path(tmp))
            trial.append(duration)
            calls.append(wall)
            scheduled.append(scheduled_fit(train, val, args.epochs, args.batch_size, spec))

    b, t, c = statistics.median(bare), statistics.median(trial), statistics.median(calls)
    sf = statistics.median(scheduled)
    ratios = [tt / bb for tt, bb in zip(trial, bare)]
    own = [tt / ss for tt, ss in zip(trial, scheduled)]
    steps = -(-args.samples // args.batch_size)
    print(f"{args.epochs} epochs x {steps} steps, batch {args.batch_size}, {args.rounds} "
          f"alternating rounds, SQLite storage\n")
    print("| run | median s | ratio to bare fit |")
    print("|---|---|---|")
    print(f"| bare `fit` (fresh model, Keras SGD, constant rate) | {b:.3f} | 1.000 |")
    print(f"| bare `fit` with the trial's optimizer and schedules | {sf:.3f} | {sf / b:.3f} |")
    print(f"| study trial (sample, build, schedules, fit, records) | {t:.3f} | {t / b:.3f} |")
    print(f"| `tune(trials=1)` call (+ checks, storage, tables) | {c:.3f} | {c / b:.3f} |")
    print(f"\nmedian per-round ratio, trial / bare constant-rate fit: "
          f"{statistics.median(ratios):.3f}")
    print(f"median per-round ratio, trial / fit with the same schedules (the study's own "
          f"overhead): {statistics.median(own):.3f}")
    print(f"fastest of {args.rounds} runs each (machine load only adds time), trial / bare "
          f"fit: {min(trial) / min(bare):.3f}; trial / fit with the same schedules: "
          f"{min(trial) / min(scheduled):.3f}")
    extra = statistics.median([tt - ss for tt, ss in zip(trial, scheduled)])
    print(f"the study's own cost per trial (sampling, storage writes, per-epoch records): "
          f"{extra:.3f} s, a fixed cost that longer trials amortize\n")
    ratio = statistics.median(ratios)
    print(f"target: per-trial overhead, trial / bare fit = {ratio:.3f} <= 1.05: "
          f"{'met' if ratio <= 1.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
