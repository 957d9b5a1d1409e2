"""The instrument's tables: per setup and budget, each arm's mean and its paired difference to `auto`.

Scores per (arm, seed) come in as `{arm: {seed: (val acc, val loss)}}` (the best of each
within the budget); only seeds every compared arm has are paired. A setup scored on loss
compares losses, with a diverged run's loss (inf) read as the worst finite loss of that
setup and budget, or chance (log of the classes) if higher. Pure Python and `scripts.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from scripts import stats

OURS = "auto"


def clip_losses(scores: Mapping[str, Mapping[int, tuple[float, float]]], classes: int) -> float:
    """The loss a diverged run is charged: the largest finite loss seen, or log(classes)."""
    finite = [v[1] for per in scores.values() for v in per.values() if math.isfinite(v[1])]
    return max([math.log(classes), *finite])


def score_of(value: tuple[float, float], score: str, ceiling: float) -> float:
    acc, loss = value
    if score == "acc":
        return acc
    return loss if math.isfinite(loss) else ceiling


def compare(scores: Mapping[str, Mapping[int, tuple[float, float]]], score: str, classes: int,
            arms: Sequence[str]) -> list[dict]:
    """One row per arm: seeds, mean acc, mean loss, and (for arms other than `auto`) the paired
    difference to `auto` (positive: auto better), its interval and the verdict (n/a below
    `stats.MIN_SEEDS` paired seeds)."""
    ceiling = clip_losses(scores, classes)
    rows = []
    ours = scores.get(OURS, {})
    for arm in arms:
        per = scores.get(arm, {})
        if not per:
            continue
        accs = [v[0] for v in per.values()]
        losses = [score_of(v, "loss", ceiling) for v in per.values()]
        row = {"arm": arm, "seeds": len(per), "acc": sum(accs) / len(accs),
               "loss": sum(losses) / len(losses), "diff": math.nan, "low": math.nan, "high": math.nan,
               "verdict": "" if arm == OURS else "n/a"}
        common = sorted(set(per) & set(ours))
        if arm != OURS and common:
            p = stats.paired([score_of(ours[s], score, ceiling) for s in common],
                             [score_of(per[s], score, ceiling) for s in common],
                             higher_is_better=score == "acc")
            row.update(diff=p.diff, low=p.low, high=p.high, paired=p.n,
                       verdict=p.verdict if p.n >= stats.MIN_SEEDS else "n/a")
        rows.append(row)
    return rows


def spread(rows: Sequence[dict], score: str) -> float:
    """(best - worst) / best of the arms' means: how far apart the arms are on this setup."""
    values = [r[score] for r in rows]
    if not values:
        return math.nan
    best, worst = (max(values), min(values)) if score == "acc" else (min(values), max(values))
    return abs(best - worst) / abs(best) if best else math.nan


def _fmt(v: float, digits: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def setup_table(rows: Sequence[dict], score: str) -> list[str]:
    """Markdown lines: arm, seeds, mean acc, mean loss, auto - arm [95% interval], verdict."""
    sign = "auto − arm" if score == "acc" else "arm − auto"
    out = [f"| arm | seeds | mean val acc | mean val loss | {sign} ({'acc' if score == 'acc' else 'loss'}, "
           "95% interval) | auto's result |", "|---|---|---|---|---|---|"]
    for r in rows:
        mark = (lambda s: f"**{s}**") if r["arm"] == OURS else str
        interval = "" if r["arm"] == OURS else (
            f"{r['diff']:+.4f} [{_fmt(r['low'])}, {_fmt(r['high'])}]" if not math.isnan(r["diff"]) else "-")
        out.append(f"| {mark(r['arm'])} | {r['seeds']} | {_fmt(r['acc'])} | {_fmt(r['loss'])} | {interval} | "
                   f"{r['verdict']} |")
    return out


def summary_table(cells: Mapping[tuple[str, int], Sequence[dict]], arms: Sequence[str],
                  score_by_setup: Mapping[str, str]) -> list[str]:
    """Markdown lines: one row per (setup, budget) with each arm's verdict against auto, and
    a last row counting auto's wins / ties / losses per arm and in all."""
    others = [a for a in arms if a != OURS]
    out = ["| setup | budget (epochs) | score | seeds (auto) | " + " | ".join(others) + " |",
           "|---|---|---|---|" + "---|" * len(others)]
    counts = {a: stats.tally([]) for a in others}
    for (name, budget), rows in cells.items():
        by = {r["arm"]: r for r in rows}
        cells_ = []
        for a in others:
            v = by[a]["verdict"] if a in by else ""
            if v:
                counts[a][v] += 1
            cells_.append(v or "-")
        seeds = by[OURS]["seeds"] if OURS in by else 0
        out.append(f"| {name} | {budget} | {score_by_setup[name]} | {seeds} | " + " | ".join(cells_) + " |")
    total = stats.tally([])
    for c in counts.values():
        for k, v in c.items():
            total[k] += v
    out.append("| **auto: wins / ties / losses** | | | | "
               + " | ".join(f"{c['win']} / {c['tie']} / {c['loss']}" for c in counts.values()) + " |")
    out.append(f"\nIn all: auto wins {total['win']}, ties {total['tie']}, loses {total['loss']} "
               f"({total['n/a']} without two paired seeds).")
    return out
