"""Any optimizer Keras ships (or a user's subclass of one), where lrsearch has no class of its own.

Every Keras optimizer takes a schedule for its rate; its momentum (`beta_1`) and weight
decay are Python floats that Keras reads when it traces the train step, so for these
classes they stay constants. `rebuild_keras` makes a fresh optimizer of the user's own
class around a new rate (and a constant weight decay); `class_record` and
`from_record` write the class to `schedule.json` and back through Keras' own
serialization (`keras.optimizers.serialize` / `deserialize`).

Keras' own `keras.optimizers.ScheduleFreeAdamW` (Keras 3.15, TensorFlow) collapses the
weights in its first step; `own_schedule_free` gives lrsearch's transcription with its settings, and
`schedule_free_as_own` runs a range test with it in place of Keras' class.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import keras

from lrsearch.core.errors import ConfigError
from lrsearch.optimizers.base import fresh_copy, is_schedule, unwrap
from lrsearch.optimizers.schedule_free import ScheduleFreeAdamW

__all__ = [
    "KERAS_SCHEDULE_FREE",
    "KEPT_SETTINGS",
    "class_record",
    "constant_name",
    "constant_name_of_record",
    "from_record",
    "is_keras_schedule_free",
    "own_schedule_free",
    "rebuild_keras",
    "schedule_free_as_own",
    "warn_keras_schedule_free",
]

logger = logging.getLogger(__name__)

KERAS_SCHEDULE_FREE: type | None = getattr(keras.optimizers, "ScheduleFreeAdamW", None)
"""Keras' own Schedule-Free AdamW (Keras 3.15 on), or None where Keras has none."""
KEPT_SETTINGS = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor", "gradient_accumulation_steps")
"""Settings of Keras' base optimizer that carry over to another class."""
_SCHEDULE_FREE_KEYS = ("learning_rate", "beta_1", "beta_2", "epsilon", "warmup_steps", "weight_decay")
_RECORD_KEYS = ("module", "class_name", "registered_name")
_SEEN: dict[str, type] = {}  # unregistered classes met in this process, by the name Keras gives them
_WARNED: weakref.WeakSet[Any] = weakref.WeakSet()


def is_keras_schedule_free(optimizer: Any) -> bool:
    """Whether `optimizer` (or the one inside a `LossScaleOptimizer`) is Keras' own
    `ScheduleFreeAdamW` (or a subclass)."""
    return KERAS_SCHEDULE_FREE is not None and isinstance(unwrap(optimizer), KERAS_SCHEDULE_FREE)


def own_schedule_free(optimizer: Any) -> ScheduleFreeAdamW:
    """lrsearch's `ScheduleFreeAdamW` with the settings of Keras' one: learning_rate,
    beta_1, beta_2, epsilon, warmup_steps, weight_decay (Keras' None is 0), clipping,
    loss scale factor and gradient accumulation."""
    config = unwrap(optimizer).get_config()
    kwargs = {k: config[k] for k in (*_SCHEDULE_FREE_KEYS, *KEPT_SETTINGS) if k in config}
    if kwargs.get("weight_decay") is None:
        kwargs["weight_decay"] = 0.0
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.saving.deserialize_keras_object(kwargs["learning_rate"])
    return ScheduleFreeAdamW(**kwargs)


def warn_keras_schedule_free(optimizer: Any) -> bool:
    """Whether `optimizer` is Keras' `ScheduleFreeAdamW`; the first time an instance is
    met, one warning says lrsearch trains its own class in its place."""
    inner = unwrap(optimizer)
    if not is_keras_schedule_free(inner):
        return False
    if inner not in _WARNED:
        _WARNED.add(inner)
        logger.warning("keras.optimizers.ScheduleFreeAdamW collapses the weights in its first step (Keras %s on "
                       "TensorFlow); lrsearch trains lrsearch.optimizers.ScheduleFreeAdamW with its settings in its "
                       "place: compile with that class to train the same way", keras.__version__)
    return True


