"""Rungs of successive halving over complete schedules: a bracket's trials and lengths.

`halving_rungs` is one bracket of a schedule-halving study (`lrsearch.study.halving`);
`race_rungs` the bracket a short budget's race runs (`lrsearch.study.budget`,
`lrsearch.study.race`). Pure arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrsearch.core.errors import argument_error

__all__ = ["RACE_OPENING", "Rung", "halving_cost", "halving_rungs", "race_rungs"]

RACE_OPENING = 5
"""Fewest first-rung trials of a race with more than one rung: below, at and above `max_lr`."""


@dataclass(frozen=True)
class Rung:
    """One rung of successive halving: `trials` complete schedules of `epochs` epochs."""

    trials: int
    epochs: int

    @property
    def cost(self) -> int:
        return self.trials * self.epochs


def halving_rungs(trials: int, epochs: int, eta: int = 2) -> tuple[Rung, ...]:
    """The rungs of one successive-halving bracket over complete schedules.

    `trials` schedules run at the shortest length, the best `1/eta` of each rung run again
    at `eta` times the length, up to `epochs`. The bracket has `R` rungs, the most for
    which the top rung still holds at least `eta` trials and the bottom rung at least one
    epoch: `R = min(floor(log_eta(trials)), floor(log_eta(epochs)) + 1)`, at least 1. Rung
    `k` holds `floor(trials / eta**k)` trials of `round(epochs / eta**(R - 1 - k))` epochs.

    Example: 8 trials, 8 epochs, eta 2 -> 8 x 2, 4 x 4, 2 x 8 epochs.

    Raises:
        ConfigError: trials or epochs < 1, eta < 2.
    """
    for name, value, low in (("trials", trials, 1), ("epochs", epochs, 1), ("eta", eta, 2)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise argument_error(name, f"an integer >= {low}", value)
    rungs = max(1, min(_ilog(trials, eta), _ilog(epochs, eta) + 1))
    out = []
    for k in range(rungs):
        length = max(1, math.floor(epochs / eta ** (rungs - 1 - k) + 0.5))
        out.append(Rung(trials // eta**k, length))
    return tuple(out)


def _ilog(n: int, base: int) -> int:
    """floor(log_base(n)) in integers."""
    k = 0
    while base ** (k + 1) <= n:
        k += 1
    return k


def halving_cost(rungs: tuple[Rung, ...]) -> int:
    """Epochs of a whole bracket."""
    return sum(r.cost for r in rungs)


def race_rungs(race_epochs: float, *, max_epochs: int | None = None, eta: int = 2,
               opening: int = RACE_OPENING) -> tuple[Rung, ...]:
    """The successive-halving bracket a race of `race_epochs` epochs runs.

    The longest top rung (at most `max_epochs`) whose bracket still opens with `opening`
    trials, the most first-rung trials at that length; when not even one-epoch trials fit
    `opening`, one rung of as many one-epoch trials as fit.

    Example: 9 epochs -> 5 x 1, 2 x 2 (9); 18 -> 5 x 2, 2 x 4 (18); 4 -> 4 x 1.
    """
    room = float(race_epochs)
    top = max(1, int(max_epochs if max_epochs is not None else room))
    for length in range(top, 0, -1):
        n, best = 1, None
        while halving_cost(halving_rungs(n, length, eta)) <= room + 1e-9:
            best = halving_rungs(n, length, eta)
            n += 1
        if best is not None and best[0].trials >= opening and (len(best) > 1 or length == 1):
            return best
    return (Rung(max(1, int(room + 1e-9)), 1),)
