"""The arithmetic of lrsearch's schedules, written once for NumPy and `keras.ops`.

Every function takes the step (or epoch) as an array and an array namespace `xp`
(`numpy` by default, `keras.ops` inside a compiled train step): both provide the few
element-wise functions used here (`where`, `minimum`, `maximum`, `floor`, `mod`, `round`, `cos`,
`power`, `exp`, `sqrt`), so the same lines compute the rate in a Keras schedule and in a
NumPy table. Branches are `xp.where`, never Python `if` on the step, so a whole
array of steps is evaluated in one call. Python `if` appears only on configuration.

This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ANNEAL_STRATEGIES",
    "CYCLIC_MODES",
    "WSD_DECAY_SHAPES",
    "WSD_WARMUP_SHAPES",
    "anneal",
    "cyclic",
    "one_cycle_end_steps",
    "piecewise_anneal",
    "ramp_sustain_decay",
    "warmup_cosine",
    "warmup_stable_decay",
]

ANNEAL_STRATEGIES = ("cos", "linear")
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
WSD_WARMUP_SHAPES = ("linear", "cosine")
WSD_DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def anneal(start: float, end: float, pct: Any, strategy: str, xp: Any = np) -> Any:
    """Value between `start` (pct=0) and `end` (pct=1), by cosine or straight line.

    Cosine is PyTorch's `_annealing_cos`: `end + (start - end) / 2 * (cos(pi * pct) + 1)`.
    """
    if strategy == "cos":
        return end + (start - end) / 2.0 * (xp.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


def one_cycle_end_steps(total_steps: int, pct_start: float, three_phase: bool) -> tuple[float, ...]:
    """The last step of each phase of PyTorch's `OneCycleLR`.

    Two phases end at `pct_start * total_steps - 1` and `total_steps - 1`; three phases
    add the symmetric ramp down, ending at `2 * pct_start * total_steps - 2`.
    """
    first = float(pct_start * total_steps) - 1
    if three_phase:
        return (first, float(2 * pct_start * total_steps) - 2, float(total_steps - 1))
    return (first, float(total_steps - 1))


def piecewise_anneal(
    step: Any, end_steps: Sequence[float], values: Sequence[float], strategy: str, xp: Any = np
) -> Any:
    """Anneal from `values[i]` to `values[i + 1]` during phase `i`, as `OneCycleLR` does.

    Phase `i` runs from `end_steps[i - 1]` (0 for the first) to `end_steps[i]`; a step
    belongs to the first phase whose end it does not exceed, and to the last phase
    otherwise. Past the last end step the final value holds.
    """
    if len(values) != len(end_steps) + 1:
        raise ValueError("piecewise_anneal needs one more value than end steps")
    step = xp.minimum(step, end_steps[-1])
    starts = (0.0, *end_steps[:-1])
    result = None
    for i in reversed(range(len(end_steps))):
        span = end_steps[i] - starts[i]
        pct = (step - starts[i]) / span if span != 0 else step * 0.0
        value = anneal(values[i], values[i + 1], pct, strategy, xp)
        result = value if result is None else xp.where(step <= end_steps[i], value, result)
    return result


def cyclic(
    step: Any,
    low: float,
    high: float,
    step_size_up: float,
    step_size_down: float,
    mode: str,
    gamma: float,
    inverse: bool = False,
    xp: Any = np,
) -> Any:
    """PyTorch's `CyclicLR` value at `step`: `low + (high - low) * scale * f(cycle or step)`.

    With `inverse=True` it is the momentum companion, `high - (high - low) * scale * f`.
    `f` is 1 (`triangular`), `1 / 2 ** (cycle - 1)` (`triangular2`), or `gamma ** step`
    (`exp_range`).
    """
    total = float(step_size_up + step_size_down)
    ratio = step_size_up / total
    # from the exact remainder, not floor(1 + step / total): XLA's division on CPU (JAX) is
    # not correctly rounded, and 84 / 14 = 6.0000005 would start the next cycle a step late
    into = xp.mod(step, total)
    cycle = xp.round((step - into) / total) + 1.0
    x = into / total
    scale = xp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    if mode == "triangular":
        factor = 1.0
    elif mode == "triangular2":
        factor = 1.0 / xp.power(2.0, cycle - 1.0)
    else:
        factor = xp.power(gamma, step)
    height = (high - low) * scale * factor
    return high - height if inverse else low + height


def ramp_sustain_decay(
    epoch: Any,
    start_lr: float,
    max_lr: float,
    min_lr: float,
    rampup_epochs: int,
    sustain_epochs: int,
    exp_decay: float,
    xp: Any = np,
) -> Any:
    """Linear ramp to `max_lr`, a plateau, then exponential decay towards `min_lr`.

    `epoch` is the whole number of epochs done (`step // steps_per_epoch`).
    """
    if rampup_epochs > 0:
        ramp = (max_lr - start_lr) / rampup_epochs * epoch + start_lr
    else:
        ramp = epoch * 0.0 + max_lr
    decayed_epochs = xp.maximum(epoch - rampup_epochs - sustain_epochs, 0.0)
    decay = (max_lr - min_lr) * xp.power(exp_decay, decayed_epochs) + min_lr
    return xp.where(
        epoch < rampup_epochs,
        ramp,
        xp.where(epoch < rampup_epochs + sustain_epochs, epoch * 0.0 + max_lr, decay),
    )


def warmup_cosine(
    step: Any,
    base_lr: float,
    total_steps: int,
    warmup_lr: float,
    warmup_steps: int,
    hold_steps: int,
    xp: Any = np,
) -> Any:
    """Linear warmup, a hold at `base_lr`, cosine decay to 0 at `total_steps`, then 0."""
    if warmup_steps > 0:
        warm = warmup_lr + (base_lr - warmup_lr) * step / warmup_steps
    else:
        warm = step * 0.0 + base_lr
    flat = warmup_steps + hold_steps
    progress = xp.minimum(xp.maximum(step - flat, 0.0) / (total_steps - flat), 1.0)
    cosine = 0.5 * base_lr * (1.0 + xp.cos(math.pi * progress))
    return xp.where(
        step < warmup_steps,
        warm,
        xp.where(step < flat, step * 0.0 + base_lr, xp.where(step < total_steps, cosine, step * 0.0)),
    )


def warmup_stable_decay(
    step: Any,
    max_lr: float,
    total_steps: int,
    warmup_lr: float,
    warmup_steps: int,
    warmup_shape: str,
    decay_steps: int,
    decay_shape: str,
    min_lr: float,
    xp: Any = np,
) -> Any:
    """Warmup to `max_lr`, a constant stable phase, then a decay to `min_lr` at `total_steps`.

    The warmup runs over steps `[0, warmup_steps)` (`max_lr` reached at `warmup_steps`),
    the decay over `[total_steps - decay_steps, total_steps)` with progress
    `q = (step - total_steps + decay_steps) / decay_steps`, shaped `1 - q` (linear),
    `(1 + cos(pi q)) / 2` (cosine) or `1 - sqrt(q)` (1-sqrt); `min_lr` holds from
    `total_steps` on.
    """
    if warmup_steps > 0:
        p = xp.minimum(step / warmup_steps, 1.0)
        rise = p if warmup_shape == "linear" else 0.5 * (1.0 - xp.cos(math.pi * p))
        warm = warmup_lr + (max_lr - warmup_lr) * rise
    else:
        warm = step * 0.0 + max_lr
    start = total_steps - decay_steps
    q = xp.minimum(xp.maximum(step - start, 0.0) / decay_steps, 1.0)
    if decay_shape == "linear":
        fall = 1.0 - q
    elif decay_shape == "cosine":
        fall = 0.5 * (1.0 + xp.cos(math.pi * q))
    else:
        fall = 1.0 - xp.sqrt(q)
    decay = min_lr + (max_lr - min_lr) * fall
    return xp.where(step < warmup_steps, warm, xp.where(step < start, step * 0.0 + max_lr, decay))
