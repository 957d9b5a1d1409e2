"""What every lrsearch schedule shares: the `ScheduleBase` class (config equality and
hashing, `from_config`), a float step for `keras.ops`, and the momentum-pair check.

The schedules themselves are in `lrsearch.schedules.cycles` (one-cycle and cyclical,
with their momentum companions) and `lrsearch.schedules.decay` (warmup, hold and decay
shapes); argument checks in Keras' message shape are `lrsearch.core.checks`.
"""

from __future__ import annotations

import json
from typing import Any

import keras
from keras import ops

from lrsearch.core.checks import unit
from lrsearch.core.errors import ConfigError

PACKAGE = "lrsearch"
LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def momenta(base_momentum: Any, max_momentum: Any) -> tuple[float, float]:
    base = unit("base_momentum", base_momentum)
    high = unit("max_momentum", max_momentum)
    if base > high:
        raise ConfigError(
            f"Argument `base_momentum` must be <= max_momentum={high}. Received: base_momentum={base}"
        )
    return base, high


def tidy(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def float_step(step: Any) -> Any:
    return ops.cast(step, "float32")


class ScheduleBase(LearningRateSchedule):
    """Shared `from_config`; `repr`, equality and hash built from `get_config()`."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScheduleBase:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self.get_config(), sort_keys=True)))


# ----------------------------------------------------------------------------- one-cycle
