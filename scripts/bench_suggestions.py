"""Do the suggested rates hold on models they were not fitted to?

Twelve small setups that need no download (`scripts.setups.SETUPS`) cross model
families (MLP, CNN with and without BatchNorm, a residual net, GRU, LSTM, a small
attention model, a pretrained model fine-tuned on new classes), optimizers (SGD with
momentum, Adam, AdamW, RMSprop), batch sizes (16-512) and run lengths (3-20 epochs).
They are split once, there, into a **fit** half (rules and constants were chosen on it)
and a **check** half (reported only). Per setup (`scripts.oracle` runs and caches both
the oracle and the range tests):

- the oracle: one-cycle training at each peak of a log grid (half-decade steps), mean
  validation accuracy over `--seeds` initialisations; the best grid point is the yardstick;
- lrsearch: `range_test` with its defaults (`steps=None`), `suggestion.max_lr` used as
  the one-cycle peak; ratio = its mean accuracy / the oracle's best;
- the anchors, run as their users get them: fastai's `valley`, `steep` and `minimum`
  on `lr_find`'s 100-step test from 1e-7 to 10 recorded as fastai records it
  (debiased EMA 0.98, first 10% and last 5 points dropped, stop at 4x the best smoothed
  loss), and Lightning's steepest-gradient rule on a 100-step test from 1e-8 to 1 (same
  EMA and stop; first 10 and last point dropped; gradient with respect to the rate
  itself, not its log). fastai's rules are fastai's own functions when an interpreter
  with fastai is at hand (`--fastai-python`, e.g. a separate venv with torch and
  fastai), else a transcription (`scripts.references.fastai_anchor`); the output says
  which ran.
  Lightning's rule follows `_LRFinder.suggestion` in `lightning/pytorch/tuner/lr_finder.py`
  (`torch.gradient(losses, spacing=[lrs])` on its EMA curve, `[10:-1]`): on an
  exponential sweep a gradient in the rate itself favours the smallest rates, which is
  why its peaks land near 1e-7 (as Lightning users get them);
- stability: lrsearch's `max_lr` from `--spread-seeds` range tests (other initialisation
  and batch order each), max / min.

Range-test curves and trained results are cached under `--cache` (keyed by setup, rate,
seed and the range-test code), so that trying a new rule only trains at its new peaks.

    python -m scripts.bench_suggestions [--half fit|check] [--seeds 2]
        [--spread-seeds 5] [--only NAME,...] [--cache DIR] [--candidates]

The halves are `scripts.split`'s: the fit half runs by default; `--half check` (all of it
seen) prints only the final numbers (no `--candidates`, `--grids` or `--grid-only`) and
appends them to `scripts/check_ledger.jsonl`. `--candidates` also prints the candidate
peak rules on the fit half (how the rule was chosen). Prints markdown tables and one
`target:` line per claim on the check half.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from lrsearch.core.errors import CurveError  # noqa: E402
from lrsearch.rangetest.curve import smooth_loss  # noqa: E402
from lrsearch.rangetest.result import RangeTestResult  # noqa: E402
from scripts import split  # noqa: E402
from scripts.common import cache_dir, print_grids, target_line  # noqa: E402
from scripts.oracle import Runner  # noqa: E402
from scripts.references import fastai_anchor  # noqa: E402
from scripts.setups import SETUPS, grid, pretrain  # noqa: E402


# ---------------------------------------------------------------------------- anchors


def fastai_rules(r: RangeTestResult) -> dict[str, float]:
    """fastai's valley, steep and minimum on its test's curve (`fastai_anchor`)."""
    return fastai_anchor.suggestions(r.frame["lr"].to_numpy(), r.frame["loss"].to_numpy())


def lightning_steepest(r):
    """Lightning's `_LRFinder.suggestion(skip_begin=10, skip_end=1)`: argmin of the
    gradient of the smoothed loss with respect to the rate."""
    lrs = r.frame["lr"].to_numpy()[10:-1]
    losses = smooth_loss(r.frame["loss"].to_numpy(), 0.98)[10:-1]
    ok = np.isfinite(losses)
    lrs, losses = lrs[ok], losses[ok]
    return float(lrs[int(np.argmin(np.gradient(losses, lrs)))])


# ---------------------------------------------------------------------------- report


def _ratio(run: Runner, peak: float, best: float) -> float:
    return run.acc(peak) / best


def bench(setups, args) -> dict[str, dict]:
    out = {}
    for s in setups:
        run = Runner(s, args.cache, args.seeds)
        accs = {g: run.acc(g) for g in grid(s)}
        best_peak = max(accs, key=accs.get)
        best = accs[best_peak]
        tests = []
        for sd in range(args.spread_seeds):
            try:  # a curve lrsearch refuses to read (CurveError) counts as a miss
                tests.append(run.range_test("lrsearch", sd))
            except CurveError as exc:
                tests.append(None)
                print(f"<!-- {s.name} seed {sd}: {exc} -->", flush=True)
        rt = tests[0]
        sug = rt.suggestion if rt is not None else None
        fa, li = run.range_test("fastai"), run.range_test("lightning")
        peaks = {"lrsearch": sug.max_lr if sug else float("nan"), **fastai_rules(fa),
                 "lightning": lightning_steepest(li)}
        ratios = {k: _ratio(run, v, best) if np.isfinite(v) else 0.0 for k, v in peaks.items()}
        spread_peaks = [t.suggestion.max_lr for t in tests if t is not None] or [float("nan")]
        out[s.name] = dict(setup=s, grid=accs, best_peak=best_peak, best=best, peaks=peaks,
                           ratios=ratios, spread=(max(spread_peaks) / min(spread_peaks)) if None not in tests else float("inf"),
                           spread_peaks=spread_peaks, rt=rt, sug=sug, run=run)
        print(f"<!-- {s.name}: done -->", flush=True)
    return out


def _rt_cell(rt) -> str:
    if rt is None:
        return "CurveError"
    return f"{len(rt.frame)}, {rt.stopped}" + (f", {len(rt.meta['rounds'])} rounds"
                                               if len(rt.meta.get("rounds", ())) > 1 else "")


def report(half: str, res: dict[str, dict], args) -> None:
    names = [n for n, r in res.items() if r["setup"].half == half]
    if not names:
        return
    print(f"### {half} half\n")
    print("| setup | data, model | optimizer, batch, epochs | range test (steps, end) | "
          "best grid peak (acc) | lrsearch max_lr | ratio | valley | steep | minimum | "
          "Lightning | max_lr spread (5 seeds) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        r = res[n]
        s, rt, q = r["setup"], r["rt"], r["ratios"]
        print(f"| {n} | {s.about} | {s.optimizer}, {s.batch}, {s.epochs} | "
              f"{_rt_cell(rt)} | {r['best_peak']:.3g} ({r['best']:.4f}) | "
              f"{r['peaks']['lrsearch']:.3g} | {q['lrsearch']:.3f} | "
              + " | ".join(f"{q[k]:.3f} ({r['peaks'][k]:.2g})" for k in ("valley", "steep", "minimum", "lightning"))
              + f" | {r['spread']:.2f} |")
    print()
    for k in ("lrsearch", "valley", "steep", "minimum", "lightning"):
        vals = [res[n]["ratios"][k] for n in names]
        print(f"- {k}: median ratio {statistics.median(vals):.3f}, worst {min(vals):.3f}")
    print()
    warned = [(n, w) for n in names for w in (res[n]["sug"].warnings if res[n]["sug"] else ())]
    if warned:
        print("Curve warnings: " + "; ".join(f"{n}: {w}" for n, w in warned) + "\n")
    if args.grids:
        print_grids("oracle grids (mean val accuracy per peak)", {n: res[n]["grid"] for n in names})
    if half == "check":
        vals = [res[n]["ratios"]["lrsearch"] for n in names]
        med, worst = statistics.median(vals), min(vals)
        print(target_line(f"check half: median ratio {med:.3f} >= 0.99", med >= 0.99))
        print(target_line(f"check half: worst ratio {worst:.3f} >= 0.97", worst >= 0.97))
        for n in names:
            q = res[n]["ratios"]
            print(target_line(f"{n}: lrsearch {q['lrsearch']:.3f} > fastai valley {q['valley']:.3f}",
                              q["lrsearch"] > q["valley"]))
        spread = max(res[n]["spread"] for n in names)  # NaN (no readable curve) is a miss
        spread = spread if np.isfinite(spread) else float("inf")
        print(target_line(f"check half: max_lr spread over {args.spread_seeds} range-test seeds, "
                          f"worst {spread:.2f} <= 1.5", spread <= 1.5))
        print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split.add_half_argument(p)
    p.add_argument("--only", default="")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--spread-seeds", type=int, default=5)
    p.add_argument("--cache", type=Path, default=cache_dir("suggestions"))
    p.add_argument("--grid-only", action="store_true", help="only train the oracle grids")
    p.add_argument("--grids", action="store_true", help="print each oracle grid")
    p.add_argument("--candidates", action="store_true", help="print candidate rules (fit half)")
    p.add_argument("--fastai-python", default=None,
                   help="a Python with torch and fastai that runs fastai's rules "
                        "(default: $LRSEARCH_BENCH_FASTAI_PYTHON, else this one)")
    args = p.parse_args()
    if args.half == "check" and (args.candidates or args.grids or args.grid_only):
        p.error("--half check prints only the final numbers: leave out --candidates, --grids and --grid-only")
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    if args.fastai_python:
        os.environ["LRSEARCH_BENCH_FASTAI_PYTHON"] = args.fastai_python
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    setups = [s for s in split.select(SETUPS, args.half) if not only or s.name in only]
    with split.check_run(args.half, "bench_suggestions"):
        _run(setups, args)


def _run(setups, args) -> None:
    pretrain(args.cache)
    if args.grid_only:
        for s in setups:
            run = Runner(s, args.cache, args.seeds)
            print(s.name, {f"{g:.3g}": round(run.acc(g), 4) for g in grid(s)}, flush=True)
        return
    res = bench(setups, args)
    print(f"One-cycle (cos, div 25, pct_start 0.3, fixed momentum) at each peak; ratio = mean "
          f"val accuracy over {args.seeds} seeds at the rule's peak / the best of a 7-point "
          f"grid (half a decade apart). Anchor columns: ratio (peak). fastai's rules: "
          f"{fastai_anchor.source()}.\n")
    report(args.half, res, args)
    if args.candidates:
        candidates(res)


def candidates(res: dict[str, dict]) -> None:
    """Candidate peak rules, read from the same lrsearch curve, on the fit half."""
    rules = {
        "max_lr (current)": lambda s: s.max_lr,
        "min_loss_lr / 3": lambda s: s.min_loss_lr / 3,
        "min_loss_lr / 2": lambda s: s.min_loss_lr / 2,
        "min_loss_lr / 1.5": lambda s: s.min_loss_lr / 1.5,
        "min_loss_lr": lambda s: s.min_loss_lr,
        "steepest_lr": lambda s: s.steepest_lr,
        "sqrt(steepest * min_loss)": lambda s: (s.steepest_lr * s.min_loss_lr) ** 0.5,
    }
    names = list(res)  # --candidates runs on the fit half only
    print("### candidate peak rules on the fit half\n")
    print("| rule | " + " | ".join(names) + " | median | worst |")
    print("|---|" + "---|" * (len(names) + 2))
    for label, rule in rules.items():
        vals = [res[n]["run"].acc(rule(res[n]["sug"])) / res[n]["best"] for n in names]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals)
              + f" | {statistics.median(vals):.3f} | {min(vals):.3f} |")
    print()


if __name__ == "__main__":
    main()
