"""The race of a short budget: which peaks it opens with, its rungs, and how its winner is told.

A short budget (`lrsearch.study.budget`) spends most of itself on one final fit and races a
few short complete schedules first to pick that fit's peak. The range test says where
to start, not where the best peak is (the best one-cycle peak of a long run often lies
above the suggested `max_lr`), so the race brackets the suggestion on both sides:

- a curve that was read (`race_bracket`): from `max_lr / 10` (not below `base_lr`) up to
  the loss minimum `min_loss_lr`, at least half a decade above `max_lr`;
- a curve flagged flat, noisy or still falling (`FLAGGED`) was not read, so its `max_lr`
  is no evidence: the bracket runs from `WIDE_DECADES` / 2 decades below `max_lr` (not
  below `base_lr`) up to where the test ended (the divergence, or the top of its range),
  at least `WIDE_DECADES` / 2 and at most `WIDE_DECADES` decades above `max_lr`.

The race is one bracket of successive halving over complete schedules
(`lrsearch.study.halving`, `race_rungs`): its first rung is designed (`race_points`):
one-cycle peaks spread geometrically over a read curve's bracket, ends included (the
inner one nearest `max_lr` moved onto it; two peaks: `max_lr` and the top), and at the
middles of equal parts of a flagged curve's (whose ends are guesses: a race of two
would otherwise train only a far-too-low and a far-too-high peak), a WSD schedule of the user's optimizer at
`max_lr`, and, in the portfolio, a Schedule-Free twin (`as_schedule_free`:
`ScheduleFreeAdamW` for an adaptive optimizer, `ScheduleFreeSGD` otherwise) at
`min_loss_lr / SF_MARGIN` (the margin a Schedule-Free curve is read with,
docs/optimizers.md; for a flagged curve, midway in log between `max_lr` and the top).
The best `1 / eta` of each rung train again at `eta` times the length.

Pure arithmetic: this module imports neither Keras nor Optuna.

Example:

    bracket = race_bracket(suggestion)
    race_rungs(9)                        # (Rung(5, 1), Rung(2, 2)): 5 x 1 then 2 x 2 epochs
    race_points(bracket, 5)                # 3 one-cycles, the twin, a WSD
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrsearch.study.rungs import RACE_OPENING, race_rungs
from lrsearch.study.space import PEAK_KEYS, SearchSpace

__all__ = [
    "EDGE_STEP",
    "FLAGGED",
    "MAX_EDGE_PROBES",
    "RACE_OPENING",
    "SF_MARGIN",
    "WIDE_DECADES",
    "Bracket",
    "at_edge",
    "designed_opening",
    "optimizer_margin",
    "race_bracket",
    "race_points",
    "race_rungs",
]

FLAGGED = ("flat", "noisy", "still_falling", "no_descent")
"""Problems of a curve whose `max_lr` is not trained on as read: the race brackets wide."""
WIDE_DECADES = 2.0
"""How far above `max_lr` a flagged curve's bracket may reach, in decades."""
SF_MARGIN = 1.5
"""The Schedule-Free twin races at `min_loss_lr / SF_MARGIN`."""
EDGE_STEP = 10**0.5
"""How far past the bracket's edge a probe goes when the winner sits at it (half a decade)."""
MAX_EDGE_PROBES = 2
"""Probes past an edge before the final fit."""


@dataclass(frozen=True)
class Bracket:
    """The peaks a race spans: `low` to `high`, `anchor` the suggested `max_lr`, `sf_rate`
    the Schedule-Free twin's rate; `flags` the curve's problems that made it wide."""

    low: float
    high: float
    anchor: float
    sf_rate: float
    flags: tuple[str, ...] = ()

    def describe(self) -> str:
        """The bracket in words, e.g. `0.000245 to 0.245 (base_lr to where the test ended)`."""
        why = "below max_lr to where the test ended" if self.flags else "max_lr / 10 to the loss minimum"
        return f"{self.low:.3g} to {self.high:.3g} ({why})"


def race_bracket(suggestion: Any, end_lr: float | None = None) -> Bracket:
    """The bracket of a race on `suggestion` (an `LRSuggestion`); `end_lr`: the last rate
    its range test reached (where it diverged, or the top of its range).

    Example: a read curve with `base_lr` 1e-3, `max_lr` 1e-2 and `min_loss_lr` 5e-2
    brackets 1e-3 to 5e-2; flagged "flat", with the test ended at 10, 1e-3 to 1.0 (a
    decade below and two above `max_lr`).
    """
    base, top = float(suggestion.base_lr), float(suggestion.max_lr)
    minimum = max(top, float(getattr(suggestion, "min_loss_lr", top) or top))
    flags = tuple(p for p in getattr(suggestion, "problems", ()) or () if p in FLAGGED)
    if flags:
        ended = float(end_lr) if end_lr is not None else minimum
        high = min(top * 10**WIDE_DECADES, max(ended, minimum, top * 10 ** (WIDE_DECADES / 2)))
        low = max(base, top / 10 ** (WIDE_DECADES / 2))
    else:
        high = max(minimum, top * EDGE_STEP)
        low = max(base, top / 10)
    # a flagged curve's loss minimum is no evidence either: the twin races mid-bracket above max_lr
    wanted = math.sqrt(top * high) if flags else minimum / SF_MARGIN
    sf = min(high, max(low, wanted))
    return Bracket(low=low, high=high, anchor=top, sf_rate=sf, flags=flags)


