"""What one trial trains with: `TrialSetup`, built from its parameters by
`lrsearch.study.space.SearchSpace.build` (and re-exported there)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialSetup"]


@dataclass(frozen=True)
class TrialSetup:
    """What one trial trains with, built from its parameters by `SearchSpace.build`.

    `learning_rate` is a Keras learning-rate schedule (a float for `schedule_free`);
    `momentum` its companion momentum schedule, a constant, or `None` to keep the
    optimizer's own; `weight_decay` a float or `None` (the optimizer's own);
    `label_smoothing` a float or `None` (the loss as given). `optimizer` is `None` to
    keep the user's optimizer class, or `"schedule_free"`: train
    `as_schedule_free(user_optimizer, learning_rate=..., momentum=..., weight_decay=...,
    **optimizer_config)` instead. `group_ratio` is, for a `MultiOptimizer` of two
    groups, the other group's rate over the reference's (None: the compiled ratios).
    """

    family: str
    learning_rate: Any
    momentum: Any = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str | None = None
    optimizer_config: Mapping[str, Any] = field(default_factory=dict)
    group_ratio: float | None = None
