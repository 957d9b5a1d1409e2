"""What every lrsearch schedule shares: argument checks in Keras' message shape and the
`_Schedule` base class (config equality and hashing, a float step for `keras.ops`).

The schedules themselves are in `lrsearch.schedules` (one-cycle and cyclical, with their
momentum companions) and `lrsearch.decay_schedules` (warmup, hold and decay shapes).
"""

from __future__ import annotations

import json
import math
from typing import Any

import keras
from keras import ops

from lrsearch.errors import ConfigError

_PACKAGE = "lrsearch"
LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


# ----------------------------------------------------------------------------- checks
def _fail(name: str, requirement: str, value: Any) -> ConfigError:
    return ConfigError(f"Argument `{name}` must be {requirement}. Received: {name}={value!r}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise _fail(name, "a number", value)
    value = float(value)
    if not math.isfinite(value):
        raise _fail(name, "a finite number", value)
    return value


def _positive(name: str, value: Any) -> float:
    number = _number(name, value)
    if number <= 0:
        raise _fail(name, "> 0", value)
    return number


def _non_negative(name: str, value: Any) -> float:
    number = _number(name, value)
    if number < 0:
        raise _fail(name, ">= 0", value)
    return number


def _count(name: str, value: Any, minimum: int = 0) -> int:
    number = _number(name, value)
    if number != int(number):
        raise _fail(name, "a whole number", value)
    if number < minimum:
        raise _fail(name, f">= {minimum}" if minimum != 1 else "> 0", value)
    return int(number)


def _unit(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    number = _number(name, value)
    low_ok = number > 0 if open_low else number >= 0
    high_ok = number < 1 if open_high else number <= 1
    if not (low_ok and high_ok):
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise _fail(name, f"in {interval}", value)
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _momenta(base_momentum: Any, max_momentum: Any) -> tuple[float, float]:
    base = _unit("base_momentum", base_momentum)
    high = _unit("max_momentum", max_momentum)
    if base > high:
        raise ConfigError(
            f"Argument `base_momentum` must be <= max_momentum={high}. Received: base_momentum={base}"
        )
    return base, high


def _tidy(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _float_step(step: Any) -> Any:
    return ops.cast(step, "float32")


class _Schedule(LearningRateSchedule):
    """Shared `from_config`; `repr`, equality and hash built from `get_config()`."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Schedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self.get_config(), sort_keys=True)))


# ----------------------------------------------------------------------------- one-cycle
