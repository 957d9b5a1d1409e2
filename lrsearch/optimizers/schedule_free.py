"""Schedule-Free AdamW and SGD (Defazio et al. 2024, "The Road Less Scheduled") for Keras 3.

Schedule-Free replaces momentum and the decaying schedule by interpolation and averaging
of three sequences: `z`, the base optimizer's iterates; `x`, their running weighted
average (the weights to evaluate); `y = (1 - beta) * z + beta * x`, where gradients are
taken. Step `t` (0-based) with rate `lr_t` (warmup included):

```python
c = weight_t / sum(weight_0..t)       # weight_t = (t + 1) ** r * max(lr_0..t) ** weight_lr_power
y = y + c * (z - y) + lr_t * (beta * (1 - c) - 1) * g     # g: the (normalized) gradient at y
z = z - lr_t * g                                          # (+ weight_decay * y in g)
```

This is the update of the reference package `schedulefree` (`AdamWScheduleFree`,
`SGDScheduleFree`, version 1.3 on), with its defaults: the model's variables hold `y`
during training, the optimizer holds `z`, and `x = y + (1 - 1/beta) * (z - y)` is
computed when it is needed. Everything per batch runs inside the compiled train step.

The switch between `y` (training) and `x` (evaluation) is automatic in `fit`:

- When `fit` returns, Keras calls `optimizer.finalize_variable_values()`, which puts
  `x` into the model's variables: `evaluate`, `predict` and `model.save` after `fit`
  see the averaged weights with nothing to pass.
- The next training step (a later `fit`, `train_on_batch`, a range test) moves the
  variables back to `y` inside the compiled step, before its update. Keras has already
  taken that step's gradient at `x`, so the first update after a switch uses a gradient
  at `x` instead of `y` (they differ by `(1 - beta) * (z - x)`); every later step is
  the reference's.
- `ScheduleFreeEval()`, a callback given to `fit`, makes the switch exact (back to `y`
  in `on_train_begin`) and lets the validation run inside `fit` see `x` (to `x` before
  it, back to `y` after). Without it, validation inside `fit` sees `y`, the point
  where the gradients are taken.
- `optimizer.eval()` / `optimizer.train()` do the switch by hand, as in the reference.

`ScheduleFreeEval`, `recompute_batchnorm` (BatchNorm statistics at `x`) and the
conversion of another optimizer (`as_schedule_free`) are in
`lrsearch.optimizers.schedule_free_training`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from lrsearch.core.errors import ConfigError
from lrsearch.core.checks import constant_float, count
from lrsearch.optimizers.base import PACKAGE, Schedulable, hyper_arg

__all__ = ["ScheduleFreeAdamW", "ScheduleFreeBase", "ScheduleFreeSGD"]

def _float(name: str, value: Any, low: float, high: float, *, open_low: bool, open_high: bool) -> float:
    return constant_float(name, value, low, high, open_low=open_low, open_high=open_high,
                          why="a Schedule-Free optimizer needs it constant")


class ScheduleFreeBase(Schedulable):
    """The state and the step both Schedule-Free optimizers share; subclasses say how a
    gradient is normalized (`_direction`) and which name `beta` has."""

    _beta_name = "beta_1"

    def _init_schedule_free(self, beta: float, warmup_steps: Any, r: Any, weight_lr_power: Any) -> None:
        if self.use_ema:
            raise ConfigError(
                "Argument `use_ema` must be False for a Schedule-Free optimizer: its weights x "
                "are already an average. Received: use_ema=True"
            )
        self._beta = beta
        self.warmup_steps = count("warmup_steps", warmup_steps)
        self.r = _float("r", r, 0.0, math.inf, open_low=False, open_high=True)
        self.weight_lr_power = _float("weight_lr_power", weight_lr_power, 0.0, math.inf, open_low=False,
                                      open_high=True)
        self._coefficients: tuple[Any, ...] | None = None

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._z = self.add_optimizer_variables(var_list, "z")
        scalar = {"shape": (), "dtype": "float32", "aggregation": "only_first_replica"}
        self._lr_max = self.add_variable(initializer=keras.initializers.Constant(-1.0), name="lr_max", **scalar)
        self._weight_sum = self.add_variable(initializer="zeros", name="weight_sum", **scalar)
        self._averaged = self.add_variable(initializer="zeros", name="averaged", **scalar)

    # ------------------------------------------------------------------ the step
    def _apply_weight_decay(self, variables: Any) -> None:
        """Weight decay is part of the update, taken at `y` (see `update_step`)."""

    def _scheduled_lr(self, learning_rate: Any) -> tuple[Any, Any]:
        """The step count `k` (float) and the rate with the reference's warmup `(k + 1) / warmup_steps`."""
        k = ops.cast(self.iterations, "float32")
        lr = ops.cast(learning_rate, "float32")
        if self.warmup_steps > 0:
            lr = lr * ops.minimum((k + 1.0) / self.warmup_steps, 1.0)
        return k, lr

    def warmup_factor(self, steps: Any) -> Any:
        """What the warmup multiplies the rate by at each of `steps` (NumPy): `min((k + 1) / warmup_steps, 1)`."""
        steps = np.asarray(steps, dtype=np.float64)
        if self.warmup_steps == 0:
            return np.ones_like(steps)
        return np.minimum((steps + 1.0) / self.warmup_steps, 1.0)

    def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> None:
        k, lr = self._scheduled_lr(learning_rate)
        lr_max = ops.maximum(lr, self._lr_max)
        weight = ops.power(k + 1.0, self.r) * ops.power(lr_max, self.weight_lr_power)
        weight_sum = self._weight_sum + weight
        ckp1 = ops.where(weight_sum > 0, weight / ops.where(weight_sum > 0, weight_sum, 1.0), 0.0)
        first = ops.cast(ops.equal(self.iterations, 0), "float32")
        back_to_y = self._averaged * (1.0 - self._beta)
        self._coefficients = (k, lr, ckp1, first, back_to_y)
        # a variable without a gradient keeps z equal to its value, so that switching
        # between y and x leaves it where it is
        updated = {self._var_key(v) for v in trainable_variables}
        for variable, z in zip(self._trainable_variables, self._z):
            if z is not None and self._var_key(variable) not in updated:
                self.assign(z, ops.add(z, ops.multiply(ops.cast(first, z.dtype), ops.subtract(variable, z))))
        try:
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._coefficients = None
        self.assign(self._lr_max, lr_max)
        self.assign(self._weight_sum, weight_sum)
        self.assign(self._averaged, ops.zeros((), "float32"))

    def _direction(self, gradient: Any, index: int, k: Any, dtype: Any) -> Any:
        raise NotImplementedError

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        k, lr, ckp1, first, back_to_y = (ops.cast(c, variable.dtype) for c in self._coefficients)
        index = self._get_variable_index(variable)
        z = self._z[index]
        # z starts as a copy of the weights at the first step; weights that hold x after
        # `eval()` / `fit` are moved back to y before the update
        gap = ops.subtract(z, variable)
        y = ops.add(variable, ops.multiply(back_to_y, gap))
        z_now = ops.subtract(z, ops.multiply(first, gap))
        g = self._direction(ops.cast(gradient, variable.dtype), index, k, variable.dtype)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            g = ops.add(g, ops.multiply(self._value(self.weight_decay, variable.dtype), y))
        beta = ops.cast(self._beta, variable.dtype)
        y = ops.add(y, ops.multiply(ckp1, ops.subtract(z_now, y)))
        self.assign(variable, ops.add(y, ops.multiply(lr * (beta * (1.0 - ckp1) - 1.0), g)))
        self.assign(z, ops.subtract(z_now, ops.multiply(lr, g)))

    # ------------------------------------------------------------------ y <-> x
    def _switch(self, to_average: bool) -> bool:
        """Move the model's variables to x (`to_average`) or back to y; False if already there."""
        if not self.built or int(ops.convert_to_numpy(self.iterations)) == 0:
            return False  # no step yet: x = y = z
        averaged = bool(ops.convert_to_numpy(self._averaged) > 0)
        if averaged == to_average:
            return False
        weight = 1.0 - 1.0 / self._beta if to_average else 1.0 - self._beta
        for variable, z in zip(self._trainable_variables, self._z):
            if z is not None:
                variable.assign(ops.add(variable, ops.multiply(ops.cast(weight, variable.dtype),
                                                                 ops.subtract(z, variable))))
        self._averaged.assign(1.0 if to_average else 0.0)
        return True

    def eval(self) -> bool:
        """Put the averaged weights `x` into the model's variables (the reference's
        `optimizer.eval()`); `fit` does it when it returns. Returns whether they moved."""
        return self._switch(True)

    def train(self) -> bool:
        """Put the training point `y` back into the model's variables (the reference's
        `optimizer.train()`); the next train step does it by itself. Returns whether they moved."""
        return self._switch(False)

    @property
    def averaged(self) -> bool:
        """Whether the model's variables hold `x` (after `fit` or `eval()`) rather than `y`."""
        return self.built and bool(ops.convert_to_numpy(self._averaged) > 0)

    def finalize_variable_values(self, var_list: Any) -> None:
        """Called by `fit` when it returns: the model's variables become `x`."""
        self.eval()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                self._beta_name: self._beta,
                "warmup_steps": self.warmup_steps,
                "r": self.r,
                "weight_lr_power": self.weight_lr_power,
            }
        )
        return config


