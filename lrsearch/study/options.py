"""A study's options, checked once: what `tune`, `auto` and the command line share.

`StudyOptions` is built once (by the command line from its flags, or by `tune` / `auto`
from their keyword arguments) and handed down unchanged; everything below it trusts
it. The defaults it shares with other layers live in `lrsearch.core.defaults`. This module
imports no Keras, Optuna or TensorFlow.

Example:

    options = StudyOptions(epochs=5, trials=10, pruner="none", study_name="digits")
    lrsearch.tune(build_model, data, validation_data=val, options=options)
    lrsearch.tune(build_model, data, validation_data=val, epochs=5, trials=10)  # the same
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrsearch.core.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_LR,
    DEFAULT_MIN_LR,
    DEFAULT_RANGE_STEPS,
    DEFAULT_TRIALS,
    MAX_RANGE_STEPS,
    MAX_STUDY_NAME,
    RAMP_MODES,
)
from lrsearch.core.errors import ConfigError, argument_error
from lrsearch.study.space import ALL_FAMILIES, FAMILIES

__all__ = [
    "BACKENDS",
    "FIDELITIES",
    "PRUNERS",
    "StudyOptions",
    "infer_direction",
]

BACKENDS = ("optuna", "keras-tuner")
PRUNERS = ("median", "hyperband", "none")
FIDELITIES = ("truncate", "schedule-halving")

_MINIMIZED = ("loss", "error", "mae", "mse", "mape", "msle", "crossentropy", "hinge",
              "divergence", "poisson", "logcosh", "huber", "perplexity")
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "score",
              "top_k", "sensitivity", "specificity", "correlation")


def infer_direction(metric: str) -> str:
    """`"minimize"` for losses and errors, `"maximize"` for accuracies and the like.

    Raises:
        ConfigError: the name says neither (pass `direction=` explicitly).
    """
    name = metric.lower().removeprefix("val_")
    if any(k in name for k in _MINIMIZED):
        return "minimize"
    if any(k in name for k in _MAXIMIZED):
        return "maximize"
    raise ConfigError(
        f"cannot tell whether to minimize or maximize {metric!r} from its name: pass direction="
        "'minimize' or 'maximize' (--direction on the command line), or a metric the model logs "
        "such as val_loss or val_accuracy"
    )


def _whole(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise argument_error(name, "an integer >= 1" + (" or None" if optional else ""), value)


def _check_study_name(name: Any) -> None:
    """A study name names the run folder and a row in the storage: a plain, short name."""
    if name is None:
        return
    shown = "study_name=" + (repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:40] + "..."))
    if not isinstance(name, str) or not name.strip():
        raise argument_error("study_name", "a non-empty name (--study)", name, received=shown)
    if len(name) > MAX_STUDY_NAME:
        raise argument_error(
            "study_name", f"at most {MAX_STUDY_NAME} characters (--study; it names the run folder and the "
            "study's row in the storage)", name, received=f"{shown} ({len(name)} characters)")
    if any(c in name for c in "/\\\0") or name in (".", ".."):
        raise argument_error(
            "study_name", "a plain name without '/' or '\\' (--study; it names the run folder under runs/); "
            "use --out to choose the folder", name, received=shown)


@dataclass(frozen=True)
class StudyOptions:
    """Everything a study is asked to do, validated when built.

    Attributes:
        epochs: epochs per trial (one-cycle spans exactly these epochs).
        trials: trials this run adds (each worker of a shared study runs its own).
        families: schedule families searched (`lrsearch.study.space.FAMILIES` by default, any
            of `lrsearch.study.space.ALL_FAMILIES`).
        metric: a name Keras logs (`val_loss`, `val_accuracy`, `loss`, ...).
        direction: `"minimize"` / `"maximize"`; `None` infers it from `metric`.
        pruner: `"median"`, `"hyperband"`, `"none"` (`None` means `"none"`) or an
            Optuna pruner.
        seed: seeds the sampler and each trial's weights.
        batch_size: batch size of arrays; `None` is `DEFAULT_BATCH_SIZE`.
        storage: an Optuna storage URL or object; `None` is `sqlite:///<out_dir>/study.db`.
        study_name: `None` makes `<model name>-<date>-<time>` (`auto`: the file's name).
        out_dir: the run folder; `None` is `runs/<study_name>`.
        backend: `"optuna"` or `"keras-tuner"`.
        label_smoothing: also search a label smoothing in [0, 0.2].
        max_trials: stop once the study holds this many finished trials (all workers).
        timeout: stop starting trials after this many seconds.
        heartbeat_interval, grace_period: seconds; see `lrsearch.study.storage`.
        steps_per_epoch: batches per epoch of a `tf.data.Dataset` that may repeat forever.
        min_lr, max_lr, range_steps, mode: the range test `auto` (and `lrsearch tune`
            without bounds) runs first.
        fidelity: how cheap evidence is got from a trial: `"truncate"` (every trial runs
            the schedule of `epochs`, the pruner may stop it early) or
            `"schedule-halving"` (successive halving over complete schedules:
            `trials` schedules compressed to a fraction of `epochs`, the best
            `1 / eta` run again at `eta` times the length, up to `epochs`; the pruner
            is not used; see `lrsearch.study.halving`).
        eta: the halving factor of `"schedule-halving"` (an integer >= 2).
        reuse: train the trials that differ only in schedules, momentum and weight
            decay on one shared model, reset between trials, with one traced train
            step (`lrsearch.study.reuse`; every such trial starts from the same weights);
            `False` builds a fresh model per trial, as the KerasTuner backend always does.
        opening: designed first trials of a new Optuna study (`SearchSpace.opening_params`):
            1 is the suggested schedule; more add its peak lower by a half decade, a
            decade, ... (a short budget's race opens with three).

    Raises:
        ConfigError: any option out of range, in one line naming it.
    """

    epochs: int = DEFAULT_EPOCHS
    trials: int = DEFAULT_TRIALS
    families: tuple[str, ...] = FAMILIES
    metric: str = "val_loss"
    direction: str | None = None
    pruner: Any = "median"
    seed: int | None = None
    batch_size: int | None = None
    storage: Any = None
    study_name: str | None = None
    out_dir: str | Path | None = None
    backend: str = "optuna"
    label_smoothing: bool = False
    max_trials: int | None = None
    timeout: float | None = None
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: int | None = None
    steps_per_epoch: int | None = None
    min_lr: float = DEFAULT_MIN_LR
    max_lr: float = DEFAULT_MAX_LR
    range_steps: int | None = DEFAULT_RANGE_STEPS
    mode: str = "exp"
    fidelity: str = "truncate"
    eta: int = 2
    reuse: bool = True
    opening: int = 1

    def __post_init__(self) -> None:
        _whole("epochs", self.epochs)
        _whole("trials", self.trials)
        _whole("max_trials", self.max_trials, optional=True)
        _whole("batch_size", self.batch_size, optional=True)
        _whole("range_steps", self.range_steps, optional=True)
        _whole("opening", self.opening)
        if self.range_steps is not None and self.range_steps > MAX_RANGE_STEPS:
            raise argument_error("range_steps", f"at most {MAX_RANGE_STEPS} (--steps): a few hundred steps "
                                 "find the bounds", self.range_steps)
        _check_study_name(self.study_name)
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        if not families:
            raise argument_error("families", f"at least one of {ALL_FAMILIES}", families)
        for fam in families:
            if fam not in ALL_FAMILIES:
                raise ConfigError(f"unknown family {fam!r}: use one of {', '.join(ALL_FAMILIES)}")
        object.__setattr__(self, "families", families)
        if self.pruner is None:
            object.__setattr__(self, "pruner", "none")
        if isinstance(self.pruner, str) and self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner {self.pruner!r}: use one of {', '.join(PRUNERS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.direction is None:
            object.__setattr__(self, "direction", infer_direction(self.metric))
        elif self.direction not in ("minimize", "maximize"):
            raise argument_error("direction", "'minimize', 'maximize' or None", self.direction)
        if self.fidelity not in FIDELITIES:
            raise argument_error("fidelity", f"one of {FIDELITIES}", self.fidelity)
        if isinstance(self.eta, bool) or not isinstance(self.eta, numbers.Integral) or self.eta < 2:
            raise argument_error("eta", "an integer >= 2", self.eta)
        if not isinstance(self.reuse, bool):
            raise argument_error("reuse", "True or False", self.reuse)
        if self.fidelity == "schedule-halving" and self.backend != "optuna":
            raise ConfigError("fidelity 'schedule-halving' runs on the optuna backend only; drop one of them")
        if self.mode not in RAMP_MODES:
            raise argument_error("mode", f"one of {RAMP_MODES}", self.mode)
        for name in ("min_lr", "max_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise argument_error(name, "a number > 0", value)
        if self.min_lr >= self.max_lr:
            raise argument_error("min_lr", f"below max_lr={self.max_lr:g}", self.min_lr,
                                 received=f"min_lr={self.min_lr:g}")

    @classmethod
    def from_kwargs(cls, options: StudyOptions | None = None, **kwargs: Any) -> StudyOptions:
        """`options` (or the defaults) with `kwargs` replacing some of its fields.

        Raises:
            ConfigError: a keyword that is no option, or an option out of range.
        """
        unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown study option {unknown[0]!r}; see StudyOptions for the options")
        if options is None:
            return cls(**kwargs)
        return dataclasses.replace(options, **kwargs) if kwargs else options

    @property
    def array_batch_size(self) -> int:
        """The batch size arrays are cut into."""
        return DEFAULT_BATCH_SIZE if self.batch_size is None else int(self.batch_size)

    def range_test_kwargs(self) -> Mapping[str, Any]:
        """`range_test` arguments of the range test these options describe."""
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.range_steps,
                "mode": self.mode, "batch_size": self.array_batch_size}
