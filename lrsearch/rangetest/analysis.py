"""Reading a range-test curve: the learning-rate bounds and what is wrong with it (NumPy/SciPy).

The curve is the loss of each batch against the learning rate used for it. From it
`suggest` reads four rates and the two bounds a study searches between:

- the curve is cut at its first non-finite loss and where its debiased moving average
  first exceeds `diverge` times its running minimum (the range test's own stop rule);
- it is resampled onto an evenly spaced log10(lr) grid (so exponential and linear
  sweeps are read the same way), passed through a running median (single wild batches
  do not move it), smoothed with a Savitzky-Golay filter and differentiated in
  log10(lr) with the same filter; both are centred, so there is none of a moving
  average's lag that would shift the rates to the right;
- `min_loss_lr` is the lowest point of the curve smoothed over twice the window (the
  loss floor is flat and noisy: a narrow window lets its argmin jump between seeds),
  `steepest_lr` the most negative slope before it, `valley_lr` fastai's valley rule (a point in the longest
  falling stretch of the curve);
- `base_lr` is where the descent starts: walking left from the steepest point, the last
  point whose slope is still at least `start_slope` times the steepest slope;
- `max_lr`, the peak of a one-cycle schedule, is `min_loss_lr / margin`: 3 for SGD with
  momentum (and when the optimizer is unknown), 1.5 for adaptive optimizers (Adam,
  AdamW, RMSprop, ...) and Schedule-Free ones (their constant rate, SGD's included). The minimum is where training survives a few steps at a rate
  that rises every batch; a schedule that holds its peak for epochs needs room below
  it, and more so where momentum multiplies the step once it has built up. Chosen on
  the fit half of `scripts/bench_suggestions.py` against slope-based ends of the
  descent, the steepest point and fixed margins (docs/suggestions.md).

A curve that says little still gets bounds, but never silently: `LRSuggestion.warnings`
names each problem (no descent, a flat curve, heavy noise, still falling at the top of
the range, too few points) and what to do about it. A curve from which nothing can be
read (fewer than `MIN_POINTS` usable points) raises `CurveError`.

This module imports neither Keras nor matplotlib: it can read curves from any tool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage, signal

from lrsearch.core import checks
from lrsearch.core.errors import ConfigError, CurveError, argument_error
from lrsearch.rangetest.curve import cut_curve, drop_blowup, smooth_loss, trim_curve  # the last two: lrsearch.analysis.*

__all__ = [
    "MARGIN_ADAPTIVE",
    "MARGIN_MOMENTUM",
    "MIN_POINTS",
    "PROBLEMS",
    "UNREADABLE",
    "LRSuggestion",
    "batch_noise",
    "default_margin",
    "smooth_loss",
    "suggest",
    "trim_curve",
]

MIN_POINTS = 10
"""Fewest usable points from which `suggest` reads anything."""

PROBLEMS = ("no_descent", "flat", "noisy", "still_falling", "short_descent", "few_points")
"""Codes of `LRSuggestion.problems`: the loss does not fall; falls by under 2%; its noise
(`batch_noise`) is over a fifth of the descent; it still falls at the largest rate; the
descent spans under three points; fewer than `3 * MIN_POINTS` usable points."""

UNREADABLE = ("no_descent", "flat")
"""Problems after which the bounds are a guess, not a reading."""

MARGIN_MOMENTUM = 3.0
"""`max_lr = min_loss_lr / margin` for SGD with momentum, and for an unknown optimizer."""
MARGIN_ADAPTIVE = 1.5
"""... for optimizers that scale each step by a running gradient size (Adam, RMSprop...),
and for the Schedule-Free ones (no heavy ball)."""
_ADAPTIVE = ("adam", "rmsprop", "adagrad", "adadelta", "adafactor", "lion", "lamb", "ftrl")


def default_margin(optimizer: str | None) -> float:
    """The margin below the loss minimum for an optimizer, by its class name.

    SGD's heavy ball multiplies a step by up to 1 / (1 - momentum) once momentum has
    built up, which a test whose rate rises every step never reaches: the minimum it
    reads is 3x too high for a schedule that holds its peak. An adaptive optimizer's step
    is bounded by its rate whatever the gradient, so its minimum is read almost as it is.
    So is a Schedule-Free one's, SGD included (`ScheduleFreeSGD`, the reference's
    `SGDScheduleFree`): it has no heavy ball, its base iterate moves by the rate times the
    gradient and the interpolation only shortens that step (BENCHMARKS.md, the
    range-tested rate of Schedule-Free).
    """
    name = (optimizer or "").lower()
    adaptive = any(k in name for k in _ADAPTIVE) or "schedulefree" in name
    return MARGIN_ADAPTIVE if adaptive else MARGIN_MOMENTUM


@dataclass(frozen=True)
class LRSuggestion:
    """Rates read from a range-test curve, and the bounds a study searches between.

    Invariant: `base_lr < max_lr`, both inside the tested range. `base_lr` / `max_lr`
    are CLR's lower / upper rate and the range of one-cycle's peak rate.

    Attributes:
        base_lr: where the loss starts falling.
        max_lr: where the loss stops falling (before the minimum, before divergence).
        steepest_lr: the most negative slope of the smoothed loss in log10(lr).
        valley_lr: fastai's valley point (inside the longest falling stretch).
        min_loss_lr: the rate at the lowest smoothed loss.
        warnings: one sentence per problem with the curve; empty for a clean curve.
        problems: a short code per warning, in the same order (`PROBLEMS`), so that a
            caller can act on them (the range test extends itself on these).
    """

    base_lr: float
    max_lr: float
    steepest_lr: float
    valley_lr: float
    min_loss_lr: float
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.base_lr < self.max_lr:
            raise ConfigError(
                f"LRSuggestion needs 0 < base_lr < max_lr. "
                f"Received: base_lr={self.base_lr}, max_lr={self.max_lr}"
            )
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        object.__setattr__(self, "problems", tuple(str(p) for p in self.problems))
        unknown = sorted(set(self.problems) - set(PROBLEMS))
        if unknown:
            raise ConfigError(f"unknown curve problem(s) {unknown}; known: {', '.join(PROBLEMS)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (rates as floats, warnings as a list)."""
        d = dataclasses.asdict(self)
        d["warnings"] = list(self.warnings)
        d["problems"] = list(self.problems)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LRSuggestion:
        """Inverse of `to_dict`; unknown keys are refused (dicts written before `problems`
        existed are read with none).

        Raises:
            ConfigError: a field is missing or unknown.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        missing = sorted(set(names[:5]) - set(d))
        if unknown or missing:
            raise ConfigError(
                f"not an LRSuggestion dict: missing {missing}, unknown {unknown}; "
                f"expected keys {names}"
            )
        kw = {k: float(d[k]) for k in names[:5]}
        return cls(**kw, warnings=tuple(d.get("warnings", ())), problems=tuple(d.get("problems", ())))

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import suggestion_html  # notebook display
        return suggestion_html(self)


def _valley_index(y: np.ndarray) -> int:
    """fastai's valley rule: in the longest decreasing subsequence, a point 1/2 along.

    `lds[i]` is the length of the longest strictly decreasing subsequence ending at i;
    the stretch it spans is split in thirds and the point at 1.5 thirds is returned.
    """
    n = y.size
    lds = np.ones(n, dtype=np.int64)
    max_start = max_end = 0
    for i in range(1, n):
        higher = y[:i] > y[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
        if lds[i] > lds[max_end]:
            max_end = i
            max_start = max_end - int(lds[max_end])
    sections = (max_end - max_start) / 3
    return int(min(max(max_start + int(sections) + int(sections / 2), 0), n - 1))


def batch_noise(residuals: np.ndarray) -> float:
    """The typical batch-to-batch scatter of the loss around its smoothed curve: the
    median absolute deviation, scaled to equal the standard deviation of Gaussian noise.

    A standard deviation would be set by a handful of single wild batches (a batch of
    +4.6 among 160 adds 0.36 to it), which the running median the curve is read through
    ignores; they do not make the bounds uncertain.
    """
    r = np.asarray(residuals, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if r.size else 0.0


FLOOR_BAND = 0.1
"""The loss minimum is read where the wide running median lies within this fraction of
the curve's drop above its lowest value."""


