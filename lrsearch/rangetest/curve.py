"""A range-test curve made readable: its moving average, and where it stops being usable.

`smooth_loss` is the debiased moving average the range test stops on; `trim_curve` /
`cut_curve` sort a curve by rate and cut it at its first NaN or divergence;
`drop_blowup` removes the tail of a diverged curve that lies above its starting level.
The suggestion rules (`lrsearch.rangetest.analysis`) read what is left.

Pure NumPy/SciPy: no Keras, no matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from lrsearch.core.errors import CurveError, argument_error

__all__ = ["cut_curve", "drop_blowup", "smooth_loss", "trim_curve"]


def smooth_loss(loss: Sequence[float] | np.ndarray, smooth: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction (Adam's debiasing).

        avg[i] = smooth * avg[i-1] + (1 - smooth) * loss[i],  avg[-1] = 0
        smooth_loss[i] = avg[i] / (1 - smooth ** (i + 1))

    The correction makes the first values equal to the early losses instead of being
    pulled towards 0. A NaN makes every later value NaN.

    Args:
        loss: per-batch losses.
        smooth: the averaging factor in [0, 1); 0 returns the losses unchanged.

    Returns:
        float64 array of the same length.

    Raises:
        ConfigError: `smooth` outside [0, 1).
    """
    if not 0.0 <= smooth < 1.0:
        raise argument_error("smooth", "in [0, 1)", smooth)
    x = np.asarray(loss, dtype=np.float64).ravel()
    if x.size == 0:
        return x
    avg = signal.lfilter([1.0 - smooth], [1.0, -smooth], x)
    return avg / (1.0 - smooth ** np.arange(1, x.size + 1))


def trim_curve(
    lr: Sequence[float] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
    *,
    diverge: float = 4.0,
    smooth: float = 0.98,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a curve, sort it by rate and cut it where it stops being usable.

    The cut is at the first non-finite loss and after the first point whose debiased
    moving average exceeds `diverge` times its running minimum (only for positive
    losses, for which the ratio means something).

    Returns:
        `(lr, loss)` float64 arrays.

    Raises:
        CurveError: the sequences are not 1-D of equal length, or a rate is not a finite
            positive number.
    """
    lr, loss, _ = cut_curve(lr, loss, diverge, smooth)
    return lr, loss


def cut_curve(lr: Any, loss: Any, diverge: float = 4.0, smooth: float = 0.98
              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """`trim_curve`, and whether the curve ended in a NaN or a divergence: cut here, or
    its last point is the one past the threshold (the range test stopped there)."""
    lr = np.asarray(lr, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if lr.ndim != 1 or loss.ndim != 1 or lr.shape != loss.shape:
        raise CurveError(
            f"lr and loss must be 1-D sequences of equal length; "
            f"got shapes {lr.shape} and {loss.shape}"
        )
    if not np.all(np.isfinite(lr)) or np.any(lr <= 0):
        raise CurveError("every learning rate must be a finite number > 0; check the lr column")
    order = np.argsort(lr, kind="stable")
    lr, loss = lr[order], loss[order]
    keep = np.concatenate([[True], np.diff(lr) > 0])  # first of any repeated rate
    lr, loss = lr[keep], loss[keep]
    ended = False
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        lr, loss, ended = lr[: bad[0]], loss[: bad[0]], True
    if loss.size and diverge and np.all(loss > 0):
        avg = smooth_loss(loss, smooth)
        over = np.flatnonzero(avg > diverge * np.minimum.accumulate(avg))
        if over.size:
            lr, loss, ended = lr[: over[0] + 1], loss[: over[0] + 1], True
    return lr, loss, ended


def drop_blowup(loss: np.ndarray, start: int) -> int:
    """Length of the curve without its trailing run of losses above the starting level.

    The moving average that detects divergence lags, so the last few points of a
    diverged curve are already far above where the loss began: rates at which training
    is worse than not training at all. Left in, they drag the smoothed curve (and its
    minimum) around at the edge; fastai drops a fixed 5 points for the same reason.
    """
    level = float(np.median(loss[:start]))
    k = loss.size
    while k > start and loss[k - 1] > level:
        k -= 1
    return k
