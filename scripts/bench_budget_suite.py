"""Equal epoch budgets on several setups: `lrsearch.auto(budget=...)` against the alternatives.

Eight setups of the suggestion benchmark (`scripts.cases.CASES`: data, model and
optimizer of `scripts.setups.SETUPS`; some batch sizes changed: the GRU at 16, 75 steps an
epoch, so that the range test is not a third of the budget, the attention block at 32, and
the RMSprop and Adam MLPs at 10, 300 steps an epoch), each with a budget `B` of four trial
lengths that every method may spend, every batch charged: a range test or sweep of N
batches costs N / steps-per-epoch epochs. The halves are `scripts.split`'s: the fit half
(mlp-sgd, gru-adamw-b16, mlp-rmsprop-b10; the planner's constants were chosen on it) runs
by default, the check half (the other five, all seen) only with `--half check`, which
prints only the final numbers and appends them to `scripts/check_ledger.jsonl`. Methods
("arms"):

- `default`: the setup's optimizer at Keras' default rate, constant, one fit of `B` epochs;
- `lrsearch`: `lrsearch.auto(..., budget=B)`: the planner sizes the range test, sweeps and
  trials (median pruning, metric `val_loss`, trials of the setup's epochs); on a budget too
  short for four such trials, a race of short trials and a final fit of the winner;
- `lrsearch-final`: the same with `final_epochs=B // 2`: half the budget kept for a final
  fit of the chosen schedule at that length (charged, and validated after every epoch);
- `fastai`: fastai's recipe: a 100-step range test from 1e-7 to 10, fastai's `valley`
  rate (fastai's own function when `--fastai-python` names an interpreter with fastai,
  else the transcription in `scripts.references.fastai_anchor`; the output says which), then one
  one-cycle run over the whole epochs left, with `fit_one_cycle`'s defaults: pct_start
  0.25, div 25, final rate max / 1e5, cosine, momentum (`beta_1` for Adam-family)
  0.95 -> 0.85 -> 0.95 (none for RMSprop: fastai's RMSProp has no momentum by default),
  built from `lrsearch.schedules.OneCycle` and `lrsearch.optimizers.rebuild`;
- `tpe-wide`: Optuna TPE over lrsearch's schedule space with rates in [1e-5, 10] (no range
  test, no sweeps), trials of the setup's epochs, run until the budget is spent;
- `kt-hyperband`: `keras_tuner.Hyperband` over a constant rate, log-uniform in [1e-5, 10],
  `max_epochs` = the setup's epochs, factor 3, stopped when the budget is spent;
- `sf-default`: `lrsearch.optimizers.ScheduleFreeAdamW` at the reference's defaults (rate
  0.0025, no warmup, no weight decay) for all `B` epochs;
- `sf-rangetested`: the same optimizer at the rate read from `lrsearch.range_test` run on
  the model compiled with it (its defaults; the rule is `suggestion.max_lr`, with a 5%
  warmup and beta 0.9: the first trial of lrsearch's `schedule_free` family), the rest of
  the budget in one run.

Validation accuracy is recorded after every epoch (Schedule-Free arms validate the averaged
weights, `ScheduleFreeEval`). Per setup and arm: the best validation accuracy within the
budget, median over seeds. Where an epoch has >= 300 steps, also the epochs `lrsearch` spends
(evidence included) until it first reaches the `default` arm's final accuracy (same seed).
Targets: `lrsearch`'s best >= every other arm's on >= 80% of the setups; at >= 300 steps
an epoch, the default's final accuracy within <= 1/3 of the default's `B` epochs.

Each arm's ledger per (setup, seed) is cached under `--cache`, keyed also by a hash of
lrsearch's code (the planner modules only `auto` runs, `AUTO_ONLY`, only for the
`lrsearch` arms): a rerun resumes where the last one stopped. Progress and an ETA go to
stderr.

    python -m scripts.bench_budget_suite [--half fit|check] [--seeds 3] [--only SETUP,...] [--arms ...]
        [--fastai-python PATH] [--cache DIR] [--seed-list 2]

Prints markdown tables and one `target:` line per claim.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import optuna  # noqa: E402

from scripts import split  # noqa: E402
from scripts.arms import fmt_epochs  # noqa: E402
from scripts.budget_arms import Arms, cached  # noqa: E402
from scripts.cases import CASES, Case  # noqa: E402
from scripts.common import cache_dir, code_tag, print_targets  # noqa: E402
from scripts.references import fastai_anchor  # noqa: E402
from scripts.setups import pretrain  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
ARMS = ("default", "lrsearch", "lrsearch-final", "fastai", "tpe-wide", "kt-hyperband", "sf-default", "sf-rangetested")
LONG_EPOCH = 300  # steps an epoch from which the one-third target applies
CODE = ("**/*.py",)
"""The modules a cached ledger is keyed by: all of lrsearch, less `AUTO_ONLY` for most arms."""
AUTO_ONLY = ("run/auto.py", "run/stages.py", "study/budget.py", "run/budgeted.py", "study/final_fit.py",
             "cli/main.py", "cli/commands.py")
"""Modules only `auto` (and the command line) runs: the cache key of the other arms leaves
them out, so a change to the planner reruns only the `lrsearch` arms."""


# ---------------------------------------------------------------------------- report


def _med(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def report(cases, arms, results, seeds: int, notes: bool = True) -> None:
    ours = [a for a in arms if a.startswith("lrsearch")]
    others = [a for a in arms if not a.startswith("lrsearch")]
    if "fastai" in arms and fastai_anchor.source() == "not run":  # every fastai run was cached:
        lrs = [1e-7 * 10 ** (i / 12) for i in range(100)]  # ask which implementation runs
        fastai_anchor.suggestions(lrs, [1.0 + (math.log10(lr) + 3) ** 2 / 10 for lr in lrs])
    print(f"Budgets in epochs of the training data, every batch charged (range tests and sweeps "
          f"as N / steps per epoch); {seeds} seeds, medians over seeds. fastai's valley: "
          f"{fastai_anchor.source()}.\n")
    print("| setup | half | data, model | optimizer, batch (steps/epoch) | budget (trial epochs) | "
          + " | ".join(arms) + " |")
    print("|---|---|---|---|---|" + "---|" * len(arms))
    wins: dict[tuple[str, str], int] = {}
    misses: list[str] = []
    for c in cases:
        spe = results[c.name]["spe"]
        best = {a: _med([led.best(c.budget) for led in results[c.name][a]]) for a in arms}
        top = max(v for v in best.values() if not math.isnan(v))
        cells = [f"**{best[a]:.4f}**" if best[a] == top else f"{best[a]:.4f}" for a in arms]
        print(f"| {c.name} | {c.half} | {c.setup.about} | {c.setup.optimizer}, {c.setup.batch} ({spe}) | "
              f"{c.budget} ({c.trial_epochs}) | " + " | ".join(cells) + " |")
        for a in ours:
            beaten = [o for o in others if best[o] > best[a] + 1e-9]
            wins[a, c.half] = wins.get((a, c.half), 0) + (not beaten)
            if beaten:
                misses.append(f"{c.name}: {a} {best[a]:.4f} below "
                              + ", ".join(f"{o} {best[o]:.4f}" for o in beaten))
    if notes:  # what the searches chose: not shown on the check half
        print("\nWhat each arm did (seed 0):\n")
        for c in cases:
            print(f"- {c.name}: " + "; ".join(f"`{a}` {results[c.name][a][0].note}" for a in arms
                                              if results[c.name][a][0].note))
    print("\nPer seed, best val acc within the budget:\n")
    print("| setup | seed | " + " | ".join(arms) + " |")
    print("|---|---|" + "---|" * len(arms))
    for c in cases:
        for seed in range(seeds):
            print(f"| {c.name} | {seed} | " + " | ".join(
                f"{results[c.name][a][seed].best(c.budget):.4f}" for a in arms) + " |")
    long = [c for c in cases if results[c.name]["spe"] >= LONG_EPOCH]
    checks = []
    if ours and others:
        for half in ("fit", "check"):
            n = sum(c.half == half for c in cases)
            for a in ours if n else ():
                won = wins.get((a, half), 0)
                checks.append((f"{half} half: {a}'s best at the budget >= every other method's on >= 80% "
                               f"of setups ({won} of {n})", won / n >= 0.8 - 1e-9))
    if ours and "default" in arms and long:
        print("\nEpochs spent (evidence included) until the default rate's final accuracy (same "
              "seed) is first reached, against a third of the default's epochs:\n")
        print("| setup | seed | default final acc (epoch first reached) | "
              + " | ".join(f"{a} epochs to it" for a in ours) + " | default epochs / 3 |")
        print("|---|---|---|" + "---|" * len(ours) + "---|")
        for c in long:
            hits: dict[str, list[float]] = {a: [] for a in ours}
            for seed in range(seeds):
                d = results[c.name]["default"][seed]
                final = d.within(c.budget)[-1][1]
                first = d.to_target(final, c.budget)
                for a in ours:
                    hits[a].append(results[c.name][a][seed].to_target(final, c.budget))
                print(f"| {c.name} | {seed} | {final:.4f} ({first:.0f}) | "
                      + " | ".join(fmt_epochs(hits[a][-1]) for a in ours) + f" | {c.budget / 3:.1f} |")
            for a in ours:
                med = statistics.median(hits[a])
                checks.append((f"{c.name} ({results[c.name]['spe']} steps an epoch): {a} reaches the "
                               f"default's final accuracy in <= 1/3 of its epochs (median "
                               f"{fmt_epochs(med)} vs {c.budget} / 3 = {c.budget / 3:.1f})",
                               med <= c.budget / 3))
    if misses:
        print("\nBelow another method (medians):\n")
        for line in misses:
            print(f"- {line}")
    print()
    print_targets(checks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split.add_half_argument(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-list", default="",
                   help="comma-separated seeds to run and report instead of 0..seeds-1 (to "
                        "split a first run between processes sharing the cache)")
    p.add_argument("--only", default="", help="comma-separated setup names: " + ",".join(c.name for c in CASES))
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {','.join(ARMS)}")
    p.add_argument("--fastai-python", default=None,
                   help="a Python with torch and fastai that runs fastai's valley "
                        "(default: $LRSEARCH_BENCH_FASTAI_PYTHON, else the transcription)")
    p.add_argument("--cache", type=Path, default=cache_dir(),
                   help="folder of cached ledgers (shared with bench_suggestions' pretrained bodies)")
    args = p.parse_args()
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    if args.fastai_python:
        os.environ["LRSEARCH_BENCH_FASTAI_PYTHON"] = args.fastai_python
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    names = [c.name for c in CASES]
    if bad or any(n not in names for n in only):
        p.error(f"unknown arm or setup in {bad or only}: arms {', '.join(ARMS)}; setups {', '.join(names)}")
    cases = [c for c in split.select(CASES, args.half) if not only or c.name in only]
    if not cases:
        p.error(f"none of {only} is in the {args.half} half")
    with split.check_run(args.half, "bench_budget_suite"):
        _run(args, cases, arms)


def _run(args, cases, arms) -> None:
    suggestions_cache = args.cache / "suggestions"
    pretrain(suggestions_cache)
    tags = {a: code_tag(*CODE, skip=AUTO_ONLY if not a.startswith("lrsearch") else (), length=10)
            for a in arms}
    benches = {c.name: Arms(c, suggestions_cache) for c in cases}
    results = {c.name: {a: [] for a in arms} | {"spe": benches[c.name].spe} for c in cases}
    seeds = [int(x) for x in args.seed_list.split(",") if x.strip()] or list(range(args.seeds))
    jobs = [(seed, c, a) for seed in seeds for c in cases for a in arms]
    todo = [j for j in jobs if not (args.cache / "budget_suite" / tags[j[2]] / _key(*j)).exists()]
    print(f"{len(jobs)} runs, {len(todo)} not cached (code {', '.join(sorted(set(tags.values())))})",
          file=sys.stderr, flush=True)
    done_s, done_n, began = 0.0, 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed, c, arm in jobs:  # seeds outermost: every setup gets seed 0 first
            out = Path(tmp) / f"{c.name}-{arm}-{seed}"
            led, secs, hit = cached(args.cache / "budget_suite" / tags[arm] / _key(seed, c, arm),
                                    lambda: benches[c.name].run(arm, seed, out))
            results[c.name][arm].append(led)
            if not hit:
                done_s += secs
                done_n += 1
            left = len(todo) - done_n
            eta = done_s / done_n * left if done_n else float("nan")
            print(f"[{time.perf_counter() - began:5.0f} s] seed {seed} {c.name} {arm}: best "
                  f"{led.best(c.budget):.4f}, spent {led.spent:.1f}/{c.budget} ({secs:.0f} s"
                  f"{', cached' if hit else ''}); {left} left, ETA {eta / 60:.0f} min",
                  file=sys.stderr, flush=True)
    report(cases, arms, results, len(seeds), notes=args.half == "fit")


def _key(seed: int, c: Case, arm: str) -> str:
    return f"{c.name}-B{c.budget}-T{c.trial_epochs}/{arm}-{seed}.json"


if __name__ == "__main__":
    main()
