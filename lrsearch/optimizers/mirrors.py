"""Keras optimizers whose momentum (or `beta_1`) and weight decay can follow a schedule.

In Keras 3 an optimizer's `momentum`, `beta_1` and `weight_decay` are Python floats read
when the train step is traced: a callback that sets them between batches silently does
nothing (the classic Keras one-cycle callbacks no longer cycle momentum for this reason).
The optimizers here accept a `LearningRateSchedule` (or a float) for those arguments and
evaluate it inside the compiled step, on the optimizer's update count:

```python
sched = lrsearch.schedules.OneCycle(max_lr=0.1, total_steps=epochs * steps_per_epoch)
optimizer = lrsearch.optimizers.SGD(sched, momentum=sched.momentum_schedule(),
                                    weight_decay=5e-4, nesterov=True)
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
```

Given floats they run Keras' own update code, so they train exactly like
`keras.optimizers.SGD` and friends. Differences, all deliberate:

- Weight decay (decoupled, Keras' convention `w -= lr * wd * w`, applied before the
  update) skips biases and normalization parameters by default: every variable with
  fewer than two dimensions, or named `bias`, `gamma` or `beta`. `decay_all=True`
  decays every variable, as Keras does; `exclude_from_weight_decay()` still works.
- With `gradient_accumulation_steps=k`, Keras feeds learning-rate schedules the count
  of micro-batches; here every schedule (rate, momentum, decay) sees the count of real
  updates (micro-batches // k), so a schedule written in optimizer steps keeps its shape.
- A scheduled `beta_1` enters Adam's bias correction as `1 - beta_1(t) ** t`, as in
  PyTorch when a scheduler cycles `betas`.
"""


from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lrsearch.optimizers.base import PACKAGE, Schedulable, hyper_arg, is_schedule, keras_class

__all__ = ["SGD", "Adam", "AdamW", "RMSprop"]

_KWARGS_DOC = """
    Args:
        learning_rate: a float or a `LearningRateSchedule` of the update count.
        weight_decay: `None`, a float >= 0, or a schedule; decoupled
            (`w -= learning_rate * weight_decay * w` before each update).
        decay_all: also decay biases and normalization parameters (Keras' behaviour).
        **kwargs: every other argument of the Keras optimizer of the same name
            (`clipnorm`, `use_ema`, `gradient_accumulation_steps`, `name`, ...).

    Raises:
        ConfigError: a momentum outside [0, 1], a negative weight decay, or a value that
            is neither a float nor a schedule.
"""


@keras.saving.register_keras_serializable(package=PACKAGE)
class SGD(Schedulable, keras_class(keras.optimizers.SGD)):
    """`keras.optimizers.SGD` whose `momentum` and `weight_decay` may be schedules.

    ```python
    velocity = momentum(t) * velocity - learning_rate(t) * g
    w = w + velocity            # nesterov: w + momentum(t) * velocity - learning_rate(t) * g
    ```

    ```python
    sched = lrsearch.schedules.CyclicLR(1e-3, 0.1, step_size_up=4 * steps_per_epoch)
    model.compile(optimizer=lrsearch.optimizers.SGD(sched, momentum=sched.momentum_schedule()),
                  loss="mse")
    ```
    """

    __doc__ += _KWARGS_DOC
    _scheduled = ("momentum",)

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: Any = 0.0,
        nesterov: bool = False,
        weight_decay: Any = None,
        decay_all: bool = False,
        **kwargs: Any,
    ) -> None:
        momentum = hyper_arg("momentum", momentum)
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(
            learning_rate=learning_rate,
            momentum=0.5 if is_schedule(momentum) else momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            **kwargs,
        )
        self.momentum = momentum  # a schedule is != 0, so `build` makes the velocities
        self.decay_all = bool(decay_all)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not is_schedule(self.momentum):
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = self._value(self.momentum, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)))
        if self.nesterov:
            self.assign_add(
                variable, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate))
            )
        else:
            self.assign_add(variable, m)


