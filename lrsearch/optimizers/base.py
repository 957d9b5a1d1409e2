"""What lrsearch's optimizers share: hyperparameters that may be schedules, evaluated on
the real update count inside the compiled step (each once per step, its tensor shared by
every variable's update), weight decay that skips biases and normalization parameters,
and their (de)serialization.

`Schedulable` is the mixin every lrsearch optimizer puts in front of its Keras base
class; `hyper_arg` checks a momentum / weight-decay argument; `unwrap` looks through a
`LossScaleOptimizer`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops

from lrsearch.core.errors import ConfigError, argument_error

__all__ = ["PACKAGE", "Schedulable", "fresh_copy", "has_loss_scale", "hyper_arg", "is_schedule", "keras_class", "unwrap"]

PACKAGE = "lrsearch"
_Schedule = keras.optimizers.schedules.LearningRateSchedule
_NO_DECAY_NAMES = {"bias", "gamma", "beta"}
# per thread (a MirroredStrategy traces each replica in its own thread): optimizer id ->
# {schedule id: its value at this step}, present only while that optimizer applies a step
_STEP_VALUES = threading.local()


def keras_class(cls: type) -> type:
    """The class `cls(...)` makes on this backend: PyTorch swaps in a fused subclass (one
    `torch._foreach_*` update for all variables), TensorFlow and JAX keep `cls`. Built on
    it, lrsearch's optimizers given floats train exactly like Keras' on every backend."""
    return type(cls.__new__(cls))


def is_schedule(value: Any) -> bool:
    return isinstance(value, _Schedule)


def hyper_arg(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """A float in [0, 1] (momentum, beta_1) or >= 0 (weight decay), or a schedule."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is None and allow_none:
        return None
    if is_schedule(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ConfigError(
            f"Argument `{name}` must be a float or a LearningRateSchedule. Received: {name}={value!r}"
        )
    number = float(value)
    if name == "weight_decay":
        if not number >= 0:
            raise argument_error(name, ">= 0", value)
    elif not 0 <= number <= 1:
        raise argument_error(name, "in [0, 1]", value)
    return number


def serialize_hyper(value: Any) -> Any:
    return keras.saving.serialize_keras_object(value) if is_schedule(value) else value


def _is_bias_or_norm(variable: Any) -> bool:
    name = str(getattr(variable, "name", "")).split("/")[-1].split(":")[0]
    return len(variable.shape) < 2 or name in _NO_DECAY_NAMES


class Schedulable:
    """What the four optimizers share: evaluation on the real update count, once per step
    for each schedule (not once per variable), weight decay that follows a schedule and
    skips biases, and (de)serialization of the schedules."""

    _scheduled: tuple[str, ...] = ()  # hyperparameters that may be schedules, besides weight decay

    def _value(self, value: Any, dtype: Any) -> Any:
        """`value` at the current update (a schedule) or the constant, cast to `dtype`."""
        if is_schedule(value):
            return ops.cast(self._at_step(value), dtype)
        return ops.cast(value, dtype)

    def _at_step(self, schedule: Any) -> Any:
        """`schedule(self.iterations)`, evaluated once per step: while a step is applied
        the first call computes it and every later one (each variable's update, the
        weight decay's rate) reuses that tensor, so a step costs one evaluation of each
        schedule however many variables the model has."""
        values = getattr(_STEP_VALUES, "by_optimizer", {}).get(id(self))
        if values is None:
            return schedule(self.iterations)
        if id(schedule) not in values:
            # one read of the count for all of them: schedules of one cycle (a rate and
            # its momentum) then start from the same tensor, and the graph optimizer
            # (Grappler, XLA) computes their shared step -> phase arithmetic once
            if "iterations" not in values:
                values["iterations"] = self.iterations
            values[id(schedule)] = schedule(values["iterations"])
        return values[id(schedule)]

    def _backend_apply_gradients(self, grads: Any, trainable_variables: Any) -> None:
        # the one step every backend's `apply` (and JAX's `stateless_apply`) goes through:
        # schedules evaluated in it are kept for the rest of it, and only for it
        by_optimizer = getattr(_STEP_VALUES, "by_optimizer", None)
        if by_optimizer is None:
            by_optimizer = _STEP_VALUES.by_optimizer = {}
        outer = by_optimizer.get(id(self))
        by_optimizer[id(self)] = {}
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            if outer is None:
                del by_optimizer[id(self)]
            else:
                by_optimizer[id(self)] = outer

    def _get_current_learning_rate(self) -> Any:
        # `self.iterations` is the real update count, also under gradient accumulation.
        if is_schedule(self._learning_rate):
            return self._at_step(self._learning_rate)
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

    def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> None:
        if hasattr(self, "_parallel_update_step") and any(is_schedule(getattr(self, n)) for n in self._scheduled):
            # PyTorch's fused update reads momentum / beta_1 as floats: update each
            # variable with `update_step`, which evaluates the schedule
            for gradient, variable in zip(grads, trainable_variables):
                self.update_step(gradient, variable, learning_rate)
            return None
        return super()._backend_update_step(grads, trainable_variables, learning_rate)

    def _apply_weight_decay(self, variables: Any) -> None:
        if not is_schedule(self.weight_decay):
            return super()._apply_weight_decay(variables)
        # Keras' implementation (distribution-aware on TensorFlow, fused on PyTorch) with
        # this step's value.
        with self._swapped("weight_decay", self._at_step(self.weight_decay)):
            return super()._apply_weight_decay(variables)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in (*self._scheduled, "weight_decay"):
            config[name] = serialize_hyper(getattr(self, name))
        config["decay_all"] = self.decay_all
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
        config = dict(config)
        for name in (*cls._scheduled, "weight_decay"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name], custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)



def unwrap(optimizer: Any) -> Any:
    """The optimizer under a `LossScaleOptimizer` (or the optimizer itself)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def has_loss_scale(model: Any) -> bool:
    """Whether `model` was compiled with its optimizer inside a `LossScaleOptimizer` (as
    `compile` does under a mixed-precision policy)."""
    return isinstance(getattr(model, "optimizer", None), keras.optimizers.LossScaleOptimizer)


def fresh_copy(optimizer: Any, cls: type, replace: dict[str, Any]) -> keras.optimizers.Optimizer:
    """A fresh, unbuilt `cls` from `optimizer`'s config with the values in `replace` (a rate
    given as a serialized schedule is deserialized); exclusions set with
    `exclude_from_weight_decay` carry over. What every rebuild of an optimizer shares."""
    config = optimizer.get_config()
    config.pop("name", None)
    config.update(replace)
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = keras.saving.deserialize_keras_object(config["learning_rate"])
    fresh = cls.from_config(config)
    for attr in ("_exclude_from_weight_decay", "_exclude_from_weight_decay_pattern"):
        if hasattr(optimizer, attr):
            object.__setattr__(fresh, attr, getattr(optimizer, attr))
    return fresh
