"""Per-trial overhead of `lrsearch.tune` against a bare `model.fit` of the same epochs.

A bare fit builds a fresh model, traces its train step and trains the epochs. A study
trial also samples its parameters, writes its schedules into the optimizer, evaluates
them inside the train step, records every epoch in the SQLite storage and reports to the
pruner; with `reuse=True` (the default) it trains one shared model, reset between
trials, so only a study's first trial builds and traces (`lrsearch.reuse`); with
`reuse=False` each trial builds, recompiles and retraces (the behaviour before).

    python scripts/bench_trial_overhead.py [--rounds 8] [--epochs 5] [--samples 1024]

Each round runs a bare fit at a constant rate, a bare fit with a trial's optimizer and
schedules (what the in-step schedules cost apart from the study), then adds trials to a
study on the shared model and to one that rebuilds; `--block` trials per call (one
`tune` call, so the shared model lives for the block). Prints a markdown table of median
seconds and ratios to the bare fit (target: a trial on the shared model <= 1.05 of a
bare fit), the mean over each block with its first trial's build and trace included,
and each `tune` call's wall time per trial (checks, storage, tables included).
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


def more_trials(train, val, epochs: int, batch_size: int, out: Path, name: str, trials: int,
                reuse: bool) -> tuple[list[float], float, ScheduleSpec]:
    """Add `trials` trials to study `name` in one `tune` call: (each trial's duration as
    Optuna records it, the call's wall time, the last trial's schedules)."""
    called = time.perf_counter()
    result = tune(build_model, train, validation_data=val, suggestion=BOUNDS, epochs=epochs,
                  trials=trials, batch_size=batch_size, out_dir=out / name, study_name=name,
                  pruner="none", seed=0, reuse=reuse)
    wall = time.perf_counter() - called
    spec = ScheduleSpec.from_dict(result.study.trials[-1].user_attrs["spec"])
    return [float(d) for d in result.trials["duration_s"].iloc[-trials:]], wall, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block", type=int, default=4, help="trials per tune call")
    args = parser.parse_args()
    train, val = data(args.samples)
    bare_fit(train, val, 1, args.batch_size)  # warm up TensorFlow itself

    bare: list[float] = []
    scheduled: list[float] = []
    shared: list[float] = []
    firsts: list[float] = []
    block_means: list[float] = []
    rebuilt: list[float] = []
    calls = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        *_, spec = more_trials(train, val, args.epochs, args.batch_size, Path(tmp), "warm", 1, False)
        for _ in range(args.rounds):  # alternate, so that machine load hits each alike
            bare.append(bare_fit(train, val, args.epochs, args.batch_size))
            scheduled.append(scheduled_fit(train, val, args.epochs, args.batch_size, spec))
            durations, wall, spec = more_trials(train, val, args.epochs, args.batch_size, Path(tmp),
                                                "shared", args.block, True)
            firsts.append(durations[0])
            shared.extend(durations[1:])
            block_means.append(statistics.fmean(durations))
            calls[True].append(wall / args.block)
            durations, wall, _ = more_trials(train, val, args.epochs, args.batch_size,
                                             Path(tmp), "rebuilt", args.block, False)
            rebuilt.extend(durations)
            calls[False].append(wall / args.block)

    b = statistics.median(bare)
    rows = [
        ("bare `fit` (fresh model, Keras SGD, constant rate)", bare),
        ("bare `fit` with a trial's optimizer and schedules", scheduled),
        ("study trial, fresh model each (`reuse=False`, before)", rebuilt),
        ("`tune` call per trial, fresh model each (+ checks, storage, tables)", calls[False]),
        ("study trial on the shared model (`reuse=True`), after the first", shared),
        ("first trial of a `tune` call on the shared model (builds, traces)", firsts),
        (f"mean trial of a `tune` call of {args.block} on the shared model, first included", block_means),
        ("`tune` call per trial on the shared model (+ checks, storage, tables)", calls[True]),
    ]
    steps = -(-args.samples // args.batch_size)
    print(f"{args.epochs} epochs x {steps} steps, batch {args.batch_size}, {args.rounds} "
          f"alternating rounds of {args.block} trials per study, SQLite storage\n")
    print("| run | median s | ratio to bare fit | fastest s |")
    print("|---|---|---|---|")
    for label, values in rows:
        m = statistics.median(values)
        print(f"| {label} | {m:.3f} | {m / b:.3f} | {min(values):.3f} |")
    ratio = statistics.median(shared) / b
    before = statistics.median(rebuilt) / b
    print(f"\nfastest of each (machine load only adds time), shared-model trial / bare fit: "
          f"{min(shared) / min(bare):.3f}; fresh-model trial / bare fit: {min(rebuilt) / min(bare):.3f}")
    print(f"the study's own cost per trial on the shared model, against the bare fit with the "
          f"same schedules: {statistics.median(shared) - statistics.median(scheduled):+.3f} s\n")
    print(f"target: per-trial overhead, trial / bare fit = {ratio:.3f} <= 1.05 (fresh model each: "
          f"{before:.3f}): {'met' if ratio <= 1.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
