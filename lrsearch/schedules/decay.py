"""Warmup, hold and decay schedules: ramp-sustain-decay, warmup + cosine, warmup-stable-decay
(WSD) and a linear warmup in front of any schedule; plus the linear scaling rule.

Same conventions as `lrsearch.schedules` (which re-exports every name here): `keras.ops`
arithmetic on the update count inside the compiled step, formulas shared with NumPy in
`lrsearch.schedules.formulas`, `get_config()` = the constructor arguments, registered with
`keras.saving`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lrsearch.schedules import formulas
from lrsearch.core.checks import choice, count, fail, non_negative, positive, unit
from lrsearch.schedules.base import float_step, LearningRateSchedule, PACKAGE, ScheduleBase

__all__ = ["LinearWarmup", "RampSustainDecay", "WarmupCosine", "WarmupStableDecay", "scale_lr"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class RampSustainDecay(ScheduleBase):
    """Ramp up, sustain, decay exponentially: the per-epoch one-cycle of fine-tuning recipes.

    ```python
    def ramp_sustain_decay(step):
        e = step // steps_per_epoch
        if e < rampup_epochs:
            return (max_lr - start_lr) / rampup_epochs * e + start_lr
        if e < rampup_epochs + sustain_epochs:
            return max_lr
        return (max_lr - min_lr) * exp_decay ** (e - rampup_epochs - sustain_epochs) + min_lr
    ```

    ```python
    sched = RampSustainDecay(1e-5, 4e-4, 1e-5, rampup_epochs=5, steps_per_epoch=len(train))
    model.compile(optimizer=keras.optimizers.Adam(sched), loss="mse")
    ```

    Args:
        start_lr: rate during the first epoch, >= 0.
        max_lr: rate reached after the ramp, > 0.
        min_lr: rate the decay tends to, >= 0.
        rampup_epochs: epochs of linear ramp, >= 0.
        sustain_epochs: epochs at `max_lr`, >= 0.
        exp_decay: factor per epoch during the decay, in [0, 1].
        steps_per_epoch: optimizer steps per epoch, > 0 (1: `step` counts epochs).

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    def __init__(
        self,
        start_lr: float,
        max_lr: float,
        min_lr: float,
        rampup_epochs: int,
        sustain_epochs: int = 0,
        exp_decay: float = 0.8,
        steps_per_epoch: int = 1,
    ) -> None:
        self.start_lr = non_negative("start_lr", start_lr)
        self.max_lr = positive("max_lr", max_lr)
        self.min_lr = non_negative("min_lr", min_lr)
        self.rampup_epochs = count("rampup_epochs", rampup_epochs)
        self.sustain_epochs = count("sustain_epochs", sustain_epochs)
        self.exp_decay = unit("exp_decay", exp_decay)
        self.steps_per_epoch = count("steps_per_epoch", steps_per_epoch, 1)

    def __call__(self, step: Any) -> Any:
        epoch = ops.floor_divide(ops.cast(step, "int64"), self.steps_per_epoch)
        return formulas.ramp_sustain_decay(
            ops.cast(epoch, "float32"),
            self.start_lr,
            self.max_lr,
            self.min_lr,
            self.rampup_epochs,
            self.sustain_epochs,
            self.exp_decay,
            xp=ops,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "start_lr": self.start_lr,
            "max_lr": self.max_lr,
            "min_lr": self.min_lr,
            "rampup_epochs": self.rampup_epochs,
            "sustain_epochs": self.sustain_epochs,
            "exp_decay": self.exp_decay,
            "steps_per_epoch": self.steps_per_epoch,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupCosine(ScheduleBase):
    """Linear warmup, an optional hold at `base_lr`, then cosine decay to 0 at `total_steps`.

    ```python
    def warmup_cosine(step):
        if step < warmup_steps:
            return warmup_lr + (base_lr - warmup_lr) * step / warmup_steps
        if step < warmup_steps + hold_steps:
            return base_lr
        if step < total_steps:
            t = (step - warmup_steps - hold_steps) / (total_steps - warmup_steps - hold_steps)
            return 0.5 * base_lr * (1 + cos(pi * t))
        return 0.0
    ```

    ```python
    sched = WarmupCosine(0.1, total_steps=epochs * steps_per_epoch, warmup_steps=500)
    model.compile(optimizer=keras.optimizers.SGD(sched, momentum=0.9), loss="mse")
    ```

    Args:
        base_lr: rate after the warmup, > 0.
        total_steps: step at which the rate reaches 0, > warmup_steps + hold_steps.
        warmup_lr: rate at step 0, >= 0.
        warmup_steps: steps of linear warmup, >= 0.
        hold_steps: steps at `base_lr` after the warmup, >= 0.

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        warmup_lr: float = 0.0,
        warmup_steps: int = 0,
        hold_steps: int = 0,
    ) -> None:
        self.base_lr = positive("base_lr", base_lr)
        self.total_steps = count("total_steps", total_steps, 1)
        self.warmup_lr = non_negative("warmup_lr", warmup_lr)
        self.warmup_steps = count("warmup_steps", warmup_steps)
        self.hold_steps = count("hold_steps", hold_steps)
        if self.warmup_steps + self.hold_steps >= self.total_steps:
            raise fail("total_steps", f"> warmup_steps + hold_steps = {self.warmup_steps + self.hold_steps}",
                        self.total_steps)

    def __call__(self, step: Any) -> Any:
        return formulas.warmup_cosine(
            float_step(step),
            self.base_lr,
            self.total_steps,
            self.warmup_lr,
            self.warmup_steps,
            self.hold_steps,
            xp=ops,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_lr": self.warmup_lr,
            "warmup_steps": self.warmup_steps,
            "hold_steps": self.hold_steps,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupStableDecay(ScheduleBase):
    """Warmup-stable-decay (WSD): a warmup to `max_lr`, a long constant phase, a short decay.

    The rate rises from `warmup_lr` to `max_lr` over `warmup_steps` (straight or along a
    half cosine), stays at `max_lr`, and over the last `decay_steps` of the run (by
    default `decay_fraction` of it) falls to `min_lr`, reached at `total_steps` and held
    after. The stable phase does not depend on the run's length, so runs of different
    lengths share it and only the decay is specific to one length.

    ```python
    def wsd(step):
        if step < warmup_steps:
            p = step / warmup_steps                   # "cosine": p = (1 - cos(pi * p)) / 2
            return warmup_lr + (max_lr - warmup_lr) * p
        start = total_steps - decay_steps             # decay_steps = round(decay_fraction * total_steps)
        if step < start:
            return max_lr
        q = min((step - start) / decay_steps, 1)
        return min_lr + (max_lr - min_lr) * (1 - sqrt(q))   # "linear": 1 - q, "cosine": (1 + cos(pi * q)) / 2
    ```

    ```python
    sched = WarmupStableDecay(3e-3, total_steps=epochs * steps_per_epoch, warmup_steps=200)
    model.compile(optimizer=lrsearch.optimizers.AdamW(sched), loss="mse")
    ```

    Args:
        max_lr: rate of the stable phase, > 0.
        total_steps: step at which the rate reaches `min_lr`, > 0.
        warmup_steps: steps of warmup, >= 0.
        warmup_lr: rate at step 0, >= 0.
        warmup_shape: `"linear"` or `"cosine"`.
        decay_fraction: fraction of `total_steps` spent decaying, in (0, 1]; the decay
            lasts `max(1, round(decay_fraction * total_steps))` steps.
        decay_steps: steps of decay, > 0; when given it replaces `decay_fraction`.
        decay_shape: `"linear"`, `"cosine"` or `"1-sqrt"` (`1 - sqrt(q)`, falls fastest at
            the start of the decay).
        min_lr: the floor, in [0, max_lr].

    Raises:
        ConfigError: an argument out of range, naming it and the value received, or a
            warmup and decay that do not fit in `total_steps`.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_lr: float = 0.0,
        warmup_shape: str = "linear",
        decay_fraction: float = 0.2,
        decay_steps: int | None = None,
        decay_shape: str = "1-sqrt",
        min_lr: float = 0.0,
    ) -> None:
        self.max_lr = positive("max_lr", max_lr)
        self.total_steps = count("total_steps", total_steps, 1)
        self.warmup_steps = count("warmup_steps", warmup_steps)
        self.warmup_lr = non_negative("warmup_lr", warmup_lr)
        self.warmup_shape = choice("warmup_shape", warmup_shape, formulas.WSD_WARMUP_SHAPES)
        self.decay_fraction = unit("decay_fraction", decay_fraction, open_low=True)
        self.decay_steps = None if decay_steps is None else count("decay_steps", decay_steps, 1)
        self.decay_shape = choice("decay_shape", decay_shape, formulas.WSD_DECAY_SHAPES)
        self.min_lr = non_negative("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise fail("min_lr", f"<= max_lr={self.max_lr}", self.min_lr)
        room = self.total_steps - self.warmup_steps
        if self.decay_length > room:
            name, value = (
                ("decay_steps", self.decay_steps)
                if self.decay_steps is not None
                else ("decay_fraction", self.decay_fraction)
            )
            raise fail(
                name,
                f"such that the decay ({self.decay_length} steps) fits in total_steps - warmup_steps = {room}",
                value,
            )

    @property
    def decay_length(self) -> int:
        """Steps of the decay: `decay_steps`, else `max(1, round(decay_fraction * total_steps))`."""
        if self.decay_steps is not None:
            return self.decay_steps
        return max(1, round(self.decay_fraction * self.total_steps))

    @property
    def decay_start(self) -> int:
        """First step of the decay (the end of the stable phase)."""
        return self.total_steps - self.decay_length

    def __call__(self, step: Any) -> Any:
        return formulas.warmup_stable_decay(
            float_step(step),
            self.max_lr,
            self.total_steps,
            self.warmup_lr,
            self.warmup_steps,
            self.warmup_shape,
            self.decay_length,
            self.decay_shape,
            self.min_lr,
            xp=ops,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_lr": self.warmup_lr,
            "warmup_shape": self.warmup_shape,
            "decay_fraction": self.decay_fraction,
            "decay_steps": self.decay_steps,
            "decay_shape": self.decay_shape,
            "min_lr": self.min_lr,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class LinearWarmup(ScheduleBase):
    """A linear warmup in front of any schedule (or constant rate).

    The rate rises from `warmup_lr` to the wrapped schedule's first value over
    `warmup_steps`; the wrapped schedule then starts from its own step 0, so it keeps its
    full length and a run lasts `warmup_steps` longer.

    ```python
    def linear_warmup(step):
        if step < warmup_steps:
            return warmup_lr + (inner(0) - warmup_lr) * step / warmup_steps
        return inner(step - warmup_steps)
    ```

    ```python
    sched = LinearWarmup(keras.optimizers.schedules.CosineDecay(0.1, 10_000), warmup_steps=500)
    ```

    Args:
        schedule_or_lr: a `LearningRateSchedule` (any registered one) or a float > 0.
        warmup_steps: steps of warmup, >= 0.
        warmup_lr: rate at step 0, >= 0.

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    def __init__(self, schedule_or_lr: Any, warmup_steps: int, warmup_lr: float = 0.0) -> None:
        if isinstance(schedule_or_lr, dict):
            schedule_or_lr = keras.saving.deserialize_keras_object(schedule_or_lr)
        if not isinstance(schedule_or_lr, LearningRateSchedule):
            schedule_or_lr = positive("schedule_or_lr", schedule_or_lr)
        self.schedule_or_lr = schedule_or_lr
        self.warmup_steps = count("warmup_steps", warmup_steps)
        self.warmup_lr = non_negative("warmup_lr", warmup_lr)

    def _inner(self, step: Any) -> Any:
        if isinstance(self.schedule_or_lr, LearningRateSchedule):
            return ops.cast(self.schedule_or_lr(step), "float32")
        return ops.cast(step, "float32") * 0.0 + self.schedule_or_lr

    def __call__(self, step: Any) -> Any:
        step = ops.convert_to_tensor(step)
        after = self._inner(ops.maximum(step - self.warmup_steps, 0))
        if self.warmup_steps == 0:
            return after
        first = self._inner(ops.zeros_like(step))
        fstep = float_step(step)
        warm = self.warmup_lr + (first - self.warmup_lr) * fstep / self.warmup_steps
        return ops.where(fstep < self.warmup_steps, warm, after)

    def get_config(self) -> dict[str, Any]:
        inner = self.schedule_or_lr
        if isinstance(inner, LearningRateSchedule):
            inner = keras.saving.serialize_keras_object(inner)
        return {"schedule_or_lr": inner, "warmup_steps": self.warmup_steps, "warmup_lr": self.warmup_lr}


def scale_lr(lr: float, batch_size: int, base_batch_size: int = 256) -> float:
    """The linear scaling rule: a rate tuned at `base_batch_size`, moved to `batch_size`.

    `scale_lr(0.1, 512) == 0.2`: double the batch, double the rate (Goyal et al., 2017).

    Raises:
        ConfigError: a non-positive rate or batch size.
    """
    return positive("lr", lr) * count("batch_size", batch_size, 1) / count("base_batch_size", base_batch_size, 1)