def _odd_window(n: int, frac: float) -> int:
    w = max(5, int(round(n * frac)))
    w = min(w, n if n % 2 else n - 1)
    return w if w % 2 else w - 1


def suggest(
    lr: Sequence[float] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
    *,
    start_slope: float = 0.2,
    stop_slope: float = 0.2,
    window: float = 0.1,
    diverge: float = 4.0,
    margin: float | None = None,
    optimizer: str | None = None,
) -> LRSuggestion:
    """Read learning-rate bounds from a range-test curve (raw per-batch losses).

    The rules (see the module docstring for details): cut at NaN and divergence;
    resample on an even log10(lr) grid; Savitzky-Golay smoothing and slope;
    `min_loss_lr` = lowest smoothed loss; `steepest_lr` = most negative slope before it;
    `valley_lr` = fastai's valley; `base_lr` = start of the steep stretch around the
    steepest point (slope still >= `start_slope` x steepest); `max_lr` =
    `min_loss_lr / margin`, the margin by optimizer kind (`default_margin`).

    Example:

    >>> lr = np.geomspace(1e-6, 10.0, 200)
    >>> x = np.log10(lr)  # falls around 3e-3, diverges above 0.5
    >>> loss = 0.3 + 2 / (1 + np.exp(3 * (x + 2.5))) + np.exp(3 * (x + 0.3))
    >>> s = suggest(lr, loss)
    >>> s.base_lr < s.steepest_lr < s.max_lr < s.min_loss_lr
    True

    Args:
        lr: learning rates, one per batch (any order; sorted here).
        loss: the raw loss of each batch (not a running mean).
        start_slope: fraction of the steepest slope at which the descent has begun.
        stop_slope: no longer used (`max_lr` is read from the minimum); accepted so that
            older calls keep working.
        window: Savitzky-Golay window as a fraction of the usable points (at least 5).
        diverge: cut where the moving average exceeds this times its minimum (0: never).
        margin: `max_lr = min_loss_lr / margin` (>= 1); None: `default_margin(optimizer)`,
            3 for SGD with momentum or an unknown optimizer, 1.5 for adaptive ones
            (BENCHMARKS.md, suggestion quality).
        optimizer: the optimizer's class name (`RangeTestResult.meta["optimizer"]`).

    Returns:
        An `LRSuggestion`; `warnings` lists every problem found with the curve.

    Raises:
        CurveError: fewer than `MIN_POINTS` usable points, or malformed input.
        ConfigError: a rule parameter out of range.
    """
    for name, value in (("start_slope", start_slope), ("stop_slope", stop_slope), ("window", window)):
        checks.unit(name, value, open_low=True, open_high=True)
    if margin is None:
        margin = default_margin(optimizer)
    if not checks.number("margin", margin) >= 1.0:
        raise argument_error("margin", ">= 1", margin)
    checks.number("diverge", diverge)
    lr, loss = checks.numbers("lr", lr), checks.numbers("loss", loss)
    total = len(np.asarray(lr).ravel())
    lr_, loss_, diverged = cut_curve(lr, loss, diverge, 0.98)
    if diverged and lr_.size > 2 * MIN_POINTS:
        k = drop_blowup(loss_, max(MIN_POINTS, lr_.size // 10))
        lr_, loss_ = lr_[:k], loss_[:k]
    n = lr_.size
    if n < MIN_POINTS:
        raise CurveError(
            f"only {n} usable points of {total} in the loss curve (NaN or divergence "
            f"right away); nothing can be read from it: rerun the range test with a "
            f"lower min_lr or max_lr, or more steps"
        )
    warns: list[tuple[str, str]] = []

    def warn(code: str, message: str) -> None:
        warns.append((code, message))

    x = np.log10(lr_)
    grid = np.linspace(x[0], x[-1], n)
    y = np.interp(grid, x, loss_)
    w = _odd_window(n, window)
    order = 2 if w > 3 else 1
    step = grid[1] - grid[0] if n > 1 else 1.0
    # a running median first: single wild batches (common near divergence) would
    # otherwise drag the least-squares fit; both filters are centred (no lag)
    ym = ndimage.median_filter(y, size=w, mode="nearest")
    ys = signal.savgol_filter(ym, w, order, mode="interp")
    slope = signal.savgol_filter(ym, w, order, deriv=1, delta=step, mode="interp")
    rates = 10.0**grid
    rates[0], rates[-1] = lr_[0], lr_[-1]  # exact ends despite float round trips

    # the minimum of a curve smoothed twice as wide: the loss floor is noisy and flat,
    # its argmin under the narrow window moved 2-10x between seeds (BENCHMARKS.md)
    wide = _odd_window(n, min(2 * window, 0.5))
    median = ndimage.median_filter(y, size=wide, mode="nearest")
    floor = signal.savgol_filter(median, wide, 2 if wide > 3 else 1, mode="interp")
    # the filters' fit at the end of a cut curve can dip below the data: no minimum there
    end = n - 1 - (wide // 2 if diverged and n > 2 * wide else 0)
    # nor where the quadratic fit undershoots a sharp rise (a noisy floor that climbs
    # steeply at the top without tripping the divergence rule): the minimum is looked
    # for only where the running median itself is near its lowest
    low = median[: end + 1]
    near = low <= low.min() + FLOOR_BAND * max(low[0] - low.min(), 0.0)
    i_min = int(np.argmin(np.where(near, floor[: end + 1], np.inf)))
    # the slope at the first half window is an extrapolated fit, not a centred estimate
    first = w // 2 if i_min > w else 0
    i_steep = first + int(np.argmin(slope[first : i_min + 1]))
    g = slope[i_steep]
    drop = ys[0] - ys[i_min]
    scale = max(abs(ys[0]), abs(ys[i_min]), 1e-12)
    noise = batch_noise((y - ys)[: i_min + 1])  # the part the bounds are read from
    edge = max(1, n // 20)
    lo, hi = f"{lr_[0]:.3g}", f"{lr_[-1]:.3g}"
    cap = max(int(np.searchsorted(rates, rates[i_min] / margin, side="right")) - 1, 1)

    if i_min <= edge or g >= 0 or drop <= 0:
        warn(
            "no_descent",
            f"the loss does not fall anywhere in the tested range ({lo} to {hi}): the "
            f"usable rates lie at or below min_lr; rerun with a lower min_lr"
        )
        base_i, max_i = 0, max(1, min(i_min, n - 1), n // 10)
        i_steep = 0
    else:
        base_i = i_steep
        while base_i > 0 and slope[base_i - 1] <= start_slope * g:
            base_i -= 1
        max_i = cap
        if drop / scale < 0.02:
            warn(
                "flat",
                f"the loss fell only {100 * drop / scale:.1f}% over the tested range: the "
                f"curve is flat and its bounds are weak; rerun with more steps or a wider "
                f"lr range, and check that the data and labels are right"
            )
        if noise > 0.2 * drop:
            warn(
                "noisy",
                f"the curve is noisy (noise {noise:.3g} vs a descent of {drop:.3g}): the "
                f"bounds are uncertain; rerun with a larger batch size or more steps"
            )
        if i_min >= n - 1 - edge and not diverged:
            warn(
                "still_falling",
                f"the loss was still falling at the largest tested rate ({hi}): max_lr may "
                f"be too low; rerun with a larger max_lr"
            )
        if max_i - base_i < 2:
            base_i = max(0, min(base_i, max_i - max(2, w // 4)))
            warn(
                "short_descent",
                "the descent is too short to separate the bounds; base_lr was moved below "
                "max_lr: rerun with more steps"
            )
    if n < 3 * MIN_POINTS:
        warn("few_points", f"only {n} usable points: the bounds are rough; rerun with more steps")
    max_i = max(min(max_i, cap), 1)
    base_i = min(base_i, max_i - 1)

    result = LRSuggestion(
        base_lr=float(rates[base_i]),
        max_lr=float(rates[max_i]),
        steepest_lr=float(rates[i_steep]),
        valley_lr=float(rates[_valley_index(ys[: max(i_min, 1) + 1])]),
        min_loss_lr=float(rates[i_min]),
        warnings=tuple(m for _, m in warns),
        problems=tuple(c for c, _ in warns),
    )
    return result
