"""Learning-rate (and momentum) schedules that run inside the compiled train step.

Each class is a `keras.optimizers.schedules.LearningRateSchedule`: `sched(step)` is
`keras.ops` arithmetic on the optimizer's update count (0 for the first batch), so it is
traced once into the train step instead of being set from a per-batch callback.
`get_config()` returns exactly the constructor arguments and every class is registered
with `keras.saving`, so a model compiled with one saves and loads back after
`import lrsearch`. The formulas live in `lrsearch.schedules.formulas`, shared with NumPy.

Calling a schedule on an array of steps (`sched(np.arange(1000))`) evaluates them all
at once; `ScheduleSpec.table()` relies on that."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lrsearch.schedules import formulas
from lrsearch.core.errors import ConfigError
from lrsearch.core.checks import choice, count, fail, positive, unit
from lrsearch.schedules.base import float_step, momenta, PACKAGE, ScheduleBase, tidy

__all__ = ["CyclicLR", "CyclicMomentum", "OneCycle", "OneCycleMomentum"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class OneCycle(ScheduleBase):
    """The one-cycle policy, value for value PyTorch's `torch.optim.lr_scheduler.OneCycleLR`.

    The rate rises from `max_lr / div_factor` to `max_lr` by step `pct_start * total_steps
    - 1`, then anneals to `max_lr / div_factor / final_div_factor` at `total_steps - 1`
    and holds there. With `three_phase=True` it first comes back down to the initial rate
    (by step `2 * pct_start * total_steps - 2`) and only then anneals to the minimum.

    ```python
    def one_cycle(step):  # two phases, anneal_strategy="cos"
        initial, final = max_lr / div_factor, max_lr / div_factor / final_div_factor
        step = min(step, total_steps - 1)
        peak = pct_start * total_steps - 1
        if step <= peak:
            return max_lr + (initial - max_lr) / 2 * (1 + cos(pi * step / peak))
        pct = (step - peak) / (total_steps - 1 - peak)
        return final + (max_lr - final) / 2 * (1 + cos(pi * pct))
    ```

    `momentum_schedule()` gives the inverse companion (`max_momentum` at the start and
    the end, `base_momentum` at the peak); pass it to an `lrsearch.optimizers` optimizer:

    ```python
    sched = OneCycle(max_lr=0.1, total_steps=epochs * steps_per_epoch)
    model.compile(optimizer=lrsearch.optimizers.SGD(sched, momentum=sched.momentum_schedule()),
                  loss="sparse_categorical_crossentropy")
    ```

    Args:
        max_lr: peak learning rate, > 0.
        total_steps: optimizer steps in the cycle, > 0.
        pct_start: fraction of the steps spent rising, in (0, 1).
        anneal_strategy: `"cos"` or `"linear"`.
        div_factor: initial rate is `max_lr / div_factor`, > 0.
        final_div_factor: final rate is the initial rate / `final_div_factor`, > 0.
        three_phase: add a symmetric ramp down before the final annealing.
        cycle_momentum: whether `momentum_schedule()` returns a schedule (else `None`).
        base_momentum: momentum at the peak rate, in [0, 1].
        max_momentum: momentum at the start and the end, in [base_momentum, 1].

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        self.max_lr = positive("max_lr", max_lr)
        self.total_steps = count("total_steps", total_steps, 1)
        self.pct_start = unit("pct_start", pct_start, open_low=True, open_high=True)
        self.anneal_strategy = choice("anneal_strategy", anneal_strategy, formulas.ANNEAL_STRATEGIES)
        self.div_factor = positive("div_factor", div_factor)
        self.final_div_factor = positive("final_div_factor", final_div_factor)
        self.three_phase = bool(three_phase)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = momenta(base_momentum, max_momentum)

    @classmethod
    def from_epochs(
        cls, max_lr: float, epochs: int, steps_per_epoch: int, **kwargs: Any
    ) -> OneCycle:
        """PyTorch's other form, `OneCycleLR(max_lr, epochs=..., steps_per_epoch=...)`:
        `total_steps = epochs * steps_per_epoch`; the other arguments as in `__init__`.

        With `gradient_accumulation_steps=k`, `steps_per_epoch` counts updates, i.e.
        `ceil(batches_per_epoch / k)`.
        """
        epochs = count("epochs", epochs, 1)
        steps_per_epoch = count("steps_per_epoch", steps_per_epoch, 1)
        return cls(max_lr, epochs * steps_per_epoch, **kwargs)

    @property
    def initial_lr(self) -> float:
        return self.max_lr / self.div_factor

    @property
    def min_lr(self) -> float:
        return self.initial_lr / self.final_div_factor

    @property
    def end_steps(self) -> tuple[float, ...]:
        """Last step of each phase, as PyTorch computes them."""
        return formulas.one_cycle_end_steps(self.total_steps, self.pct_start, self.three_phase)

    def __call__(self, step: Any) -> Any:
        if self.three_phase:
            values = (self.initial_lr, self.max_lr, self.initial_lr, self.min_lr)
        else:
            values = (self.initial_lr, self.max_lr, self.min_lr)
        return formulas.piecewise_anneal(
            float_step(step), self.end_steps, values, self.anneal_strategy, xp=ops
        )

    def momentum_schedule(self) -> OneCycleMomentum | None:
        """The momentum PyTorch's `OneCycleLR` sets alongside the rate, or `None`."""
        if not self.cycle_momentum:
            return None
        return OneCycleMomentum(
            total_steps=self.total_steps,
            pct_start=self.pct_start,
            anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase,
            base_momentum=self.base_momentum,
            max_momentum=self.max_momentum,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "three_phase": self.three_phase,
            "cycle_momentum": self.cycle_momentum,
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class OneCycleMomentum(ScheduleBase):
    """Momentum of the one-cycle policy: `max_momentum` -> `base_momentum` at the peak rate
    -> `max_momentum` at the end (three phases: back up during the ramp down, then flat).

    Usually made by `OneCycle.momentum_schedule()`; the arguments mean the same there.
    """

    def __init__(
        self,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        self.total_steps = count("total_steps", total_steps, 1)
        self.pct_start = unit("pct_start", pct_start, open_low=True, open_high=True)
        self.anneal_strategy = choice("anneal_strategy", anneal_strategy, formulas.ANNEAL_STRATEGIES)
        self.three_phase = bool(three_phase)
        self.base_momentum, self.max_momentum = momenta(base_momentum, max_momentum)

    def __call__(self, step: Any) -> Any:
        low, high = self.base_momentum, self.max_momentum
        values = (high, low, high, high) if self.three_phase else (high, low, high)
        end_steps = formulas.one_cycle_end_steps(self.total_steps, self.pct_start, self.three_phase)
        return formulas.piecewise_anneal(float_step(step), end_steps, values, self.anneal_strategy, xp=ops)

    def get_config(self) -> dict[str, Any]:
        return {
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
        }


# ----------------------------------------------------------------------------- cyclical
def _cyclic_args(step_size_up: Any, step_size_down: Any, mode: Any, gamma: Any) -> tuple:
    up = positive("step_size_up", step_size_up)
    down = up if step_size_down is None else positive("step_size_down", step_size_down)
    mode = choice("mode", mode, formulas.CYCLIC_MODES)
    gamma = positive("gamma", gamma)
    if gamma > 1:
        raise fail("gamma", "in (0, 1]", gamma)
    return up, down, mode, gamma


@keras.saving.register_keras_serializable(package=PACKAGE)
class CyclicLR(ScheduleBase):
    """Cyclical learning rate, value for value PyTorch's `torch.optim.lr_scheduler.CyclicLR`.

    The rate climbs from `base_lr` to `max_lr` over `step_size_up` steps and back over
    `step_size_down` (default: the same), forever. The amplitude is scaled by 1
    (`triangular`), halved each cycle (`triangular2`) or by `gamma ** step` (`exp_range`).

    ```python
    def cyclic(step):
        total = step_size_up + step_size_down
        cycle = floor(1 + step / total)
        x = 1 + step / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)  # ratio = up / total
        return base_lr + (max_lr - base_lr) * scale * f(cycle or step)
    ```

    ```python
    sched = CyclicLR(1e-3, 1e-1, step_size_up=4 * steps_per_epoch, mode="triangular2")
    optimizer = lrsearch.optimizers.SGD(sched, momentum=sched.momentum_schedule())
    ```

    Args:
        base_lr: lower rate, > 0 and < max_lr.
        max_lr: upper rate.
        step_size_up: steps from `base_lr` to `max_lr`, > 0.
        step_size_down: steps back down, > 0; `None` means `step_size_up`.
        mode: `"triangular"`, `"triangular2"` or `"exp_range"` (a string, never a callable,
            so a saved model loads back).
        gamma: `exp_range` decay per step, in (0, 1].
        cycle_momentum: whether `momentum_schedule()` returns a schedule (else `None`).
        base_momentum: momentum at `max_lr`, in [0, 1].
        max_momentum: momentum at `base_lr`, in [base_momentum, 1].

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
    ) -> None:
        self.base_lr = positive("base_lr", base_lr)
        self.max_lr = positive("max_lr", max_lr)
        if self.base_lr >= self.max_lr:
            raise ConfigError(
                f"Argument `base_lr` must be < max_lr={self.max_lr}. Received: base_lr={self.base_lr}"
            )
        self._up, self._down, self.mode, self.gamma = _cyclic_args(step_size_up, step_size_down, mode, gamma)
        self.step_size_up = tidy(self._up)
        self.step_size_down = None if step_size_down is None else tidy(self._down)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = momenta(base_momentum, max_momentum)

    def __call__(self, step: Any) -> Any:
        return formulas.cyclic(
            float_step(step), self.base_lr, self.max_lr, self._up, self._down, self.mode, self.gamma, xp=ops
        )

    def momentum_schedule(self) -> CyclicMomentum | None:
        """The momentum PyTorch's `CyclicLR` sets alongside the rate, or `None`."""
        if not self.cycle_momentum:
            return None
        return CyclicMomentum(
            base_momentum=self.base_momentum,
            max_momentum=self.max_momentum,
            step_size_up=self.step_size_up,
            step_size_down=self.step_size_down,
            mode=self.mode,
            gamma=self.gamma,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
            "cycle_momentum": self.cycle_momentum,
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class CyclicMomentum(ScheduleBase):
    """Momentum of the cyclical policy: `max_momentum` at `base_lr`, `base_momentum` at
    `max_lr`, scaled like the rate. Usually made by `CyclicLR.momentum_schedule()`."""

    def __init__(
        self,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_momentum, self.max_momentum = momenta(base_momentum, max_momentum)
        self._up, self._down, self.mode, self.gamma = _cyclic_args(step_size_up, step_size_down, mode, gamma)
        self.step_size_up = tidy(self._up)
        self.step_size_down = None if step_size_down is None else tidy(self._down)

    def __call__(self, step: Any) -> Any:
        return formulas.cyclic(
            float_step(step),
            self.base_momentum,
            self.max_momentum,
            self._up,
            self._down,
            self.mode,
            self.gamma,
            inverse=True,
            xp=ops,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
        }


# ----------------------------------------------------------------------------- others
