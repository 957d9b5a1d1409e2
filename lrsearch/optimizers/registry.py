"""Which optimizers lrsearch can schedule, and the way from a user's optimizer to one.

`SCHEDULABLE` names every lrsearch optimizer class; `rebuild` turns a user's optimizer
(Keras' or lrsearch's, compiled or not, wrapped in a `LossScaleOptimizer` or not) into a
fresh lrsearch optimizer with some values replaced.
"""

from __future__ import annotations

from typing import Any

import keras

from lrsearch.core.errors import ConfigError
from lrsearch.optimizers.base import Schedulable, keras_class, unwrap
from lrsearch.optimizers.mirrors import SGD, Adam, AdamW, RMSprop
from lrsearch.optimizers.prodigy import ProdigyAdam
from lrsearch.optimizers.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

__all__ = ["SCHEDULABLE", "momentum_attribute", "momentum_can_follow_a_schedule", "momentum_name", "rebuild",
           "schedulable_class"]

SCHEDULABLE: dict[str, type] = {
    "SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop,
    # their rate and weight decay can be scheduled like the others', their interpolation
    # weight (Schedule-Free) or beta_1 (Prodigy) stays a float
    "ScheduleFreeAdamW": ScheduleFreeAdamW, "ScheduleFreeSGD": ScheduleFreeSGD, "ProdigyAdam": ProdigyAdam,
}

_FROM_KERAS = {  # Keras' class, and on PyTorch also the fused class it makes
    cls: ours
    for keras_cls, ours in (
        (keras.optimizers.SGD, SGD),
        (keras.optimizers.Adam, Adam),
        (keras.optimizers.AdamW, AdamW),
        (keras.optimizers.RMSprop, RMSprop),
    )
    for cls in (keras_cls, keras_class(keras_cls))
}


def schedulable_class(optimizer: Any) -> type:
    if isinstance(optimizer, Schedulable):
        return type(optimizer)
    cls = _FROM_KERAS.get(type(optimizer))
    if cls is None and type(optimizer).__module__.startswith("keras."):  # PyTorch's TorchSGD and the like
        cls = next((_FROM_KERAS[c] for c in type(optimizer).__mro__ if c in _FROM_KERAS), None)
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
    return momentum_attribute(schedulable_class(unwrap(optimizer)))


def momentum_can_follow_a_schedule(optimizer: Any) -> bool:
    """Whether a one-cycle or CLR study may cycle this optimizer's momentum (`beta_1`):
    True for SGD, Adam, AdamW and RMSprop (Keras' or lrsearch's), False for the
    Schedule-Free optimizers and Prodigy, whose `beta_1` / `momentum` stays a float, and
    for optimizers lrsearch cannot schedule."""
    try:
        cls = schedulable_class(unwrap(optimizer))
    except ConfigError:
        return False
    return momentum_attribute(cls) in cls._scheduled


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
    inner = unwrap(optimizer)
    cls = schedulable_class(inner)
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
