"""The parameter groups of a `MultiOptimizer` in `schedule.json`, and the way back.

A file with groups records the reference group's optimizer in `optimizer` (the
`OptimizerMap`'s default: the group the schedule drives) and every other group in
`groups`, in `.optimizers` order:

```json
"groups": [{"patterns": [".*backbone.*"], "ratio": 0.1,
            "optimizer": {"class_name": "Adam", "config": {"beta_2": 0.999, ...}}}]
```

Each group trains at `Scaled(schedule, ratio)`; its class and config are written like
`optimizer`'s (lrsearch's classes by name, any other Keras class with its `module`). A
pattern mapped to the reference optimizer itself is a group with `"optimizer": null`.
Only an `OptimizerMap` is recorded: a callable selector is refused in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from lrsearch.core.errors import ConfigError, ScheduleFormatError
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import assemble, group_ratios, groups, map_patterns, reference_index, rescaled
from lrsearch.optimizers.registry import SCHEDULABLE, build_recorded, keras_record, schedulable_class

__all__ = ["build_groups", "check_groups", "record_groups"]

_OWN_KEYS = ("learning_rate", "name")


def _record(optimizer: Any) -> dict[str, Any]:
    """An optimizer's class and config as `schedule.json` writes them."""
    record, config = keras_record(optimizer)
    if record is None:
        cls = schedulable_class(unwrap(optimizer))
        name = next((n for n, c in SCHEDULABLE.items() if c is cls),
                    next(n for n, c in SCHEDULABLE.items() if issubclass(cls, c)))
        record, config = {"class_name": name}, unwrap(optimizer).get_config()
    config = {k: v for k, v in config.items() if k not in _OWN_KEYS}
    return {**record, "config": config}


def record_groups(multi: Any) -> tuple[keras.optimizers.Optimizer, list[dict[str, Any]]]:
    """The reference group's optimizer, and the records of the other groups (patterns,
    class and config, ratio).

    Raises:
        ConfigError: a callable selector (use an `OptimizerMap`).
    """
    patterns = map_patterns(multi)
    subs, ratios, ref = groups(multi), group_ratios(multi), reference_index(multi)
    out = [{"patterns": [p for p, i in patterns if i == ref], "optimizer": None, "ratio": 1.0}]
    for i, sub in enumerate(subs):
        if i != ref:
            out.append({"patterns": [p for p, j in patterns if j == i], "optimizer": _record(sub),
                        "ratio": float(ratios[i])})
    return subs[ref], [g for g in out if g["patterns"] or g["optimizer"] is not None]


def check_groups(value: Any) -> list[dict[str, Any]]:
    """A `groups` field, checked: a list of objects, each with `patterns` (strings),
    `ratio` (a number > 0) and `optimizer` (a record with `class_name`, or null).

    Raises:
        ScheduleFormatError: the first malformed entry, named.
    """
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not value:
        raise ScheduleFormatError("field `groups` must be a non-empty list of groups")
    out = []
    for n, group in enumerate(value):
        where = f"groups[{n}]"
        if not isinstance(group, Mapping):
            raise ScheduleFormatError(f"field `{where}` must be an object with `patterns`, `optimizer` and `ratio`")
        patterns, ratio, optimizer = group.get("patterns"), group.get("ratio"), group.get("optimizer")
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ScheduleFormatError(f"field `{where}.patterns` must be a list of regular expressions (strings)")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (math.isfinite(ratio) and ratio > 0):
            raise ScheduleFormatError(f"field `{where}.ratio` must be a number > 0; got {ratio!r}")
        if optimizer is not None and not (isinstance(optimizer, Mapping) and isinstance(optimizer.get("class_name"), str)
                                          and isinstance(optimizer.get("config", {}), Mapping)):
            raise ScheduleFormatError(f"field `{where}.optimizer` must be null or an object with `class_name` and `config`")
        if optimizer is not None and optimizer["class_name"] not in SCHEDULABLE and "module" not in optimizer:
            raise ScheduleFormatError(f"field `{where}.optimizer`: unknown class {optimizer['class_name']!r}")
        out.append({"patterns": list(patterns), "ratio": float(ratio),
                    "optimizer": None if optimizer is None else dict(optimizer)})
    return out


def build_groups(reference: keras.optimizers.Optimizer, recorded: Sequence[Mapping[str, Any]],
                 schedule: Any) -> keras.optimizers.Optimizer:
    """A fresh `MultiOptimizer`: `reference` the map's default, each recorded group built
    at `Scaled(schedule, ratio)` and mapped by its patterns.

    Raises:
        ConfigError: a group's class Keras cannot build, or bad settings.
    """
    subs: list[keras.optimizers.Optimizer] = []
    patterns: list[tuple[str, int]] = []
    for group in recorded:
        record = group["optimizer"]
        if record is None:
            index = -1  # the reference itself
        else:
            kwargs = {k: v for k, v in dict(record.get("config") or {}).items() if k not in _OWN_KEYS}
            kwargs["learning_rate"] = rescaled(schedule, float(group["ratio"]))
            keras_side = {k: record.get(k) for k in ("module", "class_name", "registered_name")}
            try:
                sub = build_recorded(record["class_name"], keras_side if "module" in record else None, kwargs)
            except (TypeError, ValueError) as exc:
                if isinstance(exc, ConfigError):
                    raise
                raise ConfigError(f"cannot build group optimizer {record['class_name']}: {exc}") from None
            subs.append(sub)
            index = len(subs) - 1
        patterns += [(p, index) for p in group["patterns"]]
    subs.append(reference)
    return assemble(subs, [(p, len(subs) - 1 if i < 0 else i) for p, i in patterns], len(subs) - 1)
