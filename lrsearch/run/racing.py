"""A short budget's race in `auto`: its bracket from the range test, probes past its edge,
and its winner told.

`design_race` reads the range test: the bracket (`lrsearch.study.race.race_bracket`, wide for
a curve flagged flat, noisy or still falling, said in one line), and whether the race holds
the portfolio (a Schedule-Free twin and a WSD schedule beside one-cycle; off with
`keep_optimizer=True`). After the race, `probe_edges` trains one more top-rung schedule
half a decade past the bracket while the winner sits at its edge (at most
`MAX_EDGE_PROBES`, each taken from the final fit), so that the final fit does not train a
peak the race could not see past. `tell_winner` says in one line when a twin of another
optimizer won, by how much, and that `--keep-optimizer` keeps the user's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrsearch.study.race import (
    EDGE_STEP,
    MAX_EDGE_PROBES,
    Bracket,
    at_edge,
    optimizer_margin,
    race_bracket,
    race_points,
)
from lrsearch.study.space import PEAK_KEYS

__all__ = ["RaceDesign", "design_race", "probe_edges", "tell_winner"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaceDesign:
    """What a race runs: its `bracket`, whether it holds the `portfolio` (the Schedule-Free
    twin; a WSD schedule of the user's optimizer runs either way when there is room), the
    user's optimizer class name, and whether that optimizer is already Schedule-Free."""

    bracket: Bracket
    portfolio: bool
    optimizer: str
    schedule_free: bool

    def points(self, n: int) -> list[dict[str, Any]]:
        """The `n` designed first-rung trials (`lrsearch.study.race.race_points`)."""
        return race_points(self.bracket, n, twin=self.portfolio, schedule_free_only=self.schedule_free)


def design_race(range_test: Any, *, keep_optimizer: bool = False) -> RaceDesign:
    """The race on a `RangeTestResult`; a flagged curve's wide bracket is told in one line."""
    suggestion = range_test.suggestion
    frame = range_test.frame
    end = float(frame["lr"].iloc[-1]) if len(frame) else None
    bracket = race_bracket(suggestion, end)
    name = str(range_test.meta.get("optimizer") or "optimizer")
    sf = name.startswith("ScheduleFree")
    if bracket.flags:
        rounds = len(range_test.meta.get("rounds") or ()) or 1
        logger.warning("range test: the curve is still %s after %d round%s, so its max_lr %.3g is not trained "
                       "on as read: the race brackets %s", ", ".join(f.replace("_", " ") for f in bracket.flags),
                       rounds, "s" if rounds > 1 else "", suggestion.max_lr, bracket.describe())
    return RaceDesign(bracket=bracket, portfolio=not keep_optimizer and not sf, optimizer=name, schedule_free=sf)


def probe_edges(tuned: Any, points: list[dict[str, Any]], call: Callable[..., Any], options: Any, *,
                epochs_left: int) -> tuple[Any, int]:
    """While the race's best one-cycle (or Schedule-Free) rate is the highest or lowest its
    family raced, train the same schedule half a decade further out at the top rung's length
    (`options.epochs`), in the same study, through `call(options)`; at most
    `MAX_EDGE_PROBES`, and only while `epochs_left` (the final fit's) keeps twice as many.

    Returns:
        `(result, epochs the probes ran)`.
    """
    import optuna

    from lrsearch.study.results import ATTR, RUNG
    from lrsearch.study.space import SearchSpace

    spent = 0
    probes = dict.fromkeys(range(MAX_EDGE_PROBES))
    for _ in probes:
        best = tuned.best
        study = tuned.study
        if best is None or not isinstance(study, optuna.study.Study):
            break
        params = dict(best.provenance.get("params") or {})
        family = params.get("family")
        if family not in ("one_cycle", "schedule_free") or epochs_left - spent < 2 * options.epochs + 1:
            break
        key = PEAK_KEYS[family]
        raced = [p[key] for p in points if p.get("family") == family] + [params[key]]
        side = at_edge(float(params[key]), raced)
        if side is None:
            break
        rate = float(params[key]) * (EDGE_STEP if side == "top" else 1 / EDGE_STEP)
        meta = dict(study.user_attrs.get(ATTR) or {})
        space = SearchSpace.from_dict(meta["space"])
        widened = _holding(space, rate)
        meta["space"] = widened.to_dict()
        meta["widened"] = [*meta.get("widened", ()), {
            "param": key, "side": side, "old": [space.base_lr, space.peak_max_lr or space.max_lr],
            "new": [widened.base_lr, widened.peak_max_lr or widened.max_lr], "cap": None, "changed": [key],
            "after_trials": len(study.trials), "probe": True}]
        study.set_user_attr(ATTR, meta)
        rung = dict(study.trials[best.provenance["trial"]].user_attrs.get(RUNG) or {})
        study.enqueue_trial({**params, key: rate}, user_attrs={RUNG: rung} if rung else None)
        logger.info("race: the best %s rate %.3g is the %s one raced; one more at %.3g before the final fit",
                    family.replace("_", "-"), params[key], "highest" if side == "top" else "lowest", rate)
        before = int(tuned.trials["epochs_run"].sum())
        tuned = call(dataclasses.replace(options, fidelity="truncate", trials=1, pruner="none", timeout=None))
        spent += int(tuned.trials["epochs_run"].sum()) - before
        points = [*points, {"family": family, key: rate}]
        if tuned.best is None or tuned.best.provenance.get("trial") == best.provenance.get("trial"):
            break  # the probe did not win: the bracket held the best rate
    return tuned, spent


def _holding(space: Any, rate: float) -> Any:
    """`space` with its peak range widened to hold `rate`."""
    fields = dict(space.__dict__)
    if rate > float(space.peak_max_lr or space.max_lr):
        fields["peak_max_lr"] = rate
        if space.limit_lr is not None:
            fields["limit_lr"] = max(float(space.limit_lr), rate)
    elif rate < float(space.base_lr):
        fields["base_lr"] = rate
        if space.floor_lr is not None:
            fields["floor_lr"] = min(float(space.floor_lr), rate)
    return type(space)(**fields)


def tell_winner(tuned: Any, design: RaceDesign, metric: str, direction: str) -> str | None:
    """One line when the race's winner is another optimizer than the user's (the
    Schedule-Free twin), with its margin at the highest rung both reached; `None` otherwise."""
    best = tuned.best
    if best is None or design.schedule_free or (best.provenance.get("params") or {}).get("family") != "schedule_free":
        return None
    twin = str(best.optimizer).replace("ScheduleFree", "Schedule-Free ")
    found = optimizer_margin(tuned.trials.to_dict("records"), direction)
    how = (f"beat your {design.optimizer} by {found[0]:.3g} {metric}" if found is not None
           else f"won (no trial of your {design.optimizer} finished)")
    line = f"{twin} {how} in the race; exported it; --keep-optimizer keeps yours"
    logger.warning("%s", line)
    return line
