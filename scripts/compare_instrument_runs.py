"""Two cached runs of one instrument arm compared seed by seed: what a code change did.

The instrument (`scripts.bench_instrument`) caches each arm's ledger per setup, seed and
budget under a folder named by the hash of the code the arm ran. After a change, rerun
the one arm (`--arms auto`); this script pairs the old folder's ledgers with the new
one's by seed and prints, per setup, both means, the paired difference (positive: the
new code is better) with a 95% BCa bootstrap interval over the seeds both hold, and the
means of the other arms cached beside the old run.

    python -m scripts.compare_instrument_runs OLD_TAG NEW_TAG [--arm auto] [--others TAG]
        [--budget 8] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from scripts.common import cache_dir
from scripts.instrument import SETUPS


def _score(path: Path, loss: bool) -> float:
    """The best validation accuracy (or lowest loss) a ledger reached within its budget."""
    entries = [e for e in json.loads(path.read_text())["entries"] if e[1] is not None]
    return min(e[2] for e in entries) if loss else max(e[1] for e in entries)


def _interval(diff: list[float]) -> tuple[float, float]:
    if len(diff) < 2 or len(set(diff)) < 2:
        return float("nan"), float("nan")
    ci = stats.bootstrap((np.asarray(diff),), np.mean, confidence_level=0.95, method="BCa",
                         random_state=0).confidence_interval
    return float(ci.low), float(ci.high)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="the old run's code folder in the cache (e.g. ab37b6f1c8-6d307e)")
    ap.add_argument("new", help="the new run's code folder")
    ap.add_argument("--arm", default="auto")
    ap.add_argument("--others", help="the code folder of the other arms (default: none shown)")
    ap.add_argument("--budget", type=int, default=8, help="budget in epochs (the folder suffix -B<n>)")
    ap.add_argument("--cache", type=Path, default=cache_dir("instrument"))
    args = ap.parse_args()
    print(f"| setup (score) | seeds | old {args.arm} | new {args.arm} | new - old (95% BCa) | default | fastai |")
    print("|---|---|---|---|---|---|---|")
    for s in SETUPS:
        name, loss = f"{s.name}-B{args.budget}", s.score == "loss"
        old, new = args.cache / args.old / name, args.cache / args.new / name
        seeds = [i for i in range(100) if (old / f"{args.arm}-{i}.json").exists()
                 and (new / f"{args.arm}-{i}.json").exists()]
        if not seeds:
            continue
        a = [_score(old / f"{args.arm}-{i}.json", loss) for i in seeds]
        b = [_score(new / f"{args.arm}-{i}.json", loss) for i in seeds]
        diff = [(y - x) * (-1 if loss else 1) for x, y in zip(a, b)]
        lo, hi = _interval(diff)
        other = {}
        for arm in ("default", "fastai"):
            paths = [args.cache / (args.others or "") / name / f"{arm}-{i}.json" for i in seeds]
            other[arm] = (f"{np.mean([_score(p, loss) for p in paths]):.4f}"
                          if args.others and all(p.exists() for p in paths) else "-")
        print(f"| {s.name} ({'loss' if loss else 'acc'}) | {len(seeds)} | {np.mean(a):.4f} | {np.mean(b):.4f} | "
              f"{np.mean(diff):+.4f} [{lo:+.4f}, {hi:+.4f}] | {other['default']} | {other['fastai']} |")


if __name__ == "__main__":
    main()
