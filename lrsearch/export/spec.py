"""The chosen schedule as a versioned JSON file, and the way back to a Keras optimizer.

A `ScheduleSpec` holds everything a training script needs to reproduce a run's
optimization: the learning-rate schedule, the momentum (or `beta_1`) and weight-decay
schedules or values, the optimizer class and its other arguments, the run's length and
the batch size its steps were counted at, and where the choice came from (range-test
bounds, study, trial, metric, value):

```python
spec = lrsearch.load_schedule("schedule.json")
model.compile(optimizer=spec.build_optimizer(), loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=spec.batch_size, epochs=spec.epochs, callbacks=[spec.callback()])
```

The file's format (fields, versions, the JSON of schedules) is `lrsearch.export.document`;
save -> load -> build gives the same values step for step. `spec.callback()` warns once
when a fit runs another number of steps than the schedule was sized for.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from lrsearch.core.errors import ConfigError, ScheduleFormatError, argument_error
from lrsearch.core.fileio import write_text
from lrsearch.core.version import __version__
from lrsearch.export.document import FORMAT, GROUPS_VERSION, VERSION, decode, encode, parse, read_json, whole
from lrsearch.export.groups import build_groups, check_groups, record_groups
from lrsearch.export.fit_check import FitLengthCheck
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import is_multi
from lrsearch.optimizers.registry import (SCHEDULABLE, build_recorded, keras_record, recorded_momentum_name,
                                         schedulable_class)
from lrsearch.schedules.base import LearningRateSchedule

__all__ = ["FORMAT", "VERSION", "ScheduleSpec", "load_schedule"]

log = logging.getLogger(__name__)

_OWN_KEYS = ("learning_rate", "name")  # never part of `optimizer_config`


class ScheduleSpec:
    """An optimizer's learning-rate, momentum and weight-decay schedules, as saved to JSON.

    ```python
    sched = lrsearch.schedules.OneCycle(max_lr=0.05, total_steps=10 * 34)
    spec = ScheduleSpec(sched, optimizer="SGD", optimizer_config={"nesterov": True},
                        momentum=sched.momentum_schedule(), weight_decay=5e-4,
                        steps_per_epoch=34, epochs=10, batch_size=32,
                        provenance={"study": "digits", "trial": 7, "metric": "val_loss", "value": 0.21})
    spec.save("schedule.json")
    ```

    Args:
        schedule: a `LearningRateSchedule` or a constant rate (float > 0).
        optimizer: a class name among `lrsearch.optimizers.SCHEDULABLE` (`"SGD"`, `"Adam"`,
            `"AdamW"`, `"RMSprop"`, `"ScheduleFreeAdamW"`, `"ScheduleFreeSGD"`), or an
            optimizer instance whose class and settings are taken (any Keras optimizer).
        optimizer_config: the optimizer's other constructor arguments (`nesterov`,
            `clipnorm`, `beta_2`, ...); `learning_rate` and `name` are ignored, and a
            `momentum`/`beta_1`/`weight_decay` there counts when the arguments below are None.
        momentum: momentum (`beta_1` for Adam-family optimizers): a schedule, a float,
            or None for the optimizer's default. For a Schedule-Free optimizer it is the
            interpolation weight (`beta_1` or `momentum`), a float.
        weight_decay: a schedule, a float, or None for the optimizer's default.
        steps_per_epoch: optimizer steps per epoch, used for tables, plots and `epochs`;
            with gradient accumulation over k batches, updates per epoch (batches / k),
            the count lrsearch optimizers feed their schedules.
        epochs: the run's length in epochs.
        provenance: any JSON-serializable dict (range-test bounds, study, trial, ...).
        batch_size: the batch size `steps_per_epoch` was counted at (None when unknown,
            e.g. data that came batched); a fit at another batch size runs another
            number of steps, which `callback()` warns of.
        loss_scale: `build_optimizer()` wraps the optimizer in a `LossScaleOptimizer`
            (mixed precision); set by itself when `optimizer` is one.
        groups: a `MultiOptimizer`'s other parameter groups (`lrsearch.export.groups`:
            patterns, optimizer record, ratio), `optimizer` then being the reference
            group's; taken by itself from a `MultiOptimizer` given as `optimizer`.

    Raises:
        ConfigError: an unknown optimizer, a bad value, or something not JSON-serializable.
    """

    def __init__(
        self,
        schedule: LearningRateSchedule | float,
        optimizer: str | keras.optimizers.Optimizer = "SGD",
        optimizer_config: Mapping[str, Any] | None = None,
        momentum: LearningRateSchedule | float | None = None,
        weight_decay: LearningRateSchedule | float | None = None,
        steps_per_epoch: int | None = None,
        epochs: int | None = None,
        provenance: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        loss_scale: bool = False,
        groups: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        if isinstance(schedule, bool) or not isinstance(schedule, (LearningRateSchedule, int, float)):
            raise ConfigError(
                f"Argument `schedule` must be a LearningRateSchedule or a float. Received: schedule={schedule!r}"
            )
        if not isinstance(schedule, LearningRateSchedule) and not (float(schedule) > 0 and math.isfinite(schedule)):
            raise argument_error("schedule", "> 0", schedule)
        # the optimizer inside a LossScaleOptimizer is recorded, and that it was wrapped
        self.loss_scale = bool(loss_scale) or isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        optimizer = unwrap(optimizer) if isinstance(optimizer, keras.optimizers.Optimizer) else optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer) and is_multi(optimizer):
            optimizer, found = record_groups(optimizer)  # ConfigError for a callable selector
            groups = found if groups is None else groups
        try:
            self.groups = None if groups is None else check_groups(groups)
        except ScheduleFormatError as exc:
            raise ConfigError(str(exc).replace("field", "Argument", 1)) from None
        self.optimizer_class, config = keras_record(optimizer)  # None for lrsearch's classes
        if self.optimizer_class is not None:
            optimizer = self.optimizer_class["class_name"]
        elif isinstance(optimizer, str):
            names = {name.lower(): name for name in SCHEDULABLE}
            if optimizer.lower() not in names:
                raise ConfigError(
                    f"Argument `optimizer` must be one of {', '.join(SCHEDULABLE)}. Received: optimizer={optimizer!r}"
                )
            optimizer = names[optimizer.lower()]
        else:
            inner = unwrap(optimizer)
            cls = schedulable_class(inner)  # ConfigError for classes it cannot schedule
            config = inner.get_config()
            optimizer = next(
                (n for n, c in SCHEDULABLE.items() if c is cls),
                next(n for n, c in SCHEDULABLE.items() if issubclass(cls, c)),
            )
        config.update(optimizer_config or {})
        for key in _OWN_KEYS:
            config.pop(key, None)
        self.optimizer = optimizer
        self.schedule = schedule if isinstance(schedule, LearningRateSchedule) else float(schedule)
        mname = self.momentum_name
        other = "momentum" if mname == "beta_1" else "beta_1"
        if other in config:
            raise ConfigError(
                f"Argument `optimizer_config` has `{other}`, which {optimizer} does not take; use `{mname}`"
            )
        if momentum is None:
            momentum = config.pop(mname, None)
        else:
            config.pop(mname, None)
        if weight_decay is None:
            weight_decay = config.pop("weight_decay", None)
        else:
            config.pop("weight_decay", None)
        self.momentum = self._checked("momentum", momentum)
        self.weight_decay = self._checked("weight_decay", weight_decay)
        self.optimizer_config = config
        self.steps_per_epoch = whole("steps_per_epoch", steps_per_epoch)
        self.epochs = whole("epochs", epochs)
        self.batch_size = whole("batch_size", batch_size)
        self.provenance = dict(provenance or {})
        for name, value in (("optimizer_config", self.optimizer_config), ("provenance", self.provenance)):
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"Argument `{name}` must be JSON-serializable: {exc}") from None
        self.build_optimizer()  # refuse now what would fail later

    @staticmethod
    def _checked(name: str, value: Any) -> Any:
        try:
            return decode(value, name)
        except ScheduleFormatError as exc:
            raise ConfigError(str(exc).replace("field", "Argument", 1)) from None

    @property
    def momentum_name(self) -> str:
        """`"beta_1"` for Adam-family optimizers, else `"momentum"`."""
        return recorded_momentum_name(self.optimizer, self.optimizer_class)

    @property
    def total_steps(self) -> int | None:
        """Steps of the whole run: `steps_per_epoch * epochs`, else the schedule's own."""
        if self.steps_per_epoch and self.epochs:
            return self.steps_per_epoch * self.epochs
        total = getattr(self.schedule, "total_steps", None)
        warmup = getattr(self.schedule, "warmup_steps", 0) if total is None else 0
        inner = getattr(self.schedule, "schedule_or_lr", None)
        if total is None and inner is not None:
            total = getattr(inner, "total_steps", None)
            total = None if total is None else total + warmup
        return int(total) if total is not None else None

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document, fields in the order they are written."""
        return {
            "format": FORMAT,
            "version": GROUPS_VERSION if self.groups else VERSION,
            "schedule": encode(self.schedule),
            "momentum": encode(self.momentum),
            "weight_decay": encode(self.weight_decay),
            "optimizer": {**(self.optimizer_class or {"class_name": self.optimizer}),
                          "config": dict(self.optimizer_config), **({"loss_scale": True} if self.loss_scale else {})},
            **({"groups": [dict(g) for g in self.groups]} if self.groups else {}),
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "provenance": dict(self.provenance),
            "lrsearch_version": __version__,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ScheduleSpec:
        """Read a document written by `to_dict()` (this version or version 1, which has no
        `batch_size`).

        Raises:
            ScheduleFormatError: another format, an unknown version, a missing or
                malformed field; the message names it.
        """
        fields = parse(data)
        try:
            return cls(**fields)
        except ConfigError as exc:
            raise ScheduleFormatError(f"invalid schedule file: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file (atomically: a reader never sees half a file)."""
        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    # ------------------------------------------------------------------ build
    def build_schedule(self) -> LearningRateSchedule | float:
        """A fresh copy of the learning-rate schedule (or the constant rate)."""
        return decode(encode(self.schedule), "schedule")

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        """A fresh, unbuilt optimizer of the recorded class with the rate, momentum and decay
        schedules; inside a `LossScaleOptimizer` when the schedule was made with one
        (mixed precision). With groups, a `MultiOptimizer` of the recorded map: the
        recorded optimizer its default (the reference group), each other group at
        `Scaled(schedule, ratio)`."""
        schedule = self.build_schedule()
        optimizer = self._build_one(schedule)
        if self.groups:  # the other groups at Scaled(schedule, ratio), on the same map
            optimizer = build_groups(optimizer, self.groups, schedule)
        return keras.optimizers.LossScaleOptimizer(optimizer) if self.loss_scale else optimizer

    def _build_one(self, schedule: Any) -> keras.optimizers.Optimizer:
        """The recorded optimizer (the reference group's, with groups) at `schedule`."""
        kwargs = dict(self.optimizer_config)
        kwargs["learning_rate"] = schedule
        if self.momentum is not None:
            kwargs[self.momentum_name] = decode(encode(self.momentum), "momentum")
        if self.weight_decay is not None:
            kwargs["weight_decay"] = decode(encode(self.weight_decay), "weight_decay")
        try:
            return build_recorded(self.optimizer, self.optimizer_class, kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot build {self.optimizer} from this schedule: {exc}") from None

    def callback(self) -> FitLengthCheck:
        """A Keras callback for `fit` that warns once, as training begins, when the run
        has another number of steps than this schedule was sized for (another batch size
        or number of epochs), naming the `batch_size` and `epochs` to use."""
        return FitLengthCheck(self.steps_per_epoch, self.epochs, self.batch_size)

    # ------------------------------------------------------------------ inspect
    def table(self, steps: int | None = None, points: int | None = None) -> pd.DataFrame:
        """Step by step values over the run: `step, epoch, lr, momentum, weight_decay`.

        `lr` is the rate the optimizer uses: for a Schedule-Free optimizer, the schedule
        times its warmup. `steps` defaults to `steps_per_epoch * epochs`, else the schedule's own length.
        Each schedule is evaluated once over the whole array of steps. A momentum or
        weight decay left to the optimizer shows its default (no weight decay: 0).
        `points` samples at most that many steps, evenly, first and last included (a plot
        of a long run needs no more than its width in pixels).

        Raises:
            ConfigError: no `steps` given and none known, or more steps than fit in memory
                without `points`.
        """
        steps = self.total_steps if steps is None else whole("steps", steps)
        if steps is None:
            raise ConfigError(
                "Argument `steps` is needed: the spec has no steps_per_epoch * epochs and the schedule no length"
            )
        if points is not None and steps > whole("points", points):
            index = np.unique(np.linspace(0, steps - 1, points).round().astype(np.int64))
        elif steps > MAX_TABLE_STEPS:
            raise ConfigError(
                f"a table of {steps} steps does not fit in memory (at most {MAX_TABLE_STEPS}); "
                "pass points= to sample it"
            )
        else:
            index = np.arange(steps, dtype=np.int64)
        optimizer = self._build_one(self.build_schedule())  # the reference group's, with groups
        frame = pd.DataFrame({"step": index})
        if self.steps_per_epoch:
            frame["epoch"] = index // self.steps_per_epoch
        frame["lr"] = _evaluate(self.schedule, index)
        warmup = getattr(optimizer, "warmup_factor", None)  # a Schedule-Free optimizer's own warmup
        if warmup is not None:
            frame["lr"] *= warmup(index)
        frame["momentum"] = _evaluate(getattr(optimizer, self.momentum_name, None) or 0.0, index)
        frame["weight_decay"] = _evaluate(optimizer.weight_decay or 0.0, index)
        return frame

    def plot(self, ax: Any = None, steps: int | None = None) -> Any:
        """Plot the rate and the momentum over the steps, epochs marked; returns the figure."""
        from lrsearch.viz.plots import plot_schedule

        return plot_schedule(self, ax=ax, steps=steps)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScheduleSpec):
            return NotImplemented
        mine, theirs = self.to_dict(), other.to_dict()
        return json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sched = self.schedule if isinstance(self.schedule, float) else type(self.schedule).__name__
        return (
            f"ScheduleSpec({sched}, optimizer={self.optimizer!r}, momentum={self.momentum!r}, "
            f"weight_decay={self.weight_decay!r}, steps_per_epoch={self.steps_per_epoch}, epochs={self.epochs}, "
            f"batch_size={self.batch_size})"
        )

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import schedule_html  # notebook display
        from lrsearch.viz.plots import png_tag
        return schedule_html(self, png_tag(self.plot))


