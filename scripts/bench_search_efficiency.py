"""Search efficiency at an equal epoch budget: `lrsearch.auto` against the alternatives.

Every method trains the same model on the same data (by default `studies/digits/model.py`,
the README's example: a small CNN with SGD, rate 0.01, momentum 0.9, batch 32) and may
spend the same number of epochs, `--budget`. Methods ("arms"):

- `default`: one long `fit` at the optimizer's own constant rate (the model file's
  `SGD(0.01, momentum=0.9)`, Keras' default rate), validation accuracy after every epoch.
- `lrsearch`: `lrsearch.auto` with its defaults (160-step range test from 1e-6 to 10,
  momentum and weight-decay sweeps of three range tests each, median pruner, metric
  `val_loss`), trials of `--epochs` epochs. The range test's and the sweeps' batches are
  charged to the budget: a range test of N batches costs N / steps_per_epoch epochs.
- `lrsearch-nosweeps`: the same with `sweeps=False` (range test and study only).
- `tpe-wide`: Optuna TPE over the same schedule parameters (the same `tune` harness,
  sampler and pruner) with the rate range set to a wide default, `[1e-5, 10]`, instead of
  the range test's bounds, and no sweeps.
- `kt-random`: `keras_tuner.RandomSearch` over a constant rate, log-uniform in
  `[1e-5, 10]` (objective `val_accuracy`), trials of `--epochs` epochs.
- `lrsearch-budget`: `lrsearch.auto(..., budget=--budget)`: the planner sizes the sweeps
  (at most a tenth of the budget) and the trials; median pruning as `lrsearch`.
- `lrsearch-halving`: the same with `fidelity="schedule-halving"`: one bracket of
  complete schedules at 1/4, 1/2 and all of `--epochs`, the best half promoted each time.

A search arm runs trials until it has spent the budget (a study is resumed with more
trials while epochs are left; pruned and failed trials count the epochs they ran). Each
arm's spending is an ordered ledger: range test and sweeps first, then every epoch of
every trial in the order they ran. From it:

- best val acc: the highest validation accuracy after any epoch within the budget;
- epochs to target: cumulative epochs spent when validation accuracy first reached
  `--target` ("-" when not within the budget; the `default` arm trains on to
  `--default-epochs` to find its number).

Medians over `--seeds` seeds. Each arm's ledger per seed is cached in `--cache`, keyed by
the arm, the seed, the settings and a hash of lrsearch's code (a rerun with nothing
changed only reads it). Targets: lrsearch reaches `--target` in at most a third of
the epochs the default constant rate needs, and in fewer epochs than both unbounded
searches.

    python -m scripts.bench_search_efficiency [--seeds 3] [--epochs 6] [--budget 48]
        [--target 0.98] [--arms default,lrsearch,tpe-wide,kt-random]
        [--model-file studies/digits/model.py] [--cache DIR]

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import optuna  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.core.defaults import DEFAULT_RANGE_STEPS  # noqa: E402
from lrsearch.study.tune import tune  # noqa: E402
from scripts.arms import (  # noqa: E402
    WIDE, Ledger, constant_rate_hypermodel, fmt_epochs, from_tune, top_up, wide_suggestion,
    without_tensorboard)
from scripts.common import ROOT, cache_dir, code_tag, target_line  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("lrsearch").setLevel(logging.ERROR)
ARMS = ("default", "lrsearch", "lrsearch-nosweeps", "tpe-wide", "kt-random", "lrsearch-budget",
        "lrsearch-halving")
BATCH = 32


def load_model_file(path: Path):
    spec = importlib.util.spec_from_file_location("bench_model_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model, module.load_data()


def steps_per_epoch(train) -> int:
    return math.ceil(len(train[0]) / BATCH)


def arm_default(build, train, val, seed: int, horizon: int) -> Ledger:
    keras.utils.set_random_seed(seed)
    model = build()
    h = model.fit(*train, validation_data=val, epochs=horizon, batch_size=BATCH, verbose=0)
    ledger = Ledger(note=f"{type(model.optimizer).__name__} "
                         f"lr={float(model.optimizer.learning_rate):g}")
    for acc in h.history["val_accuracy"]:
        ledger.epoch(float(acc))
    keras.backend.clear_session()
    return ledger


def arm_lrsearch(build, train, val, seed: int, args, out: Path, sweeps: bool) -> Ledger:
    keras.utils.set_random_seed(seed)
    spe = steps_per_epoch(train)
    ledger = Ledger()
    runs = []

    def call(trials: int):
        result = lrsearch.auto(build, data=(train, val), epochs=args.epochs, trials=trials,
                               out_dir=out, study_name="bench", seed=seed, batch_size=BATCH,
                               sweeps=sweeps, report=False, verbose=0)
        runs.append(result)
        return result.tune

    # the first call runs the range test and sweeps; later calls reuse them and resume
    guess = (1 + 6 * sweeps) * DEFAULT_RANGE_STEPS / spe
    first = call(max(1, math.ceil((args.budget - guess) / args.epochs)))
    done = runs[0]
    steps = len(done.range_test.frame) + sum(len(s.frame) for s in done.sweeps.values())
    ledger.charge(steps / spe)
    result = top_up(call, args.budget, ledger.overhead, args.epochs) or first
    from_tune(result, ledger)
    s = done.suggestion
    ledger.note = f"bounds {s.base_lr:.2g}-{s.max_lr:.2g}, {steps} range-test steps"
    return ledger


def arm_tpe_wide(build, train, val, seed: int, args, out: Path) -> Ledger:
    keras.utils.set_random_seed(seed)
    wide = wide_suggestion()

    def call(trials: int):
        return tune(build, train, validation_data=val, suggestion=wide, epochs=args.epochs,
                    trials=trials, batch_size=BATCH, out_dir=out, study_name="bench",
                    seed=seed)

    ledger = Ledger(note=f"rates {WIDE[0]:g}-{WIDE[1]:g}")
    from_tune(top_up(call, args.budget, 0.0, args.epochs), ledger)
    return ledger


class _EpochSink(keras.callbacks.Callback):
    """KerasTuner deep-copies callbacks per trial: the sink is a class attribute."""

    sink: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        type(self).sink.append(float((logs or {}).get("val_accuracy", float("nan"))))


def arm_kt_random(build, train, val, seed: int, args, out: Path) -> Ledger:
    import keras_tuner

    trials = math.ceil(args.budget / args.epochs)
    tuner = without_tensorboard(keras_tuner.RandomSearch)(
        constant_rate_hypermodel(build, seed), objective="val_accuracy", max_trials=trials,
        seed=seed, directory=str(out), project_name="bench", overwrite=True)
    _EpochSink.sink = []
    tuner.search(*train, validation_data=val, epochs=args.epochs, batch_size=BATCH,
                 callbacks=[_EpochSink()], verbose=0)
    ledger = Ledger(note=f"constant rate {WIDE[0]:g}-{WIDE[1]:g}", trials=trials)
    for acc in _EpochSink.sink:
        ledger.epoch(acc)
    keras.backend.clear_session()
    return ledger


def arm_budget(build, train, val, seed: int, args, out: Path, fidelity: str) -> Ledger:
    """`auto` with the whole budget handed to it: it plans sweeps and trials itself."""
    keras.utils.set_random_seed(seed)
    spe = steps_per_epoch(train)
    result = lrsearch.auto(build, data=(train, val), epochs=args.epochs, budget=args.budget,
                           out_dir=out, study_name="bench", seed=seed, batch_size=BATCH,
                           fidelity=fidelity, report=False, verbose=0)
    spent, plan = result.budget.spent, result.budget.study_plan
    ledger = Ledger()
    ledger.charge((spent.range_steps + spent.sweep_steps) / spe)
    from_tune(result.tune, ledger)
    sweeps = ", ".join(f"{p.replace('_', '-')} {s.frame['value'].nunique()}x"
                       f"{len(s.frame) // s.frame['value'].nunique()} steps"
                       for p, s in result.sweeps.items()) or "no sweeps"
    study = (" + ".join(f"{r.trials}x{r.epochs}" for r in plan.rungs) if plan.rungs
             else f"{plan.trials}x{plan.epochs} planned")
    ledger.note = f"{sweeps}; {study} epochs"
    return ledger


CODE = ("**/*.py",)
"""The modules a cached ledger is keyed by: all of lrsearch."""


def cached(cache: Path | None, key: str, make) -> Ledger:
    """The ledger stored under `key`, or `make()` stored there."""
    path = None if cache is None else cache / f"{key}.json"
    if path is not None and path.exists():
        return Ledger.load(path)[0]
    led = make()
    if path is not None:
        led.save(path)
    return led


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-file", type=Path, default=ROOT / "studies" / "digits" / "model.py")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6, help="epochs per trial")
    p.add_argument("--budget", type=int, default=48, help="epochs each method may spend")
    p.add_argument("--target", type=float, default=0.98, help="validation accuracy")
    p.add_argument("--default-epochs", type=int, default=None,
                   help="epochs of the default-rate fit (default: 2 x budget)")
    p.add_argument("--arms", default="default,lrsearch,tpe-wide,kt-random",
                   help=f"comma-separated, from {','.join(ARMS)}")
    p.add_argument("--cache", type=Path, default=cache_dir("search_efficiency"),
                   help="folder of cached ledgers ('none' for no cache)")
    args = p.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for a in arms:
        if a not in ARMS:
            p.error(f"unknown arm {a!r}: use {', '.join(ARMS)}")
    horizon = args.default_epochs or 2 * args.budget
    build, (train, val) = load_model_file(args.model_file)
    spe = steps_per_epoch(train)

    results: dict[str, list[Ledger]] = {a: [] for a in arms}
    cache = None if str(args.cache) == "none" else args.cache
    settings = (f"{args.model_file.stem}-e{args.epochs}-b{args.budget}-h{horizon}-"
                f"{code_tag(*CODE, length=10)}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for arm in arms:  # arms interleave, so machine load hits all alike
                out = Path(tmp) / f"{arm}-{seed}"
                began = time.perf_counter()

                def make(arm=arm, out=out, seed=seed):
                    if arm == "default":
                        return arm_default(build, train, val, seed, horizon)
                    if arm == "lrsearch-budget":
                        return arm_budget(build, train, val, seed, args, out, "truncate")
                    if arm == "lrsearch-halving":
                        return arm_budget(build, train, val, seed, args, out, "schedule-halving")
                    if arm.startswith("lrsearch"):
                        return arm_lrsearch(build, train, val, seed, args, out,
                                            sweeps=arm == "lrsearch")
                    if arm == "tpe-wide":
                        return arm_tpe_wide(build, train, val, seed, args, out)
                    return arm_kt_random(build, train, val, seed, args, out)

                led = cached(cache, f"{settings}/{arm}-{seed}", make)
                results[arm].append(led)
                print(f"seed {seed} {arm}: best {led.best(args.budget):.4f}, to target "
                      f"{fmt_epochs(led.to_target(args.target, args.budget))} "
                      f"({time.perf_counter() - began:.0f} s)",
                      file=sys.stderr, flush=True)

    name = args.model_file.relative_to(ROOT) if args.model_file.is_relative_to(ROOT) \
        else args.model_file
    print(f"`{name}`: {len(train[0])} training / {len(val[0])} validation samples, batch "
          f"{BATCH} ({spe} steps per epoch); budget {args.budget} epochs per method, trials "
          f"of {args.epochs} epochs, target val accuracy {args.target}, {args.seeds} seeds "
          f"(median over seeds)\n")
    print("| method | best val acc within budget | epochs to target | reached (seeds) "
          "| range test + sweeps (epochs) | trials |")
    print("|---|---|---|---|---|---|")
    med: dict[str, float] = {}
    for arm, ledgers in results.items():
        budget = horizon if arm == "default" else args.budget
        best = statistics.median(led.best(args.budget) for led in ledgers)
        hits = [led.to_target(args.target, budget) for led in ledgers]
        med[arm] = statistics.median(hits)
        reached = sum(math.isfinite(h) for h in hits)
        over = statistics.median(led.overhead for led in ledgers)
        trials = statistics.median(led.trials for led in ledgers) if arm != "default" else 1
        label = f"{arm} ({ledgers[0].note})"
        print(f"| {label} | {best:.4f} | {fmt_epochs(med[arm])} | {reached}/{len(hits)} | "
              f"{over:.1f} | {trials:g} |")
    print("\nPer seed, epochs to target (best val acc within budget):\n")
    print("| seed | " + " | ".join(arms) + " |")
    print("|---|" + "---|" * len(arms))
    for seed in range(args.seeds):
        cells = []
        for arm in arms:
            led = results[arm][seed]
            budget = horizon if arm == "default" else args.budget
            cells.append(f"{fmt_epochs(led.to_target(args.target, budget))} "
                         f"({led.best(args.budget):.4f})")
        print(f"| {seed} | " + " | ".join(cells) + " |")
    if "default" in results:
        print(f"\n(`default` trains on to {horizon} epochs to find when it reaches the "
              f"target; its best accuracy is taken within the {args.budget}-epoch budget.)")
    checks = []
    for arm in ("lrsearch", "lrsearch-budget"):
        if arm not in med:
            continue
        ours = med[arm]
        if "default" in med:
            limit = med["default"] / 3
            checks.append((f"{arm} reaches {args.target} in <= 1/3 of the default rate's "
                           f"epochs ({fmt_epochs(ours)} vs {fmt_epochs(med['default'])} / 3 = "
                           f"{fmt_epochs(limit)})", ours <= limit and math.isfinite(ours)))
        for other in ("tpe-wide", "kt-random"):
            if other in med:
                checks.append((f"{arm} ahead of {other} ({fmt_epochs(ours)} vs "
                               f"{fmt_epochs(med[other])} epochs)",
                               math.isfinite(ours) and ours < med[other]))
    if "lrsearch-halving" in results and "lrsearch-budget" in results:
        print("\nSchedule halving against median pruning at the same budget (median over seeds): "
              + ", ".join(f"{arm} best {statistics.median(led.best(args.budget) for led in results[arm]):.4f}, "
                          f"to target {fmt_epochs(med[arm])}"
                          for arm in ("lrsearch-halving", "lrsearch-budget")))
    if checks:
        print()
    for text, ok in checks:
        print(target_line(text, ok))


if __name__ == "__main__":
    main()
