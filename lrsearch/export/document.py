"""The `schedule.json` document: its format name, version and fields, how schedules and
numbers are written to JSON and read back, and the checks a file must pass.

Schedules are written with Keras' own serialization (`class_name` + `config`, the
constructor arguments), so any registered schedule round-trips. `ScheduleSpec`
(`lrsearch.export.spec`) builds on these functions; they know nothing of it.

Version 2 added `batch_size` (the batch size the steps were counted at); a version 1
file still reads, its `batch_size` None. Version 3 added `groups` (a `MultiOptimizer`'s
parameter groups, `lrsearch.export.groups`) and is written only for a file that has them,
so a file of one optimizer stays version 2, readable by every lrsearch that reads 2.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lrsearch import schedules as _schedules  # noqa: F401  (registered, so saved schedules load)
from lrsearch.core.errors import ScheduleFormatError, argument_error
from lrsearch.export.groups import check_groups
from lrsearch.optimizers.registry import SCHEDULABLE
from lrsearch.schedules.base import LearningRateSchedule

__all__ = ["FIELDS", "FORMAT", "GROUPS_VERSION", "READABLE", "VERSION", "decode", "encode", "parse", "read_json", "whole"]

log = logging.getLogger(__name__)

FORMAT = "lrsearch.schedule"
VERSION = 2
"""The version written for one optimizer; 2 added `batch_size`."""
GROUPS_VERSION = 3
"""The version written for parameter groups; 3 added `groups`."""
READABLE = (1, 2, 3)
"""The versions read."""
FIELDS = (
    "format",
    "version",
    "schedule",
    "momentum",
    "weight_decay",
    "optimizer",
    "groups",
    "batch_size",
    "steps_per_epoch",
    "epochs",
    "provenance",
)
_ADDED = {"batch_size": 2, "groups": 3}  # field -> the version that added it


def encode(value: Any) -> Any:
    """A schedule as Keras' serialized dict, a number as a float, None as None."""
    if value is None:
        return None
    if isinstance(value, LearningRateSchedule):
        return keras.saving.serialize_keras_object(value)
    return float(value)


def decode(value: Any, field: str) -> Any:
    """What `encode` wrote, back: a fresh schedule, a float or None.

    Raises:
        ScheduleFormatError: a dict Keras cannot rebuild, something not a schedule, or
            a value neither number, schedule nor null; the message names `field`.
    """
    if value is None or isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, Mapping):
        try:
            decoded = keras.saving.deserialize_keras_object(dict(value))
        except Exception as exc:  # Keras raises TypeError/ValueError/KeyError
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ScheduleFormatError(
                f"field `{field}` is not a schedule Keras can rebuild ({reason}); "
                "check its class_name and config"
            ) from None
        if not isinstance(decoded, LearningRateSchedule):
            raise ScheduleFormatError(
                f"field `{field}` holds a {type(decoded).__name__}, not a learning-rate schedule"
            )
        return decoded
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ScheduleFormatError(f"field `{field}` must be a number, a schedule or null; got {shown}")
    return float(value)