MAX_TABLE_STEPS = 50_000_000
"""The most rows `ScheduleSpec.table` makes without `points` (five float columns each)."""


def _evaluate(value: Any, steps: np.ndarray) -> np.ndarray:
    """A schedule over all `steps` in one call (one per step if it cannot broadcast)."""
    if not isinstance(value, LearningRateSchedule):
        return np.full(steps.shape, float(value))
    try:
        out = np.asarray(value(steps), dtype=np.float64)
        if out.shape == steps.shape:
            return out
    except Exception:  # a schedule written for scalar steps only (e.g. with ops.cond)
        pass
    return np.array([float(value(int(s))) for s in steps])


def load_schedule(path: str | os.PathLike[str]) -> ScheduleSpec:
    """Read a schedule file written by `ScheduleSpec.save`; a file of version 1 (which
    does not record its batch size) reads with one logged note saying so.

    Raises:
        ScheduleFormatError: the file is missing, not JSON, of another format or version,
            or misses a field; the message names the file and the problem.
    """
    path = Path(path)
    data = read_json(path)
    try:
        spec = ScheduleSpec.from_dict(data)
    except ScheduleFormatError as exc:
        raise ScheduleFormatError(f"{path}: {exc}") from None
    if data.get("version") == 1:
        log.warning("%s is a version 1 schedule file: it does not record the batch size its %s steps an epoch "
                    "were counted at; fit at the batch size of the run that wrote it (set spec.batch_size and save it "
                    "again to record it)", path, spec.steps_per_epoch)
    return spec
