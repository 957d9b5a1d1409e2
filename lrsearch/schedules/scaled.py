"""A schedule times a constant: the rate of one parameter group of a `MultiOptimizer`.

In a fine-tuning setup the backbone trains at a fixed fraction of the head's rate
(fastai's discriminative rates); `Scaled(schedule, ratio)` is that group's rate, so the
whole group follows the head's schedule inside the compiled train step, and a model or
`schedule.json` saved with it loads back.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lrsearch.core.checks import positive
from lrsearch.schedules.base import PACKAGE, LearningRateSchedule, ScheduleBase

__all__ = ["Scaled"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class Scaled(ScheduleBase):
    """`schedule(step) * ratio`, evaluated in the compiled step.

    ```python
    def scaled(step):
        return schedule(step) * ratio
    ```

    ```python
    head = lrsearch.schedules.OneCycle(max_lr=1e-2, total_steps=1000)
    backbone = keras.optimizers.Adam(Scaled(head, 0.1))   # a tenth of the head's rate
    ```

    Args:
        schedule: a `LearningRateSchedule` (any registered one, or its serialized dict)
            or a constant rate > 0.
        ratio: the factor, > 0.

    Raises:
        ConfigError: a ratio or rate that is not a number > 0.
    """

    def __init__(self, schedule: Any, ratio: float) -> None:
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        if not isinstance(schedule, LearningRateSchedule):
            schedule = positive("schedule", schedule)
        self.schedule = schedule
        self.ratio = positive("ratio", ratio)

    def __call__(self, step: Any) -> Any:
        if isinstance(self.schedule, LearningRateSchedule):
            return ops.cast(self.schedule(step), "float32") * self.ratio
        return ops.cast(step, "float32") * 0.0 + self.schedule * self.ratio

    def get_config(self) -> dict[str, Any]:
        inner = self.schedule
        if isinstance(inner, LearningRateSchedule):
            inner = keras.saving.serialize_keras_object(inner)
        return {"schedule": inner, "ratio": self.ratio}