def whole(name: str, value: Any) -> int | None:
    """`value` as an int > 0, or None.

    Raises:
        ConfigError: anything else, in Keras' argument message shape.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)) or value != int(value) or value < 1:
        raise argument_error(name, "a whole number > 0 or None", value)
    return int(value)


def parse(data: Any) -> dict[str, Any]:
    """A document's fields, checked and decoded: the keyword arguments of `ScheduleSpec`.

    Raises:
        ScheduleFormatError: another format, an unknown version, a missing or malformed
            field; the message names it.
    """
    if not isinstance(data, Mapping):
        raise ScheduleFormatError(
            f"an lrsearch schedule is a JSON object, got {type(data).__name__}; write it with ScheduleSpec.save"
        )
    if data.get("format") != FORMAT:
        raise ScheduleFormatError(f"not an lrsearch schedule: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if isinstance(version, bool) or version not in READABLE:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        raise ScheduleFormatError(
            f"schedule file version {version!r} is not supported (this lrsearch reads versions "
            f"{', '.join(map(str, READABLE))}); {'upgrade lrsearch' if newer else 're-export it'}"
        )
    expected = [f for f in FIELDS if _ADDED.get(f, 1) <= version]
    missing = [f for f in expected if f not in data]
    if missing:
        raise ScheduleFormatError(
            f"schedule file misses field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(f'`{m}`' for m in missing)}; re-export it"
        )
    unknown = sorted(set(data) - set(expected) - {"lrsearch_version"})
    if unknown:
        log.warning("ignoring unknown fields in schedule file: %s", ", ".join(unknown))
    problems: list[str] = []  # every malformed field, told in one line
    optimizer = data["optimizer"]
    if not isinstance(optimizer, Mapping) or not isinstance(optimizer.get("class_name"), str):
        problems.append("field `optimizer` must be an object with a `class_name` string and `config`")
        optimizer = {"class_name": "SGD"}
    elif optimizer["class_name"] not in SCHEDULABLE and "module" not in optimizer:  # a Keras class records its module
        problems.append(f"field `optimizer`: unknown class {optimizer['class_name']!r}; "
                        f"expected one of {', '.join(SCHEDULABLE)}")
    config = optimizer.get("config") or {}
    if not isinstance(config, Mapping):
        problems.append("field `optimizer.config` must be an object")
        config = {}
    fields = {name: _checked(problems, decode, data[name], name) for name in ("schedule", "momentum", "weight_decay")}
    if fields["schedule"] is None and not any("`schedule`" in p for p in problems):
        problems.append("field `schedule` is null; it must be a schedule or a rate")
    for name in ("batch_size", "steps_per_epoch", "epochs"):
        value = data.get(name)
        if value is not None and not _count(value):
            problems.append(f"field `{name}` must be a whole number from 1 to {_MOST} or null; got {_short(value)}")
    provenance = data["provenance"]
    if provenance is not None and not isinstance(provenance, Mapping):
        problems.append("field `provenance` must be an object or null")
    loss_scale = optimizer.get("loss_scale", False)
    if not isinstance(loss_scale, bool):
        problems.append(f"field `optimizer.loss_scale` must be true or false, got {_short(loss_scale)}")
    groups = _checked(problems, lambda value, _: check_groups(value), data["groups"], "groups") if version >= 3 else None
    if problems:
        raise ScheduleFormatError("; ".join(problems))
    record = {k: v for k, v in optimizer.items() if k != "loss_scale"}
    return {
        "schedule": fields["schedule"],
        "optimizer": record if "module" in record else record["class_name"],
        "loss_scale": loss_scale,
        "optimizer_config": dict(config),
        "groups": groups,
        "momentum": fields["momentum"],
        "weight_decay": fields["weight_decay"],
        "batch_size": data.get("batch_size"),
        "steps_per_epoch": data["steps_per_epoch"],
        "epochs": data["epochs"],
        "provenance": provenance,
    }


_MOST = 2**31 - 1
"""The largest count (steps, epochs, batch size) a file may hold."""


def _count(value: Any) -> bool:
    """A whole number from 1 to `_MOST` (4 or 4.0, not true or "4")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 1 <= value <= _MOST and float(value).is_integer()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(problems: list[str], check: Any, value: Any, name: str) -> Any:
    """`check(value, name)`, or None with its message added to `problems`."""
    try:
        return check(value, name)
    except ScheduleFormatError as exc:
        problems.append(str(exc))
        return None


def read_json(path: Path) -> Any:
    """The JSON value in the file at `path`.

    Raises:
        ScheduleFormatError: the file is missing, unreadable or not JSON; the message
            names the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScheduleFormatError(f"{path}: no such schedule file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleFormatError(f"{path}: cannot read the schedule file ({exc})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ScheduleFormatError(f"{path}: nested too deeply to be a schedule file; re-export it") from None
    except json.JSONDecodeError as exc:
        raise ScheduleFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
