"""Per-trial overhead of `lrsearch.tune` against a bare `model.fit` of the same epochs.

A bare fit builds a fresh model, traces its train step and trains the epochs. A study
trial also samples its parameters, writes its schedules into the optimizer, evaluates
them inside the train step, records every epoch in the SQLite storage and reports to the
pruner; with `reuse=True` (the default) it trains one shared model, reset between
trials, so only a study's first trial builds and traces (`lrsearch.study.reuse`); with
`reuse=False` each trial builds, recompiles and retraces (the behaviour before).

    python -m scripts.bench_trial_overhead [--rounds 8] [--epochs 5] [--samples 1024]

Each round runs a bare fit with a trial's optimizer and schedules (what the in-step
schedules cost apart from the study), then `--block` trials in one `tune` call on the
shared model and `--block` in one that rebuilds, each trial followed by a bare fit at a
constant rate (from the study's after-trial callback, outside the trial's time), so each
ratio pairs a trial with the bare fit beside it under the same machine load. Prints a
markdown table of medians and paired ratios (target: a trial on the shared model <=
1.05 of a bare fit), the mean over a call with its first trial's build and trace
included, and each `tune` call's wall time per trial (checks, storage, tables).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from lrsearch.export.spec import ScheduleSpec  # noqa: E402
from lrsearch.rangetest.analysis import LRSuggestion  # noqa: E402
from lrsearch.study.backends import optuna_study as optuna_backend  # noqa: E402
from lrsearch.study.tune import tune  # noqa: E402
from scripts.setups import digits_mlp as build_model  # noqa: E402
from scripts.setups import scaled_digits  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
BOUNDS = LRSuggestion(base_lr=0.003, max_lr=0.3, steepest_lr=0.03, valley_lr=0.05,
                      min_loss_lr=0.6)


def data(n: int):
    x, y = scaled_digits()
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
                reuse: bool) -> tuple[list[float], list[float], float, ScheduleSpec]:
    """Add `trials` trials to study `name` in one `tune` call, a bare fit after each (run
    from the study's after-trial callback, outside the trial's own time), so a trial and
    its bare fit meet the same machine load: (each trial's duration as Optuna records
    it, the bare fits, the call's wall time without them, the last trial's schedules)."""
    bares: list[float] = []
    write_tables = optuna_backend.TablesWriter.__call__

    def then_bare_fit(self, study, trial):
        write_tables(self, study, trial)
        bares.append(bare_fit(train, val, epochs, batch_size))

    called = time.perf_counter()
    with mock.patch.object(optuna_backend.TablesWriter, "__call__", then_bare_fit):
        result = tune(build_model, train, validation_data=val, suggestion=BOUNDS, epochs=epochs,
                      trials=trials, batch_size=batch_size, out_dir=out / name, study_name=name,
                      pruner="none", seed=0, reuse=reuse)
    wall = time.perf_counter() - called - sum(bares)
    spec = ScheduleSpec.from_dict(result.study.trials[-1].user_attrs["spec"])
    return [float(d) for d in result.trials["duration_s"].iloc[-trials:]], bares, wall, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block", type=int, default=4, help="trials per tune call")
    args = parser.parse_args()
    train, val = data(args.samples)
    bare_fit(train, val, 1, args.batch_size)  # warm up TensorFlow itself

    runs: dict[str, list[float]] = {k: [] for k in ("bare", "scheduled", "shared", "first", "rebuilt")}
    ratios: dict[str, list[float]] = {k: [] for k in ("scheduled", "shared", "first", "rebuilt")}
    calls: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        *_, spec = more_trials(train, val, args.epochs, args.batch_size, Path(tmp), "warm", 1, False)
        for _ in range(args.rounds):
            scheduled = scheduled_fit(train, val, args.epochs, args.batch_size, spec)
            bare = bare_fit(train, val, args.epochs, args.batch_size)
            runs["scheduled"].append(scheduled)
            runs["bare"].append(bare)
            ratios["scheduled"].append(scheduled / bare)
            for reuse, name in ((True, "shared"), (False, "rebuilt")):
                durations, bares, wall, spec = more_trials(train, val, args.epochs, args.batch_size,
                                                           Path(tmp), name, args.block, reuse)
                calls[reuse].append(wall / args.block)
                runs["bare"].extend(bares)
                for i, (d, b) in enumerate(zip(durations, bares)):
                    kind = "first" if reuse and i == 0 else name
                    runs[kind].append(d)
                    ratios[kind].append(d / b)

    b = statistics.median(runs["bare"])
    rows = [
        ("bare `fit` (fresh model, Keras SGD, constant rate)", runs["bare"], None),
        ("bare `fit` with a trial's optimizer and schedules", runs["scheduled"], ratios["scheduled"]),
        ("study trial, fresh model each (`reuse=False`, before)", runs["rebuilt"], ratios["rebuilt"]),
        ("`tune` call per trial, fresh model each (+ checks, storage, tables)", calls[False], None),
        ("study trial on the shared model (`reuse=True`), after the first", runs["shared"], ratios["shared"]),
        ("first trial of a `tune` call on the shared model (builds, traces)", runs["first"], ratios["first"]),
        ("`tune` call per trial on the shared model (+ checks, storage, tables)", calls[True], None),
    ]
    steps = -(-args.samples // args.batch_size)
    print(f"{args.epochs} epochs x {steps} steps, batch {args.batch_size}, {args.rounds} rounds of "
          f"{args.block} trials per `tune` call, a bare fit after each trial, SQLite storage\n")
    print("| run | median s | fastest s | median ratio to the bare fit beside it |")
    print("|---|---|---|---|")
    for label, values, paired in rows:
        shown = "1.000" if label.startswith("bare `fit` (") else (
            f"{statistics.median(paired):.3f}" if paired else f"({statistics.median(values) / b:.3f} of the median)")
        print(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {shown} |")
    n = len(ratios["shared"]) + len(ratios["first"])
    mean_block = statistics.median(
        statistics.fmean([ratios["first"][r], *ratios["shared"][r * (args.block - 1):(r + 1) * (args.block - 1)]])
        for r in range(args.rounds))
    print(f"\nmedian over `tune` calls of the mean ratio of their {args.block} trials on the shared "
          f"model, first included: {mean_block:.3f} ({n} trials)")
    print(f"fastest of each (machine load only adds time), shared-model trial / bare fit: "
          f"{min(runs['shared']) / min(runs['bare']):.3f}; fresh-model trial / bare fit: "
          f"{min(runs['rebuilt']) / min(runs['bare']):.3f}\n")
    ratio = statistics.median(ratios["shared"])
    before = statistics.median(ratios["rebuilt"])
    print(f"target: per-trial overhead, trial / bare fit = {ratio:.3f} <= 1.05 (fresh model each: "
          f"{before:.3f}): {'met' if ratio <= 1.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
