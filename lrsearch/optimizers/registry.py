"""Which optimizers lrsearch can schedule, and the way from a user's optimizer to one.

`SCHEDULABLE` names every lrsearch optimizer class; `rebuild` turns a user's optimizer
(Keras' or lrsearch's, compiled or not, wrapped in a `LossScaleOptimizer` or not) into a
fresh lrsearch optimizer with some values replaced, or, for a Keras class lrsearch has no
class of its own for (Nadam, Lion, Adafactor, a user's subclass, ...), into a fresh
optimizer of that class: its rate follows a schedule, its momentum stays the model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from lrsearch.core.errors import ConfigError, argument_error
from lrsearch.optimizers.base import Schedulable, fresh_copy, keras_class, unwrap
from lrsearch.optimizers.groups import assemble, group_ratios, groups, is_multi, map_patterns, reference_index, rescaled
from lrsearch.optimizers.keras_classes import (
    class_record,
    constant_name,
    constant_name_of_record,
    from_record,
    is_keras_schedule_free,
    own_schedule_free,
    rebuild_keras,
)
from lrsearch.optimizers.mirrors import SGD, Adam, AdamW, RMSprop
from lrsearch.optimizers.prodigy import ProdigyAdam
from lrsearch.optimizers.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from lrsearch.optimizers.schedule_free_training import is_schedule_free

__all__ = ["SCHEDULABLE", "build_recorded", "constant_momentum_note", "has_own_class", "keras_record",
           "momentum_attribute", "momentum_can_follow_a_schedule", "momentum_name", "recorded_momentum_name",
           "rebuild", "schedulable_class"]

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
    """The lrsearch class that trains in place of `optimizer` (unwrapped).

    Raises:
        ConfigError: a class lrsearch has none for (see `has_own_class`).
    """
    if is_keras_schedule_free(optimizer):
        return ScheduleFreeAdamW
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


def has_own_class(optimizer: Any) -> bool:
    """Whether lrsearch trains `optimizer` (a `LossScaleOptimizer` looked through) as one
    of its own classes (SGD, Adam, AdamW, RMSprop, Keras' or lrsearch's; lrsearch's
    Schedule-Free and Prodigy; Keras' `ScheduleFreeAdamW`), rather than as the user's
    class with its momentum constant (`rebuild`)."""
    try:
        schedulable_class(unwrap(optimizer))
    except ConfigError:
        return False
    return True


def keras_record(optimizer: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """What `schedule.json` records of an optimizer lrsearch has no class of its own for:
    Keras' `module` / `class_name` / `registered_name` (`keras.optimizers.serialize`) and
    its config; a record given as a mapping, with an empty config. `(None, {})` for a
    name of `SCHEDULABLE` and for an optimizer lrsearch trains as its own class."""
    if isinstance(optimizer, str) or not isinstance(optimizer, Mapping) and has_own_class(optimizer):
        return None, {}
    return class_record(optimizer)


def recorded_momentum_name(name: str, record: Mapping[str, Any] | None) -> str:
    """The momentum's name of an optimizer `schedule.json` records: by `name` among
    `SCHEDULABLE`, or, given Keras' `record` (`keras_record`), by that class."""
    return constant_name_of_record(record) if record is not None else momentum_attribute(SCHEDULABLE[name])


def build_recorded(name: str, record: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> keras.optimizers.Optimizer:
    """A fresh optimizer of the class `schedule.json` records (see `recorded_momentum_name`)
    from its constructor arguments.

    Raises:
        ConfigError: a Keras class given a momentum or weight-decay schedule, or one Keras
            cannot find.
    """
    optimizer = from_record(record, kwargs) if record is not None else SCHEDULABLE[name](**kwargs)
    _check_switches(type(optimizer), kwargs)
    return optimizer


def _check_switches(cls: type, kwargs: Mapping[str, Any]) -> None:
    """An option whose default is true or false (`nesterov`, `amsgrad`) must be given as
    one: "yes" or 1 would switch it on unnoticed."""
    import inspect

    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key, value in kwargs.items():
        default = parameters[key].default if key in parameters else None
        if isinstance(default, bool) and not isinstance(value, bool):
            raise argument_error(key, "true or false", value)


def constant_momentum_note(optimizer: Any) -> str | None:
    """The line a study logs once when `optimizer`'s momentum (`beta_1`) stays the
    model's constant in every trial, though it has one; None when the study may cycle it,
    when it has none, or for a Schedule-Free optimizer (its `sf_beta` is searched)."""
    inner = unwrap(optimizer)
    if is_schedule_free(inner) or momentum_can_follow_a_schedule(inner):
        return None
    name = momentum_attribute(schedulable_class(inner)) if has_own_class(inner) else constant_name(type(inner))
    value = inner.get_config().get(name)
    if value is None:
        return None
    shown = f"{value:g}" if isinstance(value, (int, float)) else repr(value)
    return (f"{type(inner).__name__}: its {name} stays the model's {shown} in every trial and the rate follows "
            f"each trial's schedule (lrsearch cycles momentum only for SGD, Adam, AdamW and RMSprop)")


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
    ratios: Sequence[float] | None = None,
) -> keras.optimizers.Optimizer:
    """A fresh, unbuilt lrsearch optimizer like `optimizer`, with some values replaced.

    The user's optimizer (Keras' or lrsearch's, possibly compiled, possibly wrapped in a
    `LossScaleOptimizer`, which is unwrapped: `compile` wraps it again under a mixed
    policy) gives the class and every other setting; each of `learning_rate`, `momentum`
    (`beta_1` for Adam and AdamW) and `weight_decay` that is not `None` replaces the
    original, as a float or a schedule. Exclusions set with `exclude_from_weight_decay`
    carry over; biases and normalization parameters are not decayed (`decay_all=False`)
    unless the original is an lrsearch optimizer that says otherwise. Keras'
    `ScheduleFreeAdamW` gives lrsearch's, with its settings. Any other Keras optimizer
    (or a user's subclass) gives a fresh one of its own class (`rebuild_keras`): the rate
    as given, a constant weight decay, its momentum left as it is.

    ```python
    optimizer = rebuild(model.optimizer, learning_rate=sched, momentum=sched.momentum_schedule())
    model.compile(optimizer=optimizer, loss=model.loss)
    ```

    A `MultiOptimizer` over an `OptimizerMap` gives a fresh one of the same structure,
    each group rebuilt as above: `learning_rate` is the reference group's rate and every
    other group's is `Scaled(learning_rate, ratio)`, its ratio from `ratios` (one per
    group, in `.optimizers` order) or, when None, its compiled rate over the reference's
    (`lrsearch.optimizers.groups`); a momentum goes to the groups that can follow one.

    Returns:
        An lrsearch `SGD`, `Adam`, `AdamW`, `RMSprop`, `ScheduleFreeAdamW` or
        `ScheduleFreeSGD` (whose momentum must stay a float), an optimizer of the
        user's class, or a `MultiOptimizer` of such groups.

    Raises:
        ConfigError: a bad value; for a class lrsearch has none for, a momentum or a
            weight-decay schedule.
    """
    inner = unwrap(optimizer)
    if is_multi(inner):
        return _rebuild_groups(inner, learning_rate, momentum, weight_decay, ratios)
    if is_keras_schedule_free(inner):
        inner = own_schedule_free(inner)
    if not has_own_class(inner):
        return rebuild_keras(inner, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay)
    replace = {"learning_rate": learning_rate, momentum_name(inner): momentum, "weight_decay": weight_decay}
    return fresh_copy(inner, schedulable_class(inner), {k: v for k, v in replace.items() if v is not None})


def _rebuild_groups(multi: Any, learning_rate: Any, momentum: Any, weight_decay: Any,
                    ratios: Sequence[float] | None) -> keras.optimizers.Optimizer:
    """`rebuild` of a `MultiOptimizer`: every group rebuilt, the map's structure kept.

    Raises:
        ConfigError: a callable selector, or not one ratio (> 0) per group.
    """
    patterns = map_patterns(multi)
    subs = groups(multi)
    ratios = group_ratios(multi) if ratios is None else tuple(float(r) for r in ratios)
    if len(ratios) != len(subs) or not all(r > 0 for r in ratios):
        raise argument_error("ratios", f"{len(subs)} numbers > 0, one per group", ratios)
    fresh = [
        rebuild(sub, learning_rate=rescaled(learning_rate, ratio), weight_decay=weight_decay,
                momentum=momentum if momentum is not None and momentum_can_follow_a_schedule(sub) else None)
        for sub, ratio in zip(subs, ratios)
    ]
    return assemble(fresh, patterns, reference_index(multi), multi.loss_scale_factor)