def schedule_free_as_own(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `fn(model, ...)`: a model compiled with Keras' `ScheduleFreeAdamW` runs it
    with lrsearch's (same settings, warned once) as `model.optimizer`, and gets its own
    optimizer back afterwards, whatever happens."""

    @functools.wraps(fn)
    def wrapper(model: Any, *args: Any, **kwargs: Any) -> Any:
        original = getattr(model, "optimizer", None)
        if not warn_keras_schedule_free(original):
            return fn(model, *args, **kwargs)
        replacement: Any = own_schedule_free(original)
        if isinstance(original, keras.optimizers.LossScaleOptimizer):
            config = original.get_config()
            replacement = keras.optimizers.LossScaleOptimizer(
                replacement, initial_scale=config["initial_scale"], dynamic_growth_steps=config["dynamic_growth_steps"]
            )
        model.optimizer = replacement
        try:
            return fn(model, *args, **kwargs)
        finally:
            model.optimizer = original

    return wrapper


def constant_name(cls: type) -> str:
    """The name of a Keras optimizer class's momentum: `"beta_1"` where its constructor
    takes one (Nadam, Adamax, Lion, Lamb, ...), else `"momentum"` (SGD, RMSprop, Muon,
    and, nominally, the classes without one: Adagrad, Adadelta, Adafactor, Ftrl)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        if "beta_1" in params:
            return "beta_1"
        if "momentum" in params:
            return "momentum"
    return "momentum"


def rebuild_keras(
    optimizer: Any,
    *,
    learning_rate: Any = None,
    momentum: Any = None,
    weight_decay: Any = None,
) -> keras.optimizers.Optimizer:
    """A fresh, unbuilt optimizer of `optimizer`'s own class and settings (a
    `LossScaleOptimizer` is looked through), with the rate replaced when given (a float
    or a schedule) and the weight decay when given (a float). Exclusions set with
    `exclude_from_weight_decay` carry over.

    Raises:
        ConfigError: not a Keras optimizer; a momentum (Keras reads this class's as a
            constant, so lrsearch leaves it to the model); a weight-decay schedule.
    """
    inner = unwrap(optimizer)
    if not isinstance(inner, keras.optimizers.Optimizer):
        raise ConfigError(f"Argument `optimizer` must be a Keras optimizer. Received: {type(inner).__name__}")
    cls = type(inner)
    if momentum is not None:
        raise ConfigError(
            f"{cls.__name__}'s {constant_name(cls)} stays the model's constant: lrsearch sets momentum only for "
            "SGD, Adam, AdamW and RMSprop (Keras' or lrsearch's)"
        )
    replace: dict[str, Any] = {}
    if learning_rate is not None:
        replace["learning_rate"] = learning_rate
    if weight_decay is not None:
        if is_schedule(weight_decay) or isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
            raise ConfigError(
                f"{cls.__name__}'s weight decay must be a float (Keras reads it as a constant). "
                f"Received: weight_decay={weight_decay!r}"
            )
        replace["weight_decay"] = float(weight_decay)
    return fresh_copy(inner, cls, replace)


def class_record(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Keras optimizer's class as `keras.optimizers.serialize` names it (`module`,
    `class_name`, `registered_name`), and its config; or a record given as a mapping,
    checked, with an empty config.

    Raises:
        ConfigError: not a Keras optimizer, or a record without `class_name`.
    """
    if isinstance(optimizer, Mapping):
        if not isinstance(optimizer.get("class_name"), str):
            raise ConfigError(f"Argument `optimizer` must name a `class_name`. Received: optimizer={optimizer!r}")
        return {k: optimizer.get(k) for k in _RECORD_KEYS}, {}
    inner = unwrap(optimizer)
    if not isinstance(inner, keras.optimizers.Optimizer):
        raise ConfigError(f"Argument `optimizer` must be a Keras optimizer. Received: {type(inner).__name__}")
    serialized = keras.optimizers.serialize(inner)
    record = {k: serialized.get(k) for k in _RECORD_KEYS}
    public = _public_keras_class(type(inner))
    if public is not None:  # PyTorch's fused TorchNadam and the like: the class any backend builds
        record = {"module": "keras.optimizers", "class_name": public.__name__, "registered_name": None}
    if record["registered_name"]:
        _SEEN.setdefault(record["registered_name"], type(inner))
    return record, dict(serialized["config"])


def from_record(record: Mapping[str, Any], config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """The optimizer `class_record` described, built from `config` with
    `keras.optimizers.deserialize` (a class met in this process builds even unregistered).

    Raises:
        ConfigError: a momentum or weight-decay schedule (Keras reads them as
            constants), or a class Keras cannot find (register it with
            `keras.saving.register_keras_serializable`).
    """
    name = record["class_name"]
    for key in (constant_name_of_record(record), "weight_decay"):
        if is_schedule(config.get(key)):
            raise ConfigError(f"{name}'s {key} must be a float, not a schedule (Keras reads it as a constant)")
    try:
        registered = record.get("registered_name")
        with keras.saving.custom_object_scope({registered: _SEEN[registered]} if registered in _SEEN else {}):
            built = keras.optimizers.deserialize({**record, "config": dict(config)})
        if not isinstance(built, keras.optimizers.Optimizer):  # Keras 3.15 leaves Lamb out of its table
            cls = _find_class(record)
            if cls is None:
                raise TypeError(f"Keras gives {built!r}, not an optimizer")
            built = cls.from_config(dict(config))
        return built
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot build optimizer {name} ({reason})") from None


def constant_name_of_record(record: Mapping[str, Any]) -> str:
    """`constant_name` of the class a record names, `"momentum"` when it cannot be found."""
    cls = _find_class(record)
    return constant_name(cls) if cls is not None else "momentum"


def _public_keras_class(cls: type) -> type | None:
    """The `keras.optimizers.<Name>` class a Keras class is (or specializes), if any."""
    if not cls.__module__.startswith("keras."):
        return None
    for klass in cls.__mro__:
        if getattr(keras.optimizers, klass.__name__, None) is klass:
            return klass
    return None


def _find_class(record: Mapping[str, Any]) -> type | None:
    name, registered = record.get("class_name"), record.get("registered_name")
    if registered:
        return _SEEN.get(registered) or keras.saving.get_registered_object(registered)
    if str(record.get("module") or "").startswith("keras"):
        cls = getattr(keras.optimizers, str(name), None)
        return cls if isinstance(cls, type) else None
    return None
