"""Widening a study's rate ranges when its best trials sit at an edge.

The range test says where to start, not where the best schedule is: a study whose best
trials keep landing at the top (or bottom) of a rate range is being held back by the
range. After each finished trial (once `WIDEN_AFTER_TRIALS` have completed), the best
two complete trials are read: a rate within `MARGIN` of its range's log-width from an edge
widens that side by half a decade (`STEP`), capped at the space's `limit_lr` /
`floor_lr` (what the range test's evidence allows), for the remaining trials.

| family | rate read | top edge widens | bottom edge widens |
|---|---|---|---|
| one_cycle | `oc_max_lr` | `peak_max_lr` | `base_lr` |
| cyclic | `clr_max_lr` / `clr_base_lr` | `max_lr` | `base_lr` |
| wsd | `wsd_max_lr` | `max_lr` | `base_lr` |
| schedule_free | `sf_lr` | `peak_max_lr` | `base_lr` |

The widened space is written into the study's user attributes (`space`), with one
event per widening under `widened` (trial count, parameter, side, old and new range),
so every worker and a resumed study sample the same space, and the winner's provenance
names it.

Optuna accepts another `FloatDistribution` range for the same parameter name in later
trials, but its multivariate TPE with `group=True` keeps, per group of parameters, the
distributions of the first trial that had them: the relative sampler would go on
drawing inside the old range. `RangeAwareTPESampler` therefore leaves the parameters
whose range was widened out of the relative search space, so Optuna samples them with
its independent (univariate) TPE over the new range, from every earlier trial's value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from lrsearch.study.space import SearchSpace

__all__ = ["MARGIN", "STEP", "TOP_K", "WIDEN_AFTER_TRIALS", "RangeAwareTPESampler", "edge_widening",
           "widened_params"]

MARGIN = 0.1
"""How close to an edge counts as at it: a share of the range's width in log scale."""
STEP = 10**0.5
"""How far a side moves at each widening (half a decade)."""
WIDEN_AFTER_TRIALS = 3
"""Complete trials before the first look at the edges."""
TOP_K = 2
"""How many of the best complete trials are read."""

# family -> ((rate parameter, the edges it can sit at), ...)
_RATES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "one_cycle": (("oc_max_lr", ("bottom", "top")),),
    "cyclic": (("clr_base_lr", ("bottom",)), ("clr_max_lr", ("top",))),
    "wsd": (("wsd_max_lr", ("bottom", "top")),),
    "schedule_free": (("sf_lr", ("bottom", "top")),),
}
_PEAKED = ("one_cycle", "schedule_free")  # rates that reach up to `peak_max_lr`


def _range(space: SearchSpace, family: str) -> tuple[float, float]:
    """The full rate range a family's rates span (CLR's two ranges together)."""
    top = space.peak_max_lr or space.max_lr if family in _PEAKED else space.max_lr
    return float(space.base_lr), float(top)


def _family(param: str) -> str:
    return next(f for f, rates in _RATES.items() if any(n == param for n, _ in rates))


def _sides(space: SearchSpace, point: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`(parameter, side)` for each rate of `point` within `MARGIN` of an edge."""
    family = point.get("family")
    if family not in _RATES:
        return []
    lo, hi = _range(space, family)
    near = MARGIN * math.log(hi / lo)
    out = []
    for name, sides in _RATES[family]:
        value = point.get(name)
        if value is None or not value > 0:
            continue
        if "top" in sides and math.log(hi / float(value)) <= near:
            out.append((name, "top"))
        if "bottom" in sides and math.log(float(value) / lo) <= near:
            out.append((name, "bottom"))
    return out


def edge_widening(space: SearchSpace, best: Sequence[Mapping[str, Any]]
                  ) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """The space widened where the best points sit at an edge, and what moved.

    Args:
        space: the study's current space.
        best: the parameters of the best complete trials, best first.

    Returns:
        `(space, events)`: the same space and `[]` when nothing sits at an edge that can
        still move (no `limit_lr` / `floor_lr`, or already there); otherwise the widened
        space and one event per side moved: `param`, `side`, `old` and `new`
        `[low, high]` of its family's rate range, and `changed`, every parameter whose
        range moved with it (CLR's two rate ranges share their midpoint).
    """
    wanted: dict[str, str] = {}  # field to move -> the parameter that asked
    for point in best:
        for name, side in _sides(space, point):
            field = ("base_lr" if side == "bottom" else
                     "peak_max_lr" if _family(name) in _PEAKED else "max_lr")
            wanted.setdefault(field, name)
    changes: dict[str, float] = {}
    events = []
    for field, name in sorted(wanted.items()):
        if field == "base_lr":
            cap = space.floor_lr
            if cap is None or space.base_lr <= cap:
                continue
            changes[field] = max(space.base_lr / STEP, cap)
        else:
            cap = space.limit_lr
            current = float(getattr(space, field) or space.max_lr)
            if cap is None or current >= cap:
                continue
            changes[field] = min(current * STEP, cap)
        events.append({"param": name, "side": "bottom" if field == "base_lr" else "top",
                       "old": list(_range(space, _family(name))), "cap": cap})
    if not changes:
        return space, []
    if "max_lr" in changes and space.peak_max_lr is not None:
        changes["peak_max_lr"] = max(changes.get("peak_max_lr", space.peak_max_lr),
                                     changes["max_lr"])
    new = dataclasses.replace(space, **changes)
    moved = sorted(widened_params(space, new))
    for event in events:
        event["new"] = list(_range(new, _family(event["param"])))
        event["changed"] = moved
    return new, events


def widened_params(old: SearchSpace, new: SearchSpace) -> set[str]:
    """Names of the float parameters whose range differs between two spaces."""
    before = {p.name: (p.low, p.high) for p in old.params() if p.kind == "float"}
    return {p.name for p in new.params()
            if p.kind == "float" and p.name in before and before[p.name] != (p.low, p.high)}


class RangeAwareTPESampler(optuna.samplers.TPESampler):
    """`TPESampler` that samples widened parameters with its independent TPE.

    The names come from the study's user attribute `attr` (`widened`, each event's
    `changed`), read at every trial, so all workers agree.
    """

    def __init__(self, *args: Any, attr: str = "lrsearch", **kwargs: Any) -> None:
        if tuple(int(v) for v in optuna.__version__.split(".")[:2]) < (4, 9):
            kwargs.setdefault("warn_independent_sampling", False)  # False by default since
        super().__init__(*args, **kwargs)
        self._attr = attr

    def infer_relative_search_space(self, study: optuna.study.Study,
                                    trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        space = super().infer_relative_search_space(study, trial)
        events = dict(study.user_attrs.get(self._attr) or {}).get("widened") or ()
        dynamic = {name for event in events for name in event.get("changed", ())}
        return {k: v for k, v in space.items() if k not in dynamic}
