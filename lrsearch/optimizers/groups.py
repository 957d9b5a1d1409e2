"""Parameter groups: a `keras.optimizers.MultiOptimizer`'s sub-optimizers and their rates.

The usual fine-tuning setup compiles a backbone at a lower rate than the new head:

```python
opt = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
    keras.optimizers.Adam(1e-3),                    # the default: the head
    {".*backbone.*": keras.optimizers.Adam(1e-4)}))  # a tenth of the head's rate
```

Keras matches a pattern against the variable's whole path (`re.fullmatch` on e.g.
`sequential/backbone_1/kernel`), so `"backbone.*"` alone names no variable; a pattern
that names none leaves its group empty, which `unmatched_patterns` finds.

lrsearch drives one rate, the reference group's, and every other group follows it at a
fixed ratio (its compiled rate over the reference's), so a backbone compiled at a tenth
of the head stays at a tenth along a range test's ramp and a study's schedule. The
reference group is the `OptimizerMap`'s default optimizer (the head: the variables no
pattern names); with a callable selector, the last sub-optimizer (the one the last
trainable variable met when the optimizer was built, the head of a model built
bottom-up). Only an `OptimizerMap` can be rebuilt or saved (`map_patterns`): a callable
selector is Python code no file can hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from lrsearch.core.errors import ConfigError
from lrsearch.optimizers.base import unwrap
from lrsearch.schedules.scaled import Scaled

__all__ = ["GroupRamp", "assemble", "compiled_rate", "group_meta", "group_ratios", "groups", "is_multi",
           "map_patterns", "reference_index", "rescaled", "unmatched_patterns", "unmatched_warning",
           "with_ratio"]

_MULTI: type | None = getattr(keras.optimizers, "MultiOptimizer", None)


def is_multi(optimizer: Any) -> bool:
    """Whether `optimizer` (a `LossScaleOptimizer` looked through) is a `MultiOptimizer`."""
    return _MULTI is not None and isinstance(unwrap(optimizer), _MULTI)


def groups(optimizer: Any) -> list[keras.optimizers.Optimizer]:
    """The sub-optimizers of a `MultiOptimizer`, in Keras' order (`.optimizers`)."""
    return list(unwrap(optimizer).optimizers)


def reference_index(optimizer: Any) -> int:
    """Which of `groups(optimizer)` carries the driven rate: the `OptimizerMap`'s default
    optimizer, else (a callable selector) the last one."""
    multi = unwrap(optimizer)
    subs = groups(multi)
    if not subs:
        raise ConfigError("the MultiOptimizer has no sub-optimizers yet; build the model (call it on a batch) first")
    default = getattr(multi._optimizer_map, "default_optimizer", None)
    return next((i for i, sub in enumerate(subs) if sub is default), len(subs) - 1)


def compiled_rate(optimizer: Any) -> float:
    """The rate of an optimizer's next update (its schedule's at its current step)."""
    return float(ops.convert_to_numpy(unwrap(optimizer).learning_rate))


def group_ratios(optimizer: Any) -> tuple[float, ...]:
    """Each group's compiled rate over the reference group's (the reference's is 1; a
    group whose rate is `Scaled(reference's schedule, ratio)` has that ratio).

    Raises:
        ConfigError: a group compiled at a rate that is not a number > 0.
    """
    subs = groups(optimizer)
    ref = reference_index(optimizer)
    driven = subs[ref]._learning_rate
    exact = [sub._learning_rate.ratio if isinstance(sub._learning_rate, Scaled) and sub._learning_rate.schedule is driven
             else None for sub in subs]  # a group lrsearch rebuilt: its ratio as given, not re-measured in float32
    rates = [compiled_rate(sub) for sub in subs]
    for sub, rate in zip(subs, rates):
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError(f"the MultiOptimizer's {type(sub).__name__} ({sub.name}) has learning rate {rate:g}; "
                              "compile every group with a rate > 0 (freeze a group with layer.trainable = False)")
    # compiled rates are float32: their ratio to 6 digits (1e-4 / 1e-3 is 0.1, not 0.09999999)
    return tuple(float(e) if e is not None else 1.0 if i == ref else float(f"{rate / rates[ref]:.6g}")
                 for i, (e, rate) in enumerate(zip(exact, rates)))


