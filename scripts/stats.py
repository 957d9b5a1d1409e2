"""Paired comparisons over seeds: mean difference, a bootstrap interval, win / tie / loss.

Each seed gives every arm the same initial weights and batch order, so two arms are
compared seed by seed: the differences `ours - theirs` (signed so that positive means
ours is better) are resampled with `scipy.stats.bootstrap` (BCa by default, a fixed
generator seed, so that a table is the same on every run), and the verdict is a win or
a loss only when the interval leaves 0 out, else a tie. Pure numpy and scipy: no Keras.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
RESAMPLES = 9999
SEED = 0
MIN_SEEDS = 5
"""Fewest paired seeds a table calls a win or a loss on (fewer: the interval is shown, the
verdict reads n/a; BCa on two or three differences is too narrow to trust)."""


@dataclass(frozen=True)
class Paired:
    """The mean of the paired differences (ours better when > 0) and its interval."""

    diff: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        """`"win"` (interval above 0), `"loss"` (below 0), `"tie"`, or `"n/a"` (< 2 seeds)."""
        return verdict(self.low, self.high)


def verdict(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "tie"


def paired(ours: Sequence[float], theirs: Sequence[float], *, higher_is_better: bool = True,
           level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED,
           method: str = "BCa") -> Paired:
    """`ours[i]` and `theirs[i]` are the two arms' scores on seed i. BCa falls back to the
    percentile interval where it is undefined (every resample alike); identical differences
    give the interval [d, d]; fewer than two seeds give a nan interval."""
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D sequences of one length, got {a.shape} and {b.shape}")
    d = a - b if higher_is_better else b - a
    if d.size == 0:
        return Paired(math.nan, math.nan, math.nan, 0)
    mean = float(d.mean())
    if d.size < 2:
        return Paired(mean, math.nan, math.nan, 1)
    if np.ptp(d) == 0:
        return Paired(mean, mean, mean, int(d.size))
    low, high = _interval(d, level, resamples, seed, method)
    if method == "BCa" and not (math.isfinite(low) and math.isfinite(high)):
        low, high = _interval(d, level, resamples, seed, "percentile")
    return Paired(mean, low, high, int(d.size))


def _interval(d: np.ndarray, level: float, resamples: int, seed: int, method: str) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa on a few values: degenerate-data warnings
        res = sps.bootstrap((d,), np.mean, confidence_level=level, n_resamples=resamples,
                            method=method, rng=np.random.default_rng(seed), vectorized=True)
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def tally(verdicts: Iterable[str]) -> dict[str, int]:
    """Counts of `win`, `tie`, `loss` (and `n/a`) in `verdicts`."""
    out = {"win": 0, "tie": 0, "loss": 0, "n/a": 0}
    for v in verdicts:
        out[v] += 1
    return out


def quarter_decade(k: int) -> float:
    """The oracle's grid: 10 ** (k / 4)."""
    return float(10 ** (k / 4))


def extend_grid(scores: dict[int, float], *, higher_is_better: bool, lo: int, hi: int) -> int | None:
    """The next grid index to try so that the best of `scores` (index -> score) is interior:
    one past the best's end, or None once the best has neighbours on both sides (or the grid
    reached `lo` / `hi`). Ties go to the smaller rate."""
    ks = sorted(scores)
    sign = 1.0 if higher_is_better else -1.0
    best = max(ks, key=lambda k: (sign * _finite(scores[k], higher_is_better), -k))
    if best == ks[0] and best - 1 >= lo:
        return best - 1
    if best == ks[-1] and best + 1 <= hi:
        return best + 1
    return None


def _finite(v: float, higher_is_better: bool) -> float:
    if math.isnan(v):
        return -math.inf if higher_is_better else math.inf
    return v
