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

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops

from lrsearch.errors import ConfigError

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeEval",
    "ScheduleFreeSGD",
    "as_schedule_free",
    "momentum_name",
    "rebuild",
    "recompute_batchnorm",
    "SCHEDULABLE",
]

_PACKAGE = "lrsearch"
_Schedule = keras.optimizers.schedules.LearningRateSchedule
_NO_DECAY_NAMES = {"bias", "gamma", "beta"}


def _is_schedule(value: Any) -> bool:
    return isinstance(value, _Schedule)


def _hyper_arg(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """A float in [0, 1] (momentum, beta_1) or >= 0 (weight decay), or a schedule."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is None and allow_none:
        return None
    if _is_schedule(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ConfigError(
            f"Argument `{name}` must be a float or a LearningRateSchedule. Received: {name}={value!r}"
        )
    number = float(value)
    if name == "weight_decay":
        if not number >= 0:
            raise ConfigError(f"Argument `{name}` must be >= 0. Received: {name}={value!r}")
    elif not 0 <= number <= 1:
        raise ConfigError(f"Argument `{name}` must be in [0, 1]. Received: {name}={value!r}")
    return number


def _serialize(value: Any) -> Any:
    return keras.saving.serialize_keras_object(value) if _is_schedule(value) else value


def _is_bias_or_norm(variable: Any) -> bool:
    name = str(getattr(variable, "name", "")).split("/")[-1].split(":")[0]
    return len(variable.shape) < 2 or name in _NO_DECAY_NAMES


class _Schedulable:
    """What the four optimizers share: evaluation on the real update count, weight decay
    that follows a schedule and skips biases, and (de)serialization of the schedules."""

    _scheduled: tuple[str, ...] = ()  # hyperparameters that may be schedules, besides weight decay

    def _value(self, value: Any, dtype: Any) -> Any:
        """`value` at the current update (a schedule) or the constant, cast to `dtype`."""
        if _is_schedule(value):
            return ops.cast(value(self.iterations), dtype)
        return ops.cast(value, dtype)

    def _get_current_learning_rate(self) -> Any:
        # `self.iterations` is the real update count, also under gradient accumulation.
        if _is_schedule(self._learning_rate):
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()

    def _use_weight_decay(self, variable: Any) -> bool:
        if not super()._use_weight_decay(variable):
            return False
        return self.decay_all or not _is_bias_or_norm(variable)

    @contextlib.contextmanager
    def _swapped(self, name: str, value: Any) -> Iterator[None]:
        """Let Keras' own code read `value` as `self.<name>` for the duration."""
        saved = getattr(self, name)
        object.__setattr__(self, name, value)
        try:
            yield
        finally:
            object.__setattr__(self, name, saved)

    def _apply_weight_decay(self, variables: Any) -> None:
        if not _is_schedule(self.weight_decay):
            return super()._apply_weight_decay(variables)
        # Keras' implementation (distribution-aware on TensorFlow) with this step's value.
        with self._swapped("weight_decay", self.weight_decay(self.iterations)):
            return super()._apply_weight_decay(variables)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in (*self._scheduled, "weight_decay"):
            config[name] = _serialize(getattr(self, name))
        config["decay_all"] = self.decay_all
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
        config = dict(config)
        for name in (*cls._scheduled, "weight_decay"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name], custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)


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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SGD(_Schedulable, keras.optimizers.SGD):
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
        momentum = _hyper_arg("momentum", momentum)
        weight_decay = _hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(
            learning_rate=learning_rate,
            momentum=0.5 if _is_schedule(momentum) else momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            **kwargs,
        )
        self.momentum = momentum  # a schedule is != 0, so `build` makes the velocities
        self.decay_all = bool(decay_all)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _is_schedule(self.momentum):
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Adam(_Schedulable, keras.optimizers.Adam):
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
        beta_1 = _hyper_arg("beta_1", beta_1)
        weight_decay = _hyper_arg("weight_decay", weight_decay, allow_none=True)
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
        if not _is_schedule(self.beta_1):
            return super().update_step(gradient, variable, learning_rate)
        _adam_update(self, gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AdamW(_Schedulable, keras.optimizers.AdamW):
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
        beta_1 = _hyper_arg("beta_1", beta_1)
        weight_decay = _hyper_arg("weight_decay", weight_decay)
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
        if not _is_schedule(self.beta_1):
            return super().update_step(gradient, variable, learning_rate)
        _adam_update(self, gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RMSprop(_Schedulable, keras.optimizers.RMSprop):
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
        momentum = _hyper_arg("momentum", momentum)
        weight_decay = _hyper_arg("weight_decay", weight_decay, allow_none=True)
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
        if not _is_schedule(self.momentum):
            return super().build(var_list)
        with self._swapped("momentum", 1.0):  # any value > 0: make the momentum slots
            super().build(var_list)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _is_schedule(self.momentum):
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


SCHEDULABLE: dict[str, type] = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}

# the Schedule-Free optimizers live in their own module; their rate and weight decay can
# be scheduled or replaced like the others', their interpolation weight stays a float
from lrsearch.schedule_free import (  # noqa: E402
    ScheduleFreeAdamW,
    ScheduleFreeEval,
    ScheduleFreeSGD,
    as_schedule_free,
    recompute_batchnorm,
)

SCHEDULABLE.update({"ScheduleFreeAdamW": ScheduleFreeAdamW, "ScheduleFreeSGD": ScheduleFreeSGD})
_FROM_KERAS = {
    keras.optimizers.SGD: SGD,
    keras.optimizers.Adam: Adam,
    keras.optimizers.AdamW: AdamW,
    keras.optimizers.RMSprop: RMSprop,
}


def _unwrap(optimizer: Any) -> Any:
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def _schedulable_class(optimizer: Any) -> type:
    if isinstance(optimizer, _Schedulable):
        return type(optimizer)
    cls = _FROM_KERAS.get(type(optimizer))
    if cls is None:
        raise ConfigError(
            f"Cannot schedule momentum or weight decay of optimizer {type(optimizer).__name__}; "
            f"use one of {', '.join(SCHEDULABLE)} (Keras' or lrsearch's)."
        )
    return cls


def momentum_name(optimizer: Any) -> str:
    """`"beta_1"` for Adam-family optimizers, `"momentum"` for SGD and RMSprop (and the
    Schedule-Free optimizers' interpolation weight, `beta_1` or `momentum`).

    A `LossScaleOptimizer` is looked through.

    Raises:
        ConfigError: an optimizer lrsearch cannot schedule.
    """
    return momentum_attribute(_schedulable_class(_unwrap(optimizer)))


def momentum_attribute(cls: type) -> str:
    """`momentum_name` of an lrsearch optimizer class."""
    return getattr(cls, "_beta_name", None) or ("beta_1" if "beta_1" in cls._scheduled else "momentum")


def rebuild(
    optimizer: Any,
    *,
    learning_rate: Any = None,
    momentum: Any = None,
    weight_decay: Any = None,
) -> keras.optimizers.Optimizer:
    """A fresh, unbuilt lrsearch optimizer like `optimizer`, with some values replaced.

    The user's optimizer (Keras' or lrsearch's, possibly compiled, possibly wrapped in a
    `LossScaleOptimizer`, which is unwrapped: `compile` wraps it again under a mixed
    policy) gives the class and every other setting; each of `learning_rate`, `momentum`
    (`beta_1` for Adam and AdamW) and `weight_decay` that is not `None` replaces the
    original, as a float or a schedule. Exclusions set with `exclude_from_weight_decay`
    carry over; biases and normalization parameters are not decayed (`decay_all=False`)
    unless the original is an lrsearch optimizer that says otherwise.

    ```python
    optimizer = rebuild(model.optimizer, learning_rate=sched, momentum=sched.momentum_schedule())
    model.compile(optimizer=optimizer, loss=model.loss)
    ```

    Returns:
        An lrsearch `SGD`, `Adam`, `AdamW`, `RMSprop`, `ScheduleFreeAdamW` or
        `ScheduleFreeSGD` (whose momentum must stay a float).

    Raises:
        ConfigError: an optimizer class lrsearch cannot schedule, or a bad value.
    """
    inner = _unwrap(optimizer)
    cls = _schedulable_class(inner)
    config = inner.get_config()
    config.pop("name", None)
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    if momentum is not None:
        config[momentum_name(inner)] = momentum
    if weight_decay is not None:
        config["weight_decay"] = weight_decay
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = keras.saving.deserialize_keras_object(config["learning_rate"])
    fresh = cls.from_config(config)
    for attr in ("_exclude_from_weight_decay", "_exclude_from_weight_decay_pattern"):
        if hasattr(inner, attr):
            object.__setattr__(fresh, attr, getattr(inner, attr))
    return fresh