def group_meta(optimizer: Any) -> dict[str, Any]:
    """What a range test records of a built `MultiOptimizer` (`{}` for another optimizer):
    `groups`: the reference group's index, each group's ratio and class name."""
    if not is_multi(optimizer):
        return {}
    subs = groups(optimizer)
    return {"groups": {"reference": reference_index(optimizer), "ratios": list(group_ratios(optimizer)),
                       "optimizers": [type(sub).__name__ for sub in subs]}}


def map_patterns(optimizer: Any) -> list[tuple[str, int]]:
    """The `OptimizerMap`'s patterns, each with the index (in `groups`) of its optimizer.

    Raises:
        ConfigError: a callable selector, which no file can hold and lrsearch cannot rebuild.
    """
    multi = unwrap(optimizer)
    mapping = multi._optimizer_map
    if not isinstance(mapping, keras.optimizers.OptimizerMap):
        raise ConfigError("a MultiOptimizer with a callable selector cannot be rebuilt or saved; build it from a "
                          "keras.optimizers.OptimizerMap (regex patterns on variable paths) instead")
    subs = groups(multi)
    return [(pattern, next(i for i, sub in enumerate(subs) if sub is mapping[pattern])) for pattern in mapping]


def unmatched_patterns(optimizer: Any) -> list[str]:
    """The `OptimizerMap` patterns of a built `MultiOptimizer` that name no variable (their
    group has nothing to train; `[]` for another optimizer or a callable selector)."""
    if not is_multi(optimizer) or not unwrap(optimizer).built:
        return []
    mapping = unwrap(optimizer)._optimizer_map
    if not isinstance(mapping, keras.optimizers.OptimizerMap):
        return []
    return [pattern for pattern in mapping if not mapping[pattern].built]


def unmatched_warning(optimizer: Any, paths: Sequence[str]) -> str | None:
    """One line naming the patterns that name no variable, with a path they could match."""
    missing = unmatched_patterns(optimizer)
    if not missing:
        return None
    example = f" (Keras matches the whole path, e.g. {paths[0]!r})" if paths else ""
    return (f"the MultiOptimizer's pattern{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"name{'' if len(missing) > 1 else 's'} no variable{example}, so that group trains nothing; "
            "write the pattern to match whole paths, e.g. '.*backbone.*'")


def assemble(subs: Sequence[keras.optimizers.Optimizer], patterns: Sequence[tuple[str, int]], reference: int,
             loss_scale_factor: float | None = None) -> keras.optimizers.Optimizer:
    """A `MultiOptimizer` over an `OptimizerMap`: `subs[reference]` the default, each
    pattern mapped to `subs[index]`."""
    mapping = keras.optimizers.OptimizerMap(subs[reference], {pattern: subs[i] for pattern, i in patterns})
    return keras.optimizers.MultiOptimizer(mapping, loss_scale_factor=loss_scale_factor)


def with_ratio(optimizer: Any, ratio: float | None) -> tuple[float, ...] | None:
    """The ratios of a study's trial: for a `MultiOptimizer` of two groups and a sampled
    `ratio`, the reference's 1 and the other group's `ratio`; None (the compiled ratios)
    otherwise."""
    if ratio is None or not is_multi(optimizer) or len(groups(optimizer)) != 2:
        return None
    ref = reference_index(optimizer)
    return tuple(1.0 if i == ref else float(ratio) for i in range(2))


def rescaled(learning_rate: Any, ratio: float) -> Any:
    """A group's rate at `ratio` times `learning_rate` (a float, or a `Scaled` schedule;
    the reference group's own, ratio 1, unchanged)."""
    if learning_rate is None or ratio == 1.0:
        return learning_rate
    if isinstance(learning_rate, (int, float)):
        return float(learning_rate) * ratio
    return Scaled(learning_rate, ratio)


class GroupRamp:
    """A range test's rate for one group: the ramp's rate times the group's ratio (in the
    compiled step: the optimizer calls it with no argument)."""

    def __init__(self, ramp: Any, ratio: float) -> None:
        self.ramp, self.ratio = ramp, float(ratio)

    def __call__(self) -> Any:
        return self.ramp() * self.ratio