def _spread(low: float, high: float, n: int, anchor: float | None) -> list[float]:
    """`n` rates from `low` to `high`. With an `anchor` (a read curve's `max_lr`): geometric,
    ends included (they are evidence: a decade below, the loss minimum), the inner one
    nearest the anchor moved onto it, and for two the anchor and `high`. Without one (a
    flagged curve, whose ends are guesses): the geometric middles of `n` equal parts."""
    if n == 1:
        return [anchor or math.sqrt(low * high)]
    if anchor is None:
        return [low * (high / low) ** ((i + 0.5) / n) for i in range(n)]
    if n == 2:
        return [min(max(anchor, low), high), high]
    rates = [low * (high / low) ** (i / (n - 1)) for i in range(n)]
    near = min(range(1, n - 1), key=lambda i: abs(math.log(rates[i] / anchor)))
    rates[near] = anchor
    return rates


def race_points(bracket: Bracket, n: int, *, twin: bool = True, wsd: bool = True,
                schedule_free_only: bool = False) -> list[dict[str, Any]]:
    """The `n` designed first-rung trials of a race, as partial parameters (`family` and its
    rate; `tune` fills in the rest from the family's suggested point).

    One-cycle peaks spread over the bracket (three: below, at and above `max_lr`; two:
    at and above it; for a flagged curve at the middles of equal parts, `max_lr` no
    evidence); with `twin` (`n >= 4`), a Schedule-Free twin at `bracket.sf_rate`; with
    `wsd`, while four points are left for one-cycle and itself, a WSD schedule of the
    user's optimizer at `max_lr`. `schedule_free_only` (the user's optimizer is
    Schedule-Free): every point is that family's rate, spread as one-cycle's peaks would be.
    """
    anchor = None if bracket.flags else bracket.anchor  # a flagged max_lr is no evidence: no rate kept for it
    if schedule_free_only:
        return [{"family": "schedule_free", "sf_lr": r} for r in _spread(bracket.low, bracket.high, n, anchor)]
    extra: list[dict[str, Any]] = []
    if twin and n >= 4:
        extra.append({"family": "schedule_free", "sf_lr": bracket.sf_rate})
    if wsd and n - len(extra) >= 4:
        extra.append({"family": "wsd", "wsd_max_lr": bracket.anchor})
    peaks = _spread(bracket.low, bracket.high, n - len(extra), anchor)
    return [{"family": "one_cycle", "oc_max_lr": r} for r in peaks] + extra


def at_edge(rate: float, rates: Sequence[float], *, rel: float = 1e-6) -> str | None:
    """`"top"` or `"bottom"` when `rate` is the highest or lowest of `rates` (more than one
    distinct), else `None`."""
    distinct = sorted({float(r) for r in rates})
    if len(distinct) < 2:
        return None
    if math.isclose(rate, distinct[-1], rel_tol=rel) or rate > distinct[-1]:
        return "top"
    if math.isclose(rate, distinct[0], rel_tol=rel) or rate < distinct[0]:
        return "bottom"
    return None


def optimizer_margin(rows: Sequence[Mapping[str, Any]], direction: str) -> tuple[float, int] | None:
    """How much the best Schedule-Free trial beat the best trial of the user's optimizer
    at the highest rung both reached: `(margin, rung)`, positive when it is better; `None`
    when no rung holds a complete trial of each.

    `rows`: the race's trials (`family`, `value`, `state`, `rung`), e.g. from
    `TuneResult.trials.to_dict("records")`.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    best: dict[tuple[int, bool], float] = {}
    for row in rows:
        value = row.get("value")
        if row.get("state") != "COMPLETE" or value is None or not math.isfinite(float(value)):
            continue
        key = (_rung(row.get("rung")), row.get("family") == "schedule_free")
        best[key] = max(best.get(key, -math.inf), sign * float(value))
    shared = [r for r, sf in best if sf and (r, False) in best]
    if not shared:
        return None
    rung = max(shared)
    return best[(rung, True)] - best[(rung, False)], rung


def _rung(value: Any) -> int:
    """A trial's rung index; 0 for a trial outside a bracket (a missing value)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def designed_opening(space: SearchSpace, points: Sequence[Mapping[str, Any]]
                     ) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """`points` (partial, as `race_points` makes them) completed from each family's
    suggested point in `space`, and the space with its peak range reaching their rates.

    A space that searches `schedule_free` only (the user's optimizer is Schedule-Free)
    takes one-cycle peaks as its rates and drops the other families' points; a rate
    below `base_lr` is raised to it, a WSD rate held inside `[base_lr, max_lr]`.
    """
    out: list[dict[str, Any]] = []
    for point in points:
        point = dict(point)
        if space.families == ("schedule_free",) and point.get("family") == "one_cycle":
            point = {"family": "schedule_free", "sf_lr": point["oc_max_lr"]}
        family = point.get("family")
        if family not in space.families:
            continue
        key = PEAK_KEYS[family]
        rate = max(float(point[key]), float(space.base_lr))
        point[key] = min(rate, float(space.max_lr)) if family == "wsd" else rate
        full = {**SearchSpace(**{**space.__dict__, "families": (family,)}).suggested_params(), **point}
        if not any(full == o for o in out):
            out.append(full)
    peaks = [p[PEAK_KEYS[p["family"]]] for p in out if p["family"] in ("one_cycle", "schedule_free")]
    top = max(peaks, default=0.0)
    if top > float(space.peak_max_lr or space.max_lr):
        limit = None if space.limit_lr is None else max(float(space.limit_lr), top * EDGE_STEP)
        space = SearchSpace(**{**space.__dict__, "peak_max_lr": top, "limit_lr": limit})
    return space, out
