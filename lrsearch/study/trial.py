"""One trial, whichever backend runs it: its model, its schedule, its records.

`configure_model` recompiles a fresh model with the user's optimizer rebuilt around the
trial's schedules (or, for a `schedule_free` trial, its Schedule-Free counterpart);
`trial_callbacks` adds what such a trial needs in `fit`; `trial_spec` is the schedule a trial stores; `EpochRecorder` records
every epoch and asks the backend whether to go on; `final_value` is what the trial
reports. `Plan` is everything a backend needs, prepared once by `tune`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lrsearch import optimizers as lr_optimizers
from lrsearch.core import progress
from lrsearch.data.fit_data import FitData
from lrsearch.core.errors import ConfigError, DataError, LRSearchError, raised_by
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import groups, is_multi, reference_index, with_ratio
from lrsearch.optimizers.schedule_free_training import ScheduleFreeEval, as_schedule_free
from lrsearch.study.space import SearchSpace, TrialSetup
from lrsearch.export.spec import ScheduleSpec

__all__ = [
    "EpochRecorder",
    "Plan",
    "clear_keras_session",
    "compile_kwargs",
    "configure_model",
    "final_value",
    "smoothed_loss",
    "trial_callbacks",
    "trial_spec",
    "user_step_errors",
]


@dataclass
class Plan:
    """Everything a backend needs, checked and prepared by `tune` once."""

    build_model: Callable[[], keras.Model]
    data: FitData
    space: SearchSpace
    metric: str
    direction: str
    epochs: int
    trials: int
    study_name: str
    out_dir: Path
    storage: Any
    seed: int | None
    callbacks: list[Any]
    verbose: int
    meta: dict[str, Any]
    pruner: Any = None
    max_trials: int | None = None
    timeout: float | None = None
    fidelity: str = "truncate"
    eta: int = 2
    reuse: bool = True
    opening: int = 1


def final_value(rows: Sequence[Mapping[str, Any]], callbacks: Sequence[Any], metric: str) -> float:
    """A trial's value: `metric` at its last epoch, or, when an
    `EarlyStopping(restore_best_weights=True)` monitoring `metric` put the best epoch's
    weights back, its best value (the weights the trial ends with)."""
    for cb in callbacks:
        if (isinstance(cb, keras.callbacks.EarlyStopping) and cb.restore_best_weights
                and cb.monitor == metric and cb.best_weights is not None
                and cb.best is not None):
            return float(cb.best)
    return float(rows[-1][metric])


def clear_keras_session() -> None:
    """`keras.backend.clear_session` that keeps the user's global settings.

    Keras keeps the dtype policy, interactive logging, traceback filtering, flash
    attention and the `keras.distribution` in the state it resets: a `mixed_float16`
    study would otherwise train its trials in float32 (no loss scaling, other numbers)
    after the first clear, and a `DataParallel` one on a single device.
    """
    config = keras.config
    distribution = keras.distribution.distribution()
    policy = config.dtype_policy()
    logging_on = config.is_interactive_logging_enabled()
    filtering = config.is_traceback_filtering_enabled()
    flash = config.is_flash_attention_enabled()
    keras.backend.clear_session(free_memory=False)
    config.set_dtype_policy(policy)
    (config.enable_interactive_logging if logging_on else config.disable_interactive_logging)()
    (config.enable_traceback_filtering if filtering else config.disable_traceback_filtering)()
    if flash is not None:
        (config.enable_flash_attention if flash else config.disable_flash_attention)()
    if distribution is not None:
        keras.distribution.set_distribution(distribution)


def compile_kwargs(model: keras.Model) -> dict[str, Any]:
    """The arguments `model` was compiled with (the objects themselves, not configs)."""
    cfg = getattr(model, "_compile_config", None)
    if cfg is not None and hasattr(cfg, "config"):
        return dict(cfg.config)
    return dict(keras.saving.deserialize_keras_object(model.get_compile_config()))


_SMOOTHABLE = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
}


def smoothed_loss(loss: Any, label_smoothing: float) -> Any:
    """The same loss with `label_smoothing` set (crossentropy losses only).

    Raises:
        ConfigError: the loss has no label smoothing (e.g. sparse categorical
            crossentropy: one-hot the labels and use categorical crossentropy).
    """
    if isinstance(loss, keras.losses.Loss) and "label_smoothing" in loss.get_config():
        return type(loss).from_config({**loss.get_config(), "label_smoothing": label_smoothing})
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    if name in _SMOOTHABLE:
        return getattr(keras.losses, _SMOOTHABLE[name])(label_smoothing=label_smoothing)
    shown = name or type(loss).__name__
    raise ConfigError(
        f"label smoothing needs a categorical or binary crossentropy loss; the model uses "
        f"{shown}: one-hot the labels and use categorical_crossentropy, or turn it off"
    )


def configure_model(model: keras.Model, setup: TrialSetup) -> keras.Optimizer:
    """Recompile `model` with its optimizer rebuilt around the trial's schedules.

    A `schedule_free` trial trains `as_schedule_free(user_optimizer, ...)` instead
    (ScheduleFreeAdamW for an adaptive optimizer, ScheduleFreeSGD otherwise) at the
    trial's constant rate, interpolation weight, weight decay and warmup.

    A `MultiOptimizer` gives one of the same map: the schedule drives the reference
    group and every other group follows at its ratio (`setup.group_ratio` for two
    groups, else the compiled ratios), each group's rate a `Scaled` schedule.

    Returns:
        The new optimizer (an lrsearch optimizer of the user's optimizer class, or a
        Schedule-Free one; for a class lrsearch has none of its own for, the user's class;
        a `MultiOptimizer` of such groups).
    """
    kwargs = compile_kwargs(model)
    # under a distribution strategy (MirroredStrategy) the optimizer's variables must be
    # made in its scope, as the model's were (TensorFlow's only: other backends have none)
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        build = as_schedule_free if setup.optimizer == "schedule_free" else lr_optimizers.rebuild
        extra = dict(setup.optimizer_config) if setup.optimizer == "schedule_free" else {}
        if setup.optimizer is None and is_multi(model.optimizer):  # the other groups at the trial's ratio
            extra["ratios"] = with_ratio(model.optimizer, setup.group_ratio)
        optimizer = build(
            model.optimizer,
            learning_rate=setup.learning_rate,
            momentum=setup.momentum,
            weight_decay=setup.weight_decay,
            **extra,
        )
        kwargs["optimizer"] = optimizer
        if setup.label_smoothing is not None:
            kwargs["loss"] = smoothed_loss(kwargs["loss"], setup.label_smoothing)
        model.compile(**kwargs)
    return optimizer


def trial_callbacks(setup: TrialSetup) -> list[keras.callbacks.Callback]:
    """Callbacks a trial's `fit` needs for its optimizer: `ScheduleFreeEval()` for a
    `schedule_free` trial, so its validation (the reported and pruned-on value) runs at
    the averaged weights x, and training at y."""
    return [ScheduleFreeEval()] if setup.optimizer == "schedule_free" else []


def _rate(optimizer: Any) -> float:
    """The rate of the optimizer's next update: its schedule's, times the warmup of a
    Schedule-Free optimizer (also under the `LossScaleOptimizer` of a mixed policy); a
    `MultiOptimizer`'s reference group's."""
    optimizer = unwrap(optimizer)
    if is_multi(optimizer):
        optimizer = groups(optimizer)[reference_index(optimizer)]
    lr = float(optimizer.learning_rate)
    warmup = getattr(optimizer, "warmup_factor", None)
    if warmup is not None:
        lr *= float(warmup(int(optimizer.iterations)))
    return lr


def trial_spec(optimizer: keras.Optimizer, setup: TrialSetup, space: SearchSpace,
               batch_size: int | None = None, loss_scale: bool = False) -> ScheduleSpec:
    """The trial's schedule as a `ScheduleSpec` (stored with the trial): the optimizer's
    class and settings, the rate schedule, the momentum / weight decay (scheduled, or
    the optimizer's own constants), the batch size its steps were counted at, and whether
    the model wrapped the optimizer in a `LossScaleOptimizer` (`loss_scale`)."""
    provenance: dict[str, Any] = {"family": setup.family, "params": dict(setup.params)}
    if setup.label_smoothing is not None:
        provenance["label_smoothing"] = setup.label_smoothing
    return ScheduleSpec(
        setup.learning_rate,
        optimizer=optimizer,
        momentum=setup.momentum,
        weight_decay=setup.weight_decay,
        steps_per_epoch=space.steps_per_epoch,
        epochs=space.epochs,
        provenance=provenance,
        batch_size=batch_size,
        loss_scale=loss_scale,
    )


@contextlib.contextmanager
def user_step_errors(recorder: "EpochRecorder") -> Iterator[None]:
    """Around a trial's `fit`: a ValueError or TypeError raised by the model's own code (a
    custom `train_step`) becomes one `DataError` naming it, the trial and the epoch, as the
    range test names it, so the study ends once with that line instead of failing every trial."""
    try:
        yield
    except LRSearchError:
        raise
    except (ValueError, TypeError) as exc:
        where = f"trial {recorder.number} (epoch {recorder.epochs_run + 1})"
        raise DataError(f"a training step raised {raised_by(exc)} in {where}; check the model's train_step, its "
                        "loss and the data's shapes") from exc


class EpochRecorder(keras.callbacks.Callback):
    """Records each epoch's metrics and learning rate, reports the objective metric and
    stops training on a NaN/inf loss or when the backend says to prune.

    `on_epoch(epoch, value, rows)` is the backend's hook (store, report, decide); it
    returns True to stop the trial (pruned). The trial's start, epochs and end are also
    told to the current progress reporter (`lrsearch.core.progress`), as trial `number`.
    """

    def __init__(self, metric: str, on_epoch: Callable[[int, float, list[dict]], bool],
                 momentum: Any = None, number: int | None = None) -> None:
        super().__init__()
        self.metric = metric
        self.on_epoch = on_epoch
        self.momentum = momentum
        self.number = number
        self.rows: list[dict[str, Any]] = []
        self.stopped: str | None = None
        self.epochs_run = 0

    def on_train_begin(self, logs: Any = None) -> None:
        self.rows, self.stopped, self.epochs_run = [], None, 0
        progress.current().trial_begin(self.number)

    def on_train_end(self, logs: Any = None) -> None:
        value = self.rows[-1].get(self.metric) if self.rows else None
        state = "complete" if self.stopped is None else "pruned" if self.stopped == "pruned" else "failed"
        progress.current().trial_end(value, state)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        opt = self.model.optimizer
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": _rate(opt)}
        if self.momentum is not None:
            mom = self.momentum
            row["momentum"] = float(mom(opt.iterations) if callable(mom) else mom)
        row.update(logs)
        self.rows.append(row)
        self.epochs_run = epoch + 1
        if self.metric not in logs:
            self.model.stop_training = True
            raise ConfigError(
                f"the model does not produce metric {self.metric!r}: it logs "
                + ", ".join(sorted(logs))
            )
        value = logs[self.metric]
        progress.current().trial_epoch(epoch + 1, value)
        bad = [k for k in ("loss", self.metric) if k in logs and not math.isfinite(logs[k])]
        if bad:
            self.stopped = f"non-finite {bad[0]} at epoch {epoch + 1}"
            self.model.stop_training = True
            self.on_epoch(epoch + 1, float("nan"), self.rows)
            return
        if self.on_epoch(epoch + 1, value, self.rows):
            self.stopped = "pruned"
            self.model.stop_training = True