_SF_DOC = """
    Args:
        learning_rate: a float or a `LearningRateSchedule` of the update count (the
            reference needs none; a schedule multiplies the warmup).
        warmup_steps: linear warmup of the rate over the first steps,
            `lr * (k + 1) / warmup_steps` at step `k`, >= 0.
        r: step `k` enters the average `x` with weight
            `(k + 1) ** r * max(lr_0..k) ** weight_lr_power`; `r` >= 0.
        weight_lr_power: the power of the largest rate so far in that weight, >= 0 (0:
            the warmup's small steps count as much as the others).
        weight_decay: `None`, a float >= 0 or a schedule: decoupled, added to the
            update direction at `y` (the reference's `weight_decay`).
        decay_all: also decay biases and normalization parameters (the reference decays
            every parameter; lrsearch skips those by default, as its other optimizers do).
        **kwargs: Keras' optimizer arguments (`clipnorm`, `gradient_accumulation_steps`,
            `name`, ...); `use_ema` must stay False.

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
"""


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduleFreeAdamW(ScheduleFreeBase, keras.optimizers.Optimizer):
    """Schedule-Free AdamW: the reference's `AdamWScheduleFree` for Keras 3.

    The gradient is normalized by Adam's second moment with its bias correction,
    `g / (sqrt(v / (1 - beta_2 ** (k + 1))) + epsilon)`, and no first moment: `beta_1`
    is the interpolation weight of `y` between `x` and `z`. Rates 1x-10x the usual
    AdamW rate and a warmup are the reference's advice.

    ```python
    optimizer = lrsearch.optimizers.ScheduleFreeAdamW(2.5e-3, warmup_steps=500, weight_decay=0.05)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=10)
    model.evaluate(x_val, y_val)     # sees the averaged weights x
    ```
    """

    __doc__ += _SF_DOC.replace("    Args:\n", "    Args:\n        beta_1: interpolation weight of `x` in `y`, in (0, 1).\n"
                               "        beta_2: decay of the second moment, in [0, 1).\n"
                               "        epsilon: added to the root of the second moment, > 0.\n", 1)

    def __init__(
        self,
        learning_rate: Any = 0.0025,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: Any = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        decay_all: bool = False,
        name: str = "schedule_free_adamw",
        **kwargs: Any,
    ) -> None:
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.decay_all = bool(decay_all)
        self.beta_2 = _float("beta_2", beta_2, 0.0, 1.0, open_low=False, open_high=True)
        self.epsilon = _float("epsilon", epsilon, 0.0, math.inf, open_low=True, open_high=True)
        self._init_schedule_free(_float("beta_1", beta_1, 0.0, 1.0, open_low=True, open_high=True),
                                 warmup_steps, r, weight_lr_power)

    @property
    def beta_1(self) -> float:
        return self._beta

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._exp_avg_sq = self.add_optimizer_variables(var_list, "exp_avg_sq")

    def _direction(self, gradient: Any, index: int, k: Any, dtype: Any) -> Any:
        v = self._exp_avg_sq[index]
        beta_2 = ops.cast(self.beta_2, dtype)
        v_new = ops.add(ops.multiply(v, beta_2), ops.multiply(ops.square(gradient), 1.0 - beta_2))
        self.assign(v, v_new)
        correction = 1.0 - ops.power(beta_2, k + 1.0)
        return ops.divide(gradient, ops.add(ops.sqrt(ops.divide(v_new, correction)), self.epsilon))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduleFreeSGD(ScheduleFreeBase, keras.optimizers.Optimizer):
    """Schedule-Free SGD: the reference's `SGDScheduleFree` for Keras 3.

    The update direction is the raw gradient; `momentum` is the interpolation weight of
    `y` between `x` and `z` (the reference's name). Rates 10x-50x the usual SGD rate
    are the reference's advice; its default rate is 1.0.

    ```python
    optimizer = lrsearch.optimizers.ScheduleFreeSGD(0.5, warmup_steps=200)
    ```
    """

    __doc__ += _SF_DOC.replace("    Args:\n", "    Args:\n        momentum: interpolation weight of `x` in `y`, in (0, 1).\n", 1)
    _beta_name = "momentum"

    def __init__(
        self,
        learning_rate: Any = 1.0,
        momentum: float = 0.9,
        weight_decay: Any = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        decay_all: bool = False,
        name: str = "schedule_free_sgd",
        **kwargs: Any,
    ) -> None:
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.decay_all = bool(decay_all)
        self._init_schedule_free(_float("momentum", momentum, 0.0, 1.0, open_low=True, open_high=True),
                                 warmup_steps, r, weight_lr_power)

    @property
    def momentum(self) -> float:
        return self._beta

    def _direction(self, gradient: Any, index: int, k: Any, dtype: Any) -> Any:
        return gradient


# ----------------------------------------------------------------------------- helpers