def _adam_update(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """Keras' Adam update with `beta_1` evaluated at the current step."""
    lr = ops.cast(learning_rate, variable.dtype)
    gradient = ops.cast(gradient, variable.dtype)
    local_step = ops.cast(self.iterations + 1, variable.dtype)
    beta_1 = self._value(self.beta_1, variable.dtype)
    beta_1_power = ops.power(beta_1, local_step)
    beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
    m = self._momentums[self._get_variable_index(variable)]
    v = self._velocities[self._get_variable_index(variable)]
    alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
    self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
    if self.amsgrad:
        v_hat = self._velocity_hats[self._get_variable_index(variable)]
        self.assign(v_hat, ops.maximum(v_hat, v))
        v = v_hat
    self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class Adam(Schedulable, keras_class(keras.optimizers.Adam)):
    """`keras.optimizers.Adam` whose `beta_1` and `weight_decay` may be schedules.

    `beta_1` plays the part of momentum: one-cycle and cyclical policies move it inversely
    to the rate (`momentum_schedule()`), as PyTorch's schedulers do with `betas[0]`.

    ```python
    sched = lrsearch.schedules.OneCycle(3e-3, total_steps)
    optimizer = lrsearch.optimizers.Adam(sched, beta_1=sched.momentum_schedule())
    ```
    """

    __doc__ += _KWARGS_DOC
    _scheduled = ("beta_1",)

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: Any = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: Any = None,
        decay_all: bool = False,
        **kwargs: Any,
    ) -> None:
        beta_1 = hyper_arg("beta_1", beta_1)
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )
        self.decay_all = bool(decay_all)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not is_schedule(self.beta_1):
            return super().update_step(gradient, variable, learning_rate)
        _adam_update(self, gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdamW(Schedulable, keras_class(keras.optimizers.AdamW)):
    """`keras.optimizers.AdamW` (Adam with decoupled weight decay, default 0.004) whose
    `beta_1` and `weight_decay` may be schedules.

    ```python
    sched = lrsearch.schedules.WarmupCosine(1e-3, total_steps, warmup_steps=500)
    optimizer = lrsearch.optimizers.AdamW(sched, weight_decay=0.05)
    ```
    """

    __doc__ += _KWARGS_DOC
    _scheduled = ("beta_1",)

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: Any = 0.004,
        beta_1: Any = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        decay_all: bool = False,
        **kwargs: Any,
    ) -> None:
        beta_1 = hyper_arg("beta_1", beta_1)
        weight_decay = hyper_arg("weight_decay", weight_decay)
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            **kwargs,
        )
        self.decay_all = bool(decay_all)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not is_schedule(self.beta_1):
            return super().update_step(gradient, variable, learning_rate)
        _adam_update(self, gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RMSprop(Schedulable, keras_class(keras.optimizers.RMSprop)):
    """`keras.optimizers.RMSprop` whose `momentum` and `weight_decay` may be schedules.

    ```python
    optimizer = lrsearch.optimizers.RMSprop(1e-3, momentum=sched.momentum_schedule())
    ```
    """

    __doc__ += _KWARGS_DOC
    _scheduled = ("momentum",)

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: Any = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: Any = None,
        decay_all: bool = False,
        **kwargs: Any,
    ) -> None:
        momentum = hyper_arg("momentum", momentum)
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(
            learning_rate=learning_rate,
            rho=rho,
            momentum=momentum,
            epsilon=epsilon,
            centered=centered,
            weight_decay=weight_decay,
            **kwargs,
        )
        self.decay_all = bool(decay_all)

    def build(self, var_list: Any) -> None:
        if not is_schedule(self.momentum):
            return super().build(var_list)
        with self._swapped("momentum", 1.0):  # any value > 0: make the momentum slots
            super().build(var_list)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not is_schedule(self.momentum):
            return super().update_step(gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        velocity = self._velocities[index]
        rho = self.rho
        self.assign(velocity, ops.add(ops.multiply(rho, velocity), ops.multiply(1 - rho, ops.square(gradient))))
        if self.centered:
            average_grad = self._average_gradients[index]
            self.assign(
                average_grad, ops.add(ops.multiply(rho, average_grad), ops.multiply(1 - rho, gradient))
            )
            denominator = velocity - ops.square(average_grad) + self.epsilon
        else:
            denominator = ops.add(velocity, self.epsilon)
        increment = ops.divide(ops.multiply(lr, gradient), ops.sqrt(denominator))
        momentum = self._momentums[index]
        self.assign(momentum, ops.add(ops.multiply(self._value(self.momentum, variable.dtype), momentum), increment))
        self.assign_sub(variable, momentum)
