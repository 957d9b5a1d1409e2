"""Learning-rate (and momentum) schedules that run inside the compiled train step.

Each class is a `keras.optimizers.schedules.LearningRateSchedule`: `sched(step)` is
`keras.ops` arithmetic on the optimizer's update count (0 for the first batch), so it is
traced once into the train step instead of being set from a per-batch callback.
`get_config()` returns exactly the constructor arguments and every class is registered
with `keras.saving`, so a model compiled with one saves and loads back after
`import lrsearch`. The formulas live in `lrsearch.formulas`, shared with NumPy.

Calling a schedule on an array of steps (`sched(np.arange(1000))`) evaluates them all
at once; `ScheduleSpec.table()` relies on that.
"""

from __future__ import annotations

import json
import math
from typing import Any

import keras
from keras import ops

from lrsearch import formulas
from lrsearch.errors import ConfigError

__all__ = [
    "CyclicLR",
    "CyclicMomentum",
    "LinearWarmup",
    "OneCycle",
    "OneCycleMomentum",
    "RampSustainDecay",
    "WarmupCosine",
    "WarmupStableDecay",
    "scale_lr",
]

_PACKAGE = "lrsearch"
LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


# ----------------------------------------------------------------------------- checks
def _fail(name: str, requirement: str, value: Any) -> ConfigError:
    return ConfigError(f"Argument `{name}` must be {requirement}. Received: {name}={value!r}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise _fail(name, "a number", value)
    value = float(value)
    if not math.isfinite(value):
        raise _fail(name, "a finite number", value)
    return value


def _positive(name: str, value: Any) -> float:
    number = _number(name, value)
    if number <= 0:
        raise _fail(name, "> 0", value)
    return number


def _non_negative(name: str, value: Any) -> float:
    number = _number(name, value)
    if number < 0:
        raise _fail(name, ">= 0", value)
    return number


def _count(name: str, value: Any, minimum: int = 0) -> int:
    number = _number(name, value)
    if number != int(number):
        raise _fail(name, "a whole number", value)
    if number < minimum:
        raise _fail(name, f">= {minimum}" if minimum != 1 else "> 0", value)
    return int(number)


def _unit(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    number = _number(name, value)
    low_ok = number > 0 if open_low else number >= 0
    high_ok = number < 1 if open_high else number <= 1
    if not (low_ok and high_ok):
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise _fail(name, f"in {interval}", value)
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _momenta(base_momentum: Any, max_momentum: Any) -> tuple[float, float]:
    base = _unit("base_momentum", base_momentum)
    high = _unit("max_momentum", max_momentum)
    if base > high:
        raise ConfigError(
            f"Argument `base_momentum` must be <= max_momentum={high}. Received: base_momentum={base}"
        )
    return base, high


def _tidy(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _float_step(step: Any) -> Any:
    return ops.cast(step, "float32")


class _Schedule(LearningRateSchedule):
    """Shared `from_config`; `repr`, equality and hash built from `get_config()`."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Schedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self.get_config(), sort_keys=True)))


# ----------------------------------------------------------------------------- one-cycle
@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneCycle(_Schedule):
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
        self.max_lr = _positive("max_lr", max_lr)
        self.total_steps = _count("total_steps", total_steps, 1)
        self.pct_start = _unit("pct_start", pct_start, open_low=True, open_high=True)
        self.anneal_strategy = _choice("anneal_strategy", anneal_strategy, formulas.ANNEAL_STRATEGIES)
        self.div_factor = _positive("div_factor", div_factor)
        self.final_div_factor = _positive("final_div_factor", final_div_factor)
        self.three_phase = bool(three_phase)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = _momenta(base_momentum, max_momentum)

    @classmethod
    def from_epochs(
        cls, max_lr: float, epochs: int, steps_per_epoch: int, **kwargs: Any
    ) -> OneCycle:
        """PyTorch's other form, `OneCycleLR(max_lr, epochs=..., steps_per_epoch=...)`:
        `total_steps = epochs * steps_per_epoch`; the other arguments as in `__init__`.

        With `gradient_accumulation_steps=k`, `steps_per_epoch` counts updates, i.e.
        `ceil(batches_per_epoch / k)`.
        """
        epochs = _count("epochs", epochs, 1)
        steps_per_epoch = _count("steps_per_epoch", steps_per_epoch, 1)
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
            _float_step(step), self.end_steps, values, self.anneal_strategy, xp=ops
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneCycleMomentum(_Schedule):
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
        self.total_steps = _count("total_steps", total_steps, 1)
        self.pct_start = _unit("pct_start", pct_start, open_low=True, open_high=True)
        self.anneal_strategy = _choice("anneal_strategy", anneal_strategy, formulas.ANNEAL_STRATEGIES)
        self.three_phase = bool(three_phase)
        self.base_momentum, self.max_momentum = _momenta(base_momentum, max_momentum)

    def __call__(self, step: Any) -> Any:
        low, high = self.base_momentum, self.max_momentum
        values = (high, low, high, high) if self.three_phase else (high, low, high)
        end_steps = formulas.one_cycle_end_steps(self.total_steps, self.pct_start, self.three_phase)
        return formulas.piecewise_anneal(_float_step(step), end_steps, values, self.anneal_strategy, xp=ops)

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
    up = _positive("step_size_up", step_size_up)
    down = up if step_size_down is None else _positive("step_size_down", step_size_down)
    mode = _choice("mode", mode, formulas.CYCLIC_MODES)
    gamma = _positive("gamma", gamma)
    if gamma > 1:
        raise _fail("gamma", "in (0, 1]", gamma)
    return up, down, mode, gamma


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CyclicLR(_Schedule):
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
        self.base_lr = _positive("base_lr", base_lr)
        self.max_lr = _positive("max_lr", max_lr)
        if self.base_lr >= self.max_lr:
            raise ConfigError(
                f"Argument `base_lr` must be < max_lr={self.max_lr}. Received: base_lr={self.base_lr}"
            )
        self._up, self._down, self.mode, self.gamma = _cyclic_args(step_size_up, step_size_down, mode, gamma)
        self.step_size_up = _tidy(self._up)
        self.step_size_down = None if step_size_down is None else _tidy(self._down)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = _momenta(base_momentum, max_momentum)

    def __call__(self, step: Any) -> Any:
        return formulas.cyclic(
            _float_step(step), self.base_lr, self.max_lr, self._up, self._down, self.mode, self.gamma, xp=ops
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CyclicMomentum(_Schedule):
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
        self.base_momentum, self.max_momentum = _momenta(base_momentum, max_momentum)
        self._up, self._down, self.mode, self.gamma = _cyclic_args(step_size_up, step_size_down, mode, gamma)
        self.step_size_up = _tidy(self._up)
        self.step_size_down = None if step_size_down is None else _tidy(self._down)

    def __call__(self, step: Any) -> Any:
        return formulas.cyclic(
            _float_step(step),
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
@keras.saving.register_keras_serializable(package=_PACKAGE)
class RampSustainDecay(_Schedule):
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
        self.start_lr = _non_negative("start_lr", start_lr)
        self.max_lr = _positive("max_lr", max_lr)
        self.min_lr = _non_negative("min_lr", min_lr)
        self.rampup_epochs = _count("rampup_epochs", rampup_epochs)
        self.sustain_epochs = _count("sustain_epochs", sustain_epochs)
        self.exp_decay = _unit("exp_decay", exp_decay)
        self.steps_per_epoch = _count("steps_per_epoch", steps_per_epoch, 1)

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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarmupCosine(_Schedule):
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
        self.base_lr = _positive("base_lr", base_lr)
        self.total_steps = _count("total_steps", total_steps, 1)
        self.warmup_lr = _non_negative("warmup_lr", warmup_lr)
        self.warmup_steps = _count("warmup_steps", warmup_steps)
        self.hold_steps = _count("hold_steps", hold_steps)
        if self.warmup_steps + self.hold_steps >= self.total_steps:
            raise _fail("total_steps", f"> warmup_steps + hold_steps = {self.warmup_steps + self.hold_steps}",
                        self.total_steps)

    def __call__(self, step: Any) -> Any:
        return formulas.warmup_cosine(
            _float_step(step),
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarmupStableDecay(_Schedule):
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
        self.max_lr = _positive("max_lr", max_lr)
        self.total_steps = _count("total_steps", total_steps, 1)
        self.warmup_steps = _count("warmup_steps", warmup_steps)
        self.warmup_lr = _non_negative("warmup_lr", warmup_lr)
        self.warmup_shape = _choice("warmup_shape", warmup_shape, formulas.WSD_WARMUP_SHAPES)
        self.decay_fraction = _unit("decay_fraction", decay_fraction, open_low=True)
        self.decay_steps = None if decay_steps is None else _count("decay_steps", decay_steps, 1)
        self.decay_shape = _choice("decay_shape", decay_shape, formulas.WSD_DECAY_SHAPES)
        self.min_lr = _non_negative("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise _fail("min_lr", f"<= max_lr={self.max_lr}", self.min_lr)
        room = self.total_steps - self.warmup_steps
        if self.decay_length > room:
            name, value = (
                ("decay_steps", self.decay_steps)
                if self.decay_steps is not None
                else ("decay_fraction", self.decay_fraction)
            )
            raise _fail(
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
            _float_step(step),
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LinearWarmup(_Schedule):
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
            schedule_or_lr = _positive("schedule_or_lr", schedule_or_lr)
        self.schedule_or_lr = schedule_or_lr
        self.warmup_steps = _count("warmup_steps", warmup_steps)
        self.warmup_lr = _non_negative("warmup_lr", warmup_lr)

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
        fstep = _float_step(step)
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
    return _positive("lr", lr) * _count("batch_size", batch_size, 1) / _count("base_batch_size", base_batch_size, 1)
