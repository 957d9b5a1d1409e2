"""An instrument that can tell methods apart: paired seeds, 5,000 validation samples, intervals.

On the eleven generated setups of `scripts.instrument` (MLPs, CNNs with and without
BatchNorm, a residual CNN, GRU, LSTM, an attention block with LayerNorm and AdamW, two
fine-tuned pretrained models; 5,000 validation samples each, >= 200 steps an epoch on
six), the equal-budget arms of `scripts.budget_arms` at budgets of 4 trial lengths (every
setup) and 12 (the four marked `long`), every batch charged:

- `default` (the setup's optimizer at Keras' default rate, constant), `fastai` (100-step
  range test, fastai's `valley`, `fit_one_cycle`'s defaults), `tpe-wide` (Optuna TPE,
  rates in [1e-5, 10]), `kt-hyperband` (KerasTuner Hyperband, constant rate), `sf-default`
  and `sf-rangetested` (Schedule-Free AdamW at 0.0025, and at the range test's max_lr),
  `prodigy` (`ProdigyAdam` at its defaults), and `auto` (`lrsearch.auto(budget=B)`);
- `oracle`: one-cycle at peaks 10 ** (k / 4), extended until the best peak is interior,
  over `--oracle-seeds` seeds, at the budget's length: its best peak and score.

Each seed gives every arm the same initial weights and batch order (Keras seeded with it
before each model is built). Per setup and budget: each arm's mean best validation
accuracy and loss within the budget over the seeds, and the paired difference to `auto`
on the setup's score (accuracy, or validation loss where accuracy saturates) with a 95%
BCa bootstrap interval over seeds (`scripts.stats`): a win or loss only when the
interval leaves 0 out, else a tie. A summary counts auto's wins / ties / losses.

Halves (`scripts.split`): the fit half by default; `--half check` runs the check half,
prints only the final numbers and appends them to `scripts/check_ledger.jsonl`. Ledgers
are cached per (setup, budget, arm, seed) under `--cache`, keyed by a hash of the code the
arm runs (lrsearch's modules, less the planner's for arms other than `auto`, and the
scripts that define the setups and arms): a rerun resumes. Progress and an ETA go to
stderr; the tables (with the run's wall time and the measured seconds per run, from
which a cold run's time is estimated) also go to `--out`.

    nice -n 10 python -m scripts.bench_instrument [--half fit|check] [--setups A,B]
        [--arms auto,default,...] [--seeds 5] [--budgets 4,12] [--oracle-seeds 3]
        [--cached-only] [--out FILE] [--cache DIR] [--fastai-python PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import optuna  # noqa: E402

from scripts import instrument_report as rep  # noqa: E402
from scripts import split, stats  # noqa: E402
from scripts.arms import Ledger  # noqa: E402
from scripts.budget_arms import Arms, cached  # noqa: E402
from scripts.cases import Case  # noqa: E402
from scripts.common import ROOT, cache_dir, code_tag, target_line  # noqa: E402
from scripts.instrument import SETUPS, pretrain  # noqa: E402
from scripts.oracle import Runner  # noqa: E402
from scripts.references import fastai_anchor  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
ARMS = ("auto", "default", "fastai", "tpe-wide", "kt-hyperband", "sf-default", "sf-rangetested", "prodigy",
        "oracle")
RUNS = {"auto": "lrsearch"}  # the instrument's arm name -> budget_arms' name
AUTO_ONLY = ("run/auto.py", "run/stages.py", "study/budget.py", "run/budgeted.py", "study/final_fit.py",
             "cli/main.py", "cli/commands.py")
SCRIPTS = ("instrument.py", "budget_arms.py", "arms.py", "cases.py", "setups.py", "oracle.py")
"""The scripts whose code an arm's cached ledger is keyed by, beside lrsearch's."""
GRID = (-24, 4)  # the oracle's quarter-decade indices: 1e-6 .. 10


def tag(arm: str) -> str:
    """A hash of the code `arm` runs: lrsearch (less `AUTO_ONLY` unless auto) and `SCRIPTS`."""
    lib = code_tag("**/*.py", skip=() if arm == "auto" else AUTO_ONLY, length=10)
    text = b"".join((ROOT / "scripts" / f).read_bytes() for f in SCRIPTS)
    return f"{lib}-{hashlib.sha1(text).hexdigest()[:6]}"


def budgets_of(setup, multiples: list[int]) -> list[int]:
    """The budgets in epochs `setup` runs at: 4 trial lengths, and 12 on the long ones."""
    return [m * setup.epochs for m in multiples if m <= 4 or setup.long]


def oracle(setup, budget: int, root: Path, seeds: int, cached_only: bool, bodies: Path):
    """(best peak, its mean score, {peak: score}) of one-cycle over `budget` epochs; the
    fine-tuned setups read their pretrained bodies from `bodies` (the arms' cache root)."""
    s = dataclasses.replace(setup, name=f"{setup.name}-B{budget}", epochs=budget)
    for body in () if cached_only else bodies.glob("pretrained_*.weights.h5"):  # the arms' very weights
        if not (root / body.name).exists():
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(body, root / body.name)
    runner = Runner(s, root, seeds)
    higher = setup.score == "acc"
    start = round(4 * math.log10(0.1 if setup.optimizer == "sgd" else 3e-3))
    scores: dict[int, float] = {}

    def score(k: int) -> float:
        peak = stats.quarter_decade(k)
        key = f"{float(f'{peak:.4g}'):.4g}"
        if cached_only and not all(f"{key}|{sd}" in runner.cache.runs for sd in range(seeds)):
            return math.nan
        runs = runner.runs(peak)
        values = [r[0] if higher else (r[1] if math.isfinite(r[1]) else math.log(setup.classes) * 3) for r in runs]
        return statistics.mean(values)

    for k in range(start - 2, start + 3):
        scores[k] = score(k)
    while (k := stats.extend_grid(scores, higher_is_better=higher, lo=GRID[0], hi=GRID[1])) is not None:
        scores[k] = score(k)
        if math.isnan(scores[k]):
            break
    known = {k: v for k, v in scores.items() if not math.isnan(v)}
    if not known:
        return math.nan, math.nan, {}
    best = (max if higher else min)(known, key=lambda k: known[k])
    return stats.quarter_decade(best), known[best], {stats.quarter_decade(k): v for k, v in sorted(known.items())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split.add_half_argument(p)
    p.add_argument("--setups", default="", help="comma-separated: " + ",".join(s.name for s in SETUPS))
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {','.join(ARMS)}")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1, paired across arms (default 5)")
    p.add_argument("--budgets", default="4,12",
                   help="budgets in trial lengths (default 4,12; those above 4 only on the long setups)")
    p.add_argument("--oracle-seeds", type=int, default=3)
    p.add_argument("--cached-only", action="store_true", help="train nothing: report what is cached")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the tables here (default runs/instrument-<half>.md)")
    p.add_argument("--cache", type=Path, default=cache_dir(), help="folder of cached ledgers")
    p.add_argument("--fastai-python", default=None,
                   help="a Python with fastai (default: $LRSEARCH_BENCH_FASTAI_PYTHON, else the transcription)")
    args = p.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    names = [n.strip() for n in args.setups.split(",") if n.strip()]
    known = [s.name for s in SETUPS]
    bad = [a for a in arms if a not in ARMS] + [n for n in names if n not in known]
    if bad:
        p.error(f"unknown arm or setup {bad}: arms {', '.join(ARMS)}; setups {', '.join(known)}")
    try:
        multiples = [int(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        p.error(f"--budgets takes comma-separated whole numbers, got {args.budgets!r}")
    setups = [s for s in split.select(SETUPS, args.half) if not names or s.name in names]
    if not setups:
        p.error(f"none of {names} is in the {args.half} half")
    if args.fastai_python:
        os.environ["LRSEARCH_BENCH_FASTAI_PYTHON"] = args.fastai_python
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    out = args.out or ROOT / "runs" / f"instrument-{args.half}.md"
    with split.check_run(args.half, "bench_instrument", sys.argv[1:] if argv is None else argv):
        run(args, setups, arms, multiples, out)


def run(args, setups, arms, multiples, out: Path) -> None:
    began = time.perf_counter()
    root = args.cache / "instrument"
    if not args.cached_only:
        pretrain(root)
    trained = [a for a in arms if a != "oracle"]
    tags = {a: tag(a) for a in trained}
    jobs = [(b, seed, s, a) for s in setups for b in budgets_of(s, multiples) for seed in range(args.seeds)
            for a in trained]
    jobs.sort(key=lambda j: (j[0] // j[2].epochs, j[1]))  # short budget and low seeds first

    def path(b, seed, s, a) -> Path:
        return root / tags[a] / f"{s.name}-B{b}" / f"{a}-{seed}.json"

    todo = [j for j in jobs if not path(*j).exists()]
    print(f"{len(jobs)} runs, {len(todo)} not cached{' (not run: --cached-only)' if args.cached_only else ''}",
          file=sys.stderr, flush=True)
    scores: dict[tuple[str, int], dict[str, dict[int, tuple[float, float]]]] = {}
    seconds: dict[tuple[str, int, str], list[float]] = {}
    notes: dict[tuple[str, int], list[str]] = {}
    benches: dict[tuple[str, int], Arms] = {}
    done_s, done_n = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for b, seed, s, a in jobs:
            file = path(b, seed, s, a)
            if args.cached_only and not file.exists():
                continue
            if (s.name, b) not in benches:
                benches[s.name, b] = Arms(Case(s, budget=b, trial_epochs=s.epochs), root)
            bench = benches[s.name, b]
            led, secs, hit = cached(file, lambda: bench.run(RUNS.get(a, a), seed, Path(tmp) / f"{s.name}-{a}-{seed}"))
            scores.setdefault((s.name, b), {}).setdefault(a, {})[seed] = _best(led, b)
            seconds.setdefault((s.name, b, a), []).append(secs)
            if seed == 0 and led.note:
                notes.setdefault((s.name, b), []).append(f"`{a}` {led.note}")
            if not hit:
                done_s, done_n = done_s + secs, done_n + 1
                left = len(todo) - done_n
                print(f"[{time.perf_counter() - began:6.0f} s] {s.name} B{b} {a} seed {seed}: acc "
                      f"{led.best(b):.4f} loss {led.best_loss(b):.4f} ({secs:.0f} s); {left} left, ETA "
                      f"{done_s / done_n * left / 60:.0f} min", file=sys.stderr, flush=True)
    oracles = {}
    if "oracle" in arms:
        for s in setups:
            for b in budgets_of(s, multiples):
                t0 = time.perf_counter()
                oracles[s.name, b] = oracle(s, b, root / "oracle" / tags.get("default", tag("default")),
                                            args.oracle_seeds, args.cached_only, root)
                print(f"[{time.perf_counter() - began:6.0f} s] {s.name} B{b} oracle: best peak "
                      f"{oracles[s.name, b][0]:.3g} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    lines = report(args, setups, trained, multiples, scores, notes, oracles)
    lines += targets(args, setups, trained, multiples, scores, oracles,
                     complete=all(path(*j).exists() for j in jobs))
    wall = time.perf_counter() - began
    lines += timing(setups, trained, multiples, seconds, args.seeds, wall, done_n)
    text = "\n".join(lines) + "\n"
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def _best(led: Ledger, budget: int) -> tuple[float, float]:
    return led.best(budget), led.best_loss(budget)


def report(args, setups, arms, multiples, scores, notes, oracles) -> list[str]:
    check = args.half == "check"
    if "fastai" in arms and fastai_anchor.source() == "not run":  # every fastai run was cached
        lrs = [1e-7 * 10 ** (i / 12) for i in range(100)]
        fastai_anchor.suggestions(lrs, [1.0 + (math.log10(lr) + 3) ** 2 / 10 for lr in lrs])
    lines = [f"{args.half} half: {len(setups)} setups, seeds 0..{args.seeds - 1} paired across arms, budgets "
             f"{', '.join(map(str, multiples))} trial lengths; the best validation accuracy and loss within the "
             f"budget per seed; intervals: 95% BCa bootstrap over seeds. fastai's valley: {fastai_anchor.source()}.",
             ""]
    order = [a for a in arms if a == rep.OURS] + [a for a in arms if a != rep.OURS]
    cells = {}
    for s in setups:
        for b in budgets_of(s, multiples):
            rows = rep.compare(scores.get((s.name, b), {}), s.score, s.classes, order)
            if not rows:
                continue
            cells[s.name, b] = rows
            spe = steps_per_epoch(s)
            lines += [f"#### {s.name}, budget {b} epochs ({b // s.epochs} x {s.epochs}), score: validation "
                      f"{'accuracy' if s.score == 'acc' else 'loss'}", "",
                      f"{s.about}; {s.optimizer}, batch {s.batch} ({spe} steps an epoch). Spread of the arms' "
                      f"means: {rep.spread(rows, s.score) * 100:.2f}%.", ""]
            lines += rep.setup_table(rows, s.score)
            if (s.name, b) in oracles and oracles[s.name, b][2]:
                peak, value, grid = oracles[s.name, b]
                name = "accuracy" if s.score == "acc" else "loss"
                if check:
                    lines.append(f"\nOracle (one-cycle, quarter-decade grid, {args.oracle_seeds} seeds): best {name} "
                                 f"{value:.4f}.")
                else:
                    lines.append(f"\nOracle (one-cycle, quarter-decade grid, {args.oracle_seeds} seeds): best peak "
                                 f"{peak:.3g}, {name} {value:.4f}; grid: "
                                 + ", ".join(f"{g:.3g}: {v:.4f}" for g, v in grid.items()))
            if not check and (s.name, b) in notes:
                lines.append("\nWhat each arm did (seed 0): " + "; ".join(notes[s.name, b]))
            lines.append("")
    lines += ["### Summary: auto against each arm (win / loss: the interval leaves 0 out)", ""]
    lines += rep.summary_table(cells, order, {s.name: s.score for s in setups})
    return lines


def targets(args, setups, arms, multiples, scores, oracles, complete: bool) -> list[str]:
    """The instrument's claims, as `target:` lines once every run asked for is in: auto loses
    to no arm; auto within 2% of the oracle's score; every setup's arms more than 0.5% apart
    (the instrument can tell them apart). Before that, one line saying so."""
    if not complete:
        return ["", "Targets: not yet measured (runs missing from the cache)."]
    order = [rep.OURS] + [a for a in arms if a != rep.OURS]
    losses, total, near, spread_ok, cells = 0, 0, [], [], 0
    for s in setups:
        for b in budgets_of(s, multiples):
            rows = rep.compare(scores.get((s.name, b), {}), s.score, s.classes, order)
            cells += 1
            total += sum(r["verdict"] in ("win", "tie", "loss") for r in rows)
            losses += sum(r["verdict"] == "loss" for r in rows)
            spread_ok.append(rep.spread(rows, s.score) > 0.005)
            ours = next((r for r in rows if r["arm"] == rep.OURS), None)
            if ours and (s.name, b) in oracles and math.isfinite(oracles[s.name, b][1]):
                value = oracles[s.name, b][1]
                near.append(ours["acc"] >= 0.98 * value if s.score == "acc" else ours["loss"] <= 1.02 * value)
    half = args.half
    out = ["", target_line(f"{half} half: auto loses to no other arm ({losses} losses in {total} paired "
                             f"comparisons)", losses == 0)]
    if near:
        out.append(target_line(f"{half} half: auto within 2% of the one-cycle oracle's score on every setup and "
                                 f"budget ({sum(near)} of {len(near)})", all(near)))
    out.append(target_line(f"{half} half: the arms' means more than 0.5% apart on every setup and budget "
                             f"({sum(spread_ok)} of {cells})", all(spread_ok)))
    return out


def steps_per_epoch(s) -> int:
    """Batches an epoch of `s`'s training data (the last one partial)."""
    return math.ceil(len(s.data()[0]) / s.batch)


def timing(setups, arms, multiples, seconds, seeds: int, wall: float, trained: int) -> list[str]:
    """Seconds per run (setup, budget, arm) as measured, and the cold run they add up to."""
    lines = ["", "### Time", "", f"This run: {wall / 60:.1f} min of wall time, {trained} runs trained.", "",
             "| setup | budget | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
    total, missing = 0.0, 0
    for s in setups:
        for b in budgets_of(s, multiples):
            cells = []
            for a in arms:
                got = seconds.get((s.name, b, a))
                cells.append(f"{statistics.mean(got):.0f}" if got else "-")
                if got:
                    total += statistics.mean(got) * seeds
                else:
                    missing += 1
            lines.append(f"| {s.name} | {b} | " + " | ".join(cells) + " |")
    lines.append(f"\nMean seconds per (setup, budget, arm, seed) run, as measured on this shared machine; "
                 f"a cold run of the measured cells over {seeds} seeds: {total / 3600:.1f} h"
                 + (f" ({missing} cells not measured yet)." if missing else ".")
                 + " The oracle's grid is not included.")
    return lines


if __name__ == "__main__":
    main()
