"""Studies: Optuna (or KerasTuner) searches for a schedule inside the range-test bounds.

`tune` runs trials of one-cycle / cyclical schedules whose rates stay inside the bounds
an LR range test found (see `lrsearch.space`), each trial a fresh `build_model()`
trained with the user's optimizer class rebuilt around the trial's schedules. Every
epoch's metrics and learning rate are kept in the study's storage (Optuna trial user
attributes), so the tables and the chosen schedule can be rebuilt from the storage
alone (`load_result`), by another process or on another machine.

Example:

    result = lrsearch.tune(build_model, (x, y), validation_data=(xv, yv),
                           epochs=10, trials=20, study_name="digits")
    result.trials            # one row per trial
    result.history           # one row per trial and epoch
    result.best.save("schedule.json")
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import pandas as pd

from lrsearch import data as lr_data
from lrsearch import optimizers as lr_optimizers
from lrsearch.analysis import LRSuggestion
from lrsearch.errors import ConfigError, DataError, StorageError
from lrsearch.space import FAMILIES, OptunaSampler, SearchSpace, TrialSetup
from lrsearch.spec import ScheduleSpec
from lrsearch.storage import (
    DEFAULT_HEARTBEAT_INTERVAL,
    default_storage_url,
    open_storage,
    storage_url,
)

__all__ = ["TuneResult", "infer_direction", "load_result", "tune"]

logger = logging.getLogger(__name__)

BACKENDS = ("optuna", "keras-tuner")
PRUNERS = ("median", "hyperband", "none")

# Study / trial user attributes written by lrsearch (JSON values).
ATTR = "lrsearch"  # study: metric, direction, space, suggestion, backend
HISTORY = "history"  # trial: list of per-epoch rows
SPEC = "spec"  # trial: the trial's ScheduleSpec.to_dict()
EPOCHS_RUN = "epochs_run"
FAILURE = "failure"

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
        f"cannot tell whether to minimize or maximize {metric!r}: pass direction="
        "'minimize' or direction='maximize'"
    )


# --------------------------------------------------------------------------- results


@dataclass
class TuneResult:
    """What a study found.

    Attributes:
        study: the `optuna.study.Study` (or, with the KerasTuner backend, the tuner).
        trials: one row per trial: `number, state, value, epochs_run, pruned_at,
            duration_s, family, retry_of, failure, params_<name>...`.
        history: one row per trial and epoch: `trial, epoch, lr, momentum` and every
            metric Keras logged (`loss, val_loss, accuracy, ...`), at the epoch's end.
        best: the best complete trial's schedule as a `ScheduleSpec` (its provenance
            names the study, trial, metric and value), or `None` if no trial completed.
        metric, direction: what was optimized.
    """

    study: Any
    trials: pd.DataFrame
    history: pd.DataFrame
    best: ScheduleSpec | None
    metric: str = "val_loss"
    direction: str = "minimize"

    @property
    def best_trial(self) -> int | None:
        """Number of the best complete trial (`None` if none completed)."""
        if self.best is None:
            return None
        return (self.best.provenance or {}).get("trial")

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write `trials.csv`, `history.csv` and (if a trial completed) `schedule.json`.

        Returns:
            `{"trials": path, "history": path, "schedule": path}` of the files written.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"trials": out / "trials.csv", "history": out / "history.csv"}
        _atomic_csv(self.trials, paths["trials"])
        _atomic_csv(self.history, paths["history"])
        if self.best is not None:
            paths["schedule"] = out / "schedule.json"
            self.best.save(paths["schedule"])
        return paths


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    # several workers may save the same run folder; a reader never sees half a file
    tmp = path.with_name(f".{path.name}.{id(frame)}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def load_result(storage: str | optuna.storages.BaseStorage, study_name: str) -> TuneResult:
    """Rebuild a study's `TuneResult` from its storage alone.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name.
    """
    opened = open_storage(storage, heartbeat_interval=None)
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError as exc:
        names = [s.study_name for s in opened.get_all_studies()]
        raise StorageError(
            f"no study {study_name!r} in {storage_url(storage)}; it holds: "
            + (", ".join(names) if names else "no studies")
        ) from exc
    return result_from_study(study)


def result_from_study(study: optuna.study.Study) -> TuneResult:
    """The tables and best schedule of an Optuna study run by `tune`."""
    meta = dict(study.user_attrs.get(ATTR, {}))
    frozen = study.get_trials(deepcopy=False)
    trials = trials_frame(frozen)
    history = history_frame(frozen)
    metric = meta.get("metric", "value")
    direction = meta.get("direction", study.direction.name.lower())
    best = None
    complete = [t for t in frozen if t.state == optuna.trial.TrialState.COMPLETE and SPEC in t.user_attrs]
    if complete:
        pick = min if direction == "minimize" else max
        winner = pick(complete, key=lambda t: t.value)
        best = best_spec(winner.user_attrs[SPEC], study.study_name, winner.number, metric,
                         winner.value, direction, meta)
    return TuneResult(study=study, trials=trials, history=history, best=best,
                      metric=metric, direction=direction)


def best_spec(spec_dict: Mapping[str, Any], study_name: str, number: int, metric: str,
              value: float, direction: str, meta: Mapping[str, Any]) -> ScheduleSpec:
    """The winning trial's `ScheduleSpec` with provenance naming where it came from."""
    spec = ScheduleSpec.from_dict(dict(spec_dict))
    provenance = dict(spec.provenance or {})
    provenance.update(
        study=study_name,
        trial=int(number),
        metric=metric,
        value=float(value),
        direction=direction,
        backend=meta.get("backend", "optuna"),
    )
    space = meta.get("space") or {}
    if space:
        provenance["bounds"] = {"base_lr": space.get("base_lr"), "max_lr": space.get("max_lr")}
    if meta.get("suggestion"):
        provenance["suggestion"] = meta["suggestion"]
    if meta.get("storage"):
        provenance["storage"] = meta["storage"]
    spec.provenance = provenance
    return spec


def trials_frame(frozen: Sequence[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """One row per trial (see `TuneResult.trials`)."""
    rows = []
    param_names: list[str] = []
    for t in frozen:
        for name in t.params:
            if name not in param_names:
                param_names.append(name)
    for t in frozen:
        pruned_at = max(t.intermediate_values) if (
            t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values
        ) else None
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs_run": t.user_attrs.get(EPOCHS_RUN, len(t.user_attrs.get(HISTORY, []))),
            "pruned_at": pruned_at,
            "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            "family": t.params.get("family"),
            "retry_of": t.system_attrs.get("failed_trial"),
            "failure": t.user_attrs.get(FAILURE),
            "started": t.datetime_start,
        }
        for name in param_names:
            row[f"params_{name}"] = t.params.get(name)
        rows.append(row)
    columns = ["number", "state", "value", "epochs_run", "pruned_at", "duration_s", "family",
               "retry_of", "failure", "started", *(f"params_{n}" for n in param_names)]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("value", "duration_s", "pruned_at", "retry_of"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["pruned_at"] = frame["pruned_at"].astype("Int64")
    frame["retry_of"] = frame["retry_of"].astype("Int64")
    frame["epochs_run"] = frame["epochs_run"].astype("int64")
    return frame.sort_values("number", ignore_index=True)


def history_frame(frozen: Sequence[Any]) -> pd.DataFrame:
    """One row per trial and epoch (see `TuneResult.history`)."""
    rows = []
    for t in frozen:
        for rec in t.user_attrs.get(HISTORY, []):
            rows.append({"trial": t.number, **rec})
    first = ["trial", "epoch", "lr", "momentum"]
    if not rows:
        return pd.DataFrame(columns=first)
    frame = pd.DataFrame(rows)
    rest = sorted(c for c in frame.columns if c not in first)
    frame = frame[[c for c in first if c in frame.columns] + rest]
    return frame.sort_values(["trial", "epoch"], ignore_index=True)


# ------------------------------------------------------------------------------ data


@dataclass
class FitData:
    """Training and validation data ready for `model.fit`, prepared once per study."""

    fit_kwargs: dict[str, Any]
    steps_per_epoch: int
    batch_size: int | None
    probe: tuple[Any, ...]  # one small batch (x, y) for the pre-flight check

    @property
    def validation(self) -> Any:
        return self.fit_kwargs.get("validation_data")


def prepare_data(data: Any, validation_data: Any, batch_size: int | None,
                 steps_per_epoch: int | None = None) -> FitData:
    """Arrays stay arrays (Keras batches them, shuffled each epoch); a batched
    `tf.data.Dataset` or `keras.utils.PyDataset` is used as it is. With
    `steps_per_epoch`, a `tf.data.Dataset` (which may repeat forever) is read on across
    epochs, repeated as needed, so every epoch has exactly that many batches.

    Raises:
        DataError: data of an unknown kind, empty, or a dataset that repeats forever
            without `steps_per_epoch`.
        ConfigError: `steps_per_epoch` < 1, or given for arrays or a PyDataset.
    """
    kwargs: dict[str, Any] = {}
    if steps_per_epoch is not None:
        if isinstance(data, tuple | list | keras.utils.PyDataset):
            raise ConfigError(
                "steps_per_epoch applies to a tf.data.Dataset; arrays and PyDatasets make "
                "whole epochs (leave steps_per_epoch out, or pass a dataset)"
            )
        if isinstance(steps_per_epoch, bool) or int(steps_per_epoch) != steps_per_epoch \
                or steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be an integer >= 1; got {steps_per_epoch!r}")
    if isinstance(data, tuple | list) and len(data) in (2, 3) and not _is_dataset(data):
        x, y = data[0], data[1]
        n = lr_data.num_samples(data)  # DataError for no samples or unequal lengths
        bs = int(batch_size or 32)
        if bs < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        kwargs.update(x=x, y=y, batch_size=bs, shuffle=True)
        if len(data) == 3:
            kwargs["sample_weight"] = data[2]
        steps = math.ceil(n / bs)
        probe = (_head(x, bs), _head(y, bs))
        used_bs: int | None = bs
    elif _is_dataset(data):
        if batch_size is not None:
            logger.debug("batch_size=%s ignored: a dataset is used as it is batched", batch_size)
        if steps_per_epoch is not None:
            steps = int(steps_per_epoch)
            kwargs.update(x=_endless(data), steps_per_epoch=steps)
        else:
            steps = _dataset_steps(data)
            kwargs["x"] = _with_length(data, steps)
        probe = _first_batch(data)
        used_bs = None
    else:
        raise DataError(
            f"training data must be (x, y) arrays, a batched tf.data.Dataset or a "
            f"keras.utils.PyDataset; got {type(data).__name__}"
        )
    if validation_data is not None:
        if isinstance(validation_data, tuple | list) and not _is_dataset(validation_data):
            if len(validation_data) not in (2, 3):
                raise DataError("validation_data must be an (x, y) pair of arrays")
            lr_data.num_samples(validation_data)
            kwargs["validation_data"] = tuple(validation_data)
            if used_bs is not None:
                kwargs["validation_batch_size"] = used_bs
        elif _is_dataset(validation_data):
            kwargs["validation_data"] = validation_data
        else:
            raise DataError(
                f"validation_data must be (x, y) arrays or a batched dataset; got "
                f"{type(validation_data).__name__}"
            )
    return FitData(kwargs, int(steps), used_bs, probe)


def _is_dataset(obj: Any) -> bool:
    if isinstance(obj, keras.utils.PyDataset):
        return True
    try:
        import tensorflow as tf

        return isinstance(obj, tf.data.Dataset)
    except ImportError:  # pragma: no cover - other backends
        return False


def _head(x: Any, n: int) -> Any:
    if isinstance(x, Mapping):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(v[:n] for v in x)
    return x[:n]


def _dataset_steps(data: Any) -> int:
    if isinstance(data, keras.utils.PyDataset):
        n = data.num_batches
        if n is None:
            raise DataError("the PyDataset has no length: define __len__ so epochs have an end")
        return int(n)
    import tensorflow as tf

    card = int(data.cardinality())
    if card == tf.data.INFINITE_CARDINALITY:
        raise DataError(
            "the dataset repeats forever: pass a finite dataset (one epoch), or steps_per_epoch"
        )
    if card == tf.data.UNKNOWN_CARDINALITY:
        card = sum(1 for _ in data)
    if card == 0:
        raise DataError("the training dataset is empty")
    return card


def _endless(data: Any) -> Any:
    """The dataset repeated (unless it repeats forever already): with `steps_per_epoch`
    each epoch reads on where the last one stopped and never runs out, so a trial runs
    `steps_per_epoch * epochs` steps, the length its schedule was sized to."""
    import tensorflow as tf

    card = int(data.cardinality())
    if card == 0:
        raise DataError("the training dataset is empty")
    return data if card == tf.data.INFINITE_CARDINALITY else data.repeat()


def _with_length(data: Any, steps: int) -> Any:
    """A `tf.data.Dataset` of unknown length, told the length counted once.

    On a dataset it cannot measure, `fit` counts one optimizer step too many at the end
    of every epoch (the weights do not move, `iterations` does), which would run every
    schedule a step per epoch ahead of the real updates.
    """
    if isinstance(data, keras.utils.PyDataset):
        return data
    import tensorflow as tf

    if int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY:
        return data.apply(tf.data.experimental.assert_cardinality(steps))
    return data


def _first_batch(data: Any) -> tuple[Any, ...]:
    if isinstance(data, keras.utils.PyDataset):
        batch = data[0]
    else:
        batch = next(iter(data))
    return tuple(batch) if isinstance(batch, tuple | list) else (batch,)


# ------------------------------------------------------------------ model per trial


def _compile_kwargs(model: keras.Model) -> dict[str, Any]:
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

    Returns:
        The new optimizer (an lrsearch optimizer of the user's optimizer class).
    """
    kwargs = _compile_kwargs(model)
    # under a distribution strategy (MirroredStrategy) the optimizer's variables must be
    # made in its scope, as the model's were
    with model.distribute_strategy.scope():
        optimizer = lr_optimizers.rebuild(
            model.optimizer,
            learning_rate=setup.learning_rate,
            momentum=setup.momentum,
            weight_decay=setup.weight_decay,
        )
        kwargs["optimizer"] = optimizer
        if setup.label_smoothing is not None:
            kwargs["loss"] = smoothed_loss(kwargs["loss"], setup.label_smoothing)
        model.compile(**kwargs)
    return optimizer


def trial_spec(optimizer: keras.Optimizer, setup: TrialSetup, space: SearchSpace) -> ScheduleSpec:
    """The trial's schedule as a `ScheduleSpec` (stored with the trial): the optimizer's
    class and settings, the rate schedule, and the momentum / weight decay (scheduled, or
    the optimizer's own constants)."""
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
    )


class EpochRecorder(keras.callbacks.Callback):
    """Records each epoch's metrics and learning rate, reports the objective metric and
    stops training on a NaN/inf loss or when the backend says to prune.

    `on_epoch(epoch, value, rows)` is the backend's hook (store, report, decide); it
    returns True to stop the trial (pruned).
    """

    def __init__(self, metric: str, on_epoch: Callable[[int, float, list[dict]], bool],
                 momentum: Any = None) -> None:
        super().__init__()
        self.metric = metric
        self.on_epoch = on_epoch
        self.momentum = momentum
        self.rows: list[dict[str, Any]] = []
        self.stopped: str | None = None
        self.epochs_run = 0

    def on_train_begin(self, logs: Any = None) -> None:
        self.rows, self.stopped, self.epochs_run = [], None, 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        opt = self.model.optimizer
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": float(opt.learning_rate)}
        if self.momentum is not None:
            row["momentum"] = float(self.momentum(opt.iterations))
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
        bad = [k for k in ("loss", self.metric) if k in logs and not math.isfinite(logs[k])]
        if bad:
            self.stopped = f"non-finite {bad[0]} at epoch {epoch + 1}"
            self.model.stop_training = True
            self.on_epoch(epoch + 1, float("nan"), self.rows)
            return
        if self.on_epoch(epoch + 1, value, self.rows):
            self.stopped = "pruned"
            self.model.stop_training = True


# --------------------------------------------------------------------------- tune


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


def tune(
    build_model: Callable[[], keras.Model],
    data: Any,
    *,
    validation_data: Any,
    suggestion: LRSuggestion | None = None,
    families: Sequence[str] = FAMILIES,
    epochs: int = 10,
    trials: int = 20,
    batch_size: int | None = None,
    metric: str = "val_loss",
    direction: str | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    out_dir: str | Path | None = None,
    pruner: str | optuna.pruners.BasePruner | None = "median",
    seed: int | None = None,
    backend: str = "optuna",
    sweeps: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
    momentum_candidates: Sequence[float] | None = None,
    weight_decay_candidates: Sequence[float] | None = None,
    label_smoothing: bool = False,
    max_trials: int | None = None,
    timeout: float | None = None,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    range_test_kwargs: Mapping[str, Any] | None = None,
    steps_per_epoch: int | None = None,
) -> TuneResult:
    """Search one-cycle / cyclical schedules inside the range-test bounds.

    Each trial builds a fresh model with `build_model()`, rebuilds its optimizer (the
    same class and settings, as an lrsearch optimizer) around the trial's rate, momentum
    and weight-decay schedules, trains `epochs` epochs and reports `metric` after each;
    unpromising trials are pruned, a NaN/inf loss fails the trial (the study goes on).
    The trial's value is `metric` at its last epoch (where the schedule ends), or the
    best value of an `EarlyStopping(restore_best_weights=True)` in `callbacks` that
    monitors `metric` (the weights the trial ends with). Schedules are sized in optimizer
    updates: batches per epoch, divided by k for an optimizer that accumulates gradients
    over k batches.

    Args:
        build_model: returns a fresh compiled `keras.Model` per call.
        data: training `(x, y)` arrays (batched with `batch_size`, default 32, shuffled
            each epoch), a batched `tf.data.Dataset` or a `keras.utils.PyDataset`.
        validation_data: the same kinds; needed for `val_*` metrics.
        suggestion: the bounds (`LRSuggestion`); `None` runs `range_test` on a fresh
            model first, or reuses the bounds stored with a study being resumed.
        families: schedule families to search (`"one_cycle"`, `"cyclic"`).
        epochs: epochs per trial; one-cycle spans exactly these epochs.
        trials: trials THIS call runs (each worker of a shared study runs its own);
            see `max_trials` for a cap on the whole study.
        metric: a name Keras logs (`val_loss`, `val_accuracy`, `loss`, ...).
        direction: `"minimize"` / `"maximize"`; inferred from `metric` when `None`.
        storage: an Optuna storage URL; `None` is `sqlite:///<out_dir>/study.db`.
            (The KerasTuner backend keeps its trials in `out_dir` and ignores it.)
        study_name: the same name in the same storage resumes the study; `None` makes
            `<model name>-<date>-<time>`.
        out_dir: where `trials.csv`, `history.csv`, `schedule.json` (and the default
            SQLite file) go; `None` is `runs/<study_name>`.
        pruner: `"median"` (default), `"hyperband"`, `"none"`/`None`, or an Optuna pruner.
        seed: seeds the sampler (offset by the number of trials already in the study,
            so a resumed study draws new points) and each trial's weights.
        backend: `"optuna"` or `"keras-tuner"` (same space, KerasTuner's Bayesian search;
            results in the same tables).
        sweeps: `SweepResult`s (one or a sequence, or `{param: result}`) whose
            candidates become `momentum_candidates` / `weight_decay_candidates`.
        callbacks: extra Keras callbacks for every trial's `fit` (the same instances
            each trial: a `ModelCheckpoint(save_best_only=True)` keeps the study's best
            model); not `ReduceLROnPlateau` or `LearningRateScheduler`.
        verbose: 0 silent; 1 a progress bar over trials.
        momentum_candidates, weight_decay_candidates: candidate values directly.
        label_smoothing: also search a label smoothing in [0, 0.2] (crossentropy losses).
        max_trials: stop once the study holds this many finished (complete or pruned)
            trials, counting every worker's: a fleet of workers stops at N.
        timeout: stop starting trials after this many seconds.
        heartbeat_interval, grace_period: seconds; a trial whose worker stopped beating
            for `grace_period` is failed and retried once (see `lrsearch.storage`).
        range_test_kwargs: options for the range test run when `suggestion` is `None`.
        steps_per_epoch: batches per epoch of a `tf.data.Dataset` training set, which
            may then repeat forever; it is read on across epochs (repeated as needed), so
            every trial runs exactly `steps_per_epoch * epochs` batches.

    Returns:
        A `TuneResult`; its tables and `schedule.json` are also written to `out_dir`.

    Raises:
        ConfigError: invalid arguments (trials or epochs < 1, unknown family, backend or
            pruner, a metric the model does not produce, a callback that sets the rate,
            gradient accumulation over k batches with epochs not a multiple of k).
        DataError: data that cannot be used or does not fit the model.
        StorageError: a storage URL that cannot be opened.
    """
    if not isinstance(trials, int | np.integer) or trials < 1:
        raise ConfigError(f"trials must be an integer >= 1; got {trials!r}")
    if not isinstance(epochs, int | np.integer) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1; got {epochs!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    families = (families,) if isinstance(families, str) else tuple(families)
    for fam in families:
        if fam not in FAMILIES:
            raise ConfigError(f"unknown family {fam!r}: use one of {', '.join(FAMILIES)}")
    if not families:
        raise ConfigError(f"families must name at least one of {', '.join(FAMILIES)}")
    optuna_pruner = make_pruner(pruner, epochs)
    if direction is None:
        direction = infer_direction(metric)
    elif direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction must be 'minimize' or 'maximize'; got {direction!r}")
    if metric.startswith("val_") and validation_data is None:
        raise ConfigError(f"metric {metric!r} needs validation_data (or use metric='loss')")
    if max_trials is not None and max_trials < 1:
        raise ConfigError(f"max_trials must be >= 1; got {max_trials}")
    if not callable(build_model):
        raise ConfigError("build_model must be a function returning a fresh compiled model")
    for cb in callbacks or ():
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau | keras.callbacks.LearningRateScheduler):
            raise ConfigError(
                f"callback {type(cb).__name__} sets the learning rate, which each trial's "
                "schedule sets; leave it out of tune's callbacks"
            )

    fit_data = prepare_data(data, validation_data, batch_size, steps_per_epoch)
    probe_model = _preflight(build_model, fit_data, metric, label_smoothing)
    if study_name is None:
        study_name = f"{probe_model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(out_dir) if out_dir is not None else Path("runs") / study_name
    if backend == "keras-tuner":
        from lrsearch import kt_backend

        if storage is not None:
            logger.warning("backend='keras-tuner' keeps its trials in %s; storage %s is not used",
                           kt_backend.project_dir(out, study_name), storage_url(storage))
            storage = None
        opened = None
        stored = kt_backend.stored_meta(out, study_name)
    else:
        if storage is None:
            storage = default_storage_url(out)
        opened = open_storage(storage, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period)
        stored = _stored_meta(opened, study_name)

    mom_c, wd_c = _candidates(sweeps, momentum_candidates, weight_decay_candidates)
    has_momentum = _has_momentum(probe_model.optimizer)
    updates_per_epoch = _updates_per_epoch(probe_model.optimizer, fit_data.steps_per_epoch)
    if stored.get("space"):
        space = SearchSpace.from_dict(stored["space"])
        if suggestion is not None and (suggestion.base_lr, suggestion.max_lr) != (
            space.base_lr, space.max_lr
        ):
            logger.warning("study %s keeps its stored bounds [%g, %g]; the new suggestion is "
                           "ignored", study_name, space.base_lr, space.max_lr)
        if space.steps_per_epoch != updates_per_epoch or space.epochs != epochs:
            raise ConfigError(
                f"study {study_name!r} was run with {space.epochs} epochs of "
                f"{space.steps_per_epoch} steps; resume it with the same data, batch size "
                "and epochs, or use a new study name"
            )
        meta = stored
    else:
        if suggestion is None:
            suggestion = _range_test(probe_model, data, fit_data, range_test_kwargs)
        for warning in getattr(suggestion, "warnings", ()):
            logger.warning("range test: %s", warning)
        space = SearchSpace.from_suggestion(
            suggestion,
            steps_per_epoch=updates_per_epoch,
            epochs=epochs,
            families=families,
            momentum=has_momentum,
            momentum_candidates=mom_c,
            weight_decay_candidates=wd_c,
            label_smoothing=label_smoothing,
        )
        meta = {
            "metric": metric,
            "direction": direction,
            "space": space.to_dict(),
            "suggestion": suggestion.to_dict() if hasattr(suggestion, "to_dict") else None,
            "backend": backend,
            "storage": storage_url(storage) if storage is not None else None,
        }
    if stored and (stored.get("metric"), stored.get("direction")) != (metric, direction):
        raise ConfigError(
            f"study {study_name!r} {stored.get('direction')}s {stored.get('metric')}: resume "
            "it with the same metric and direction, or use a new study name"
        )
    del probe_model
    clear_keras_session()

    plan = Plan(
        build_model=build_model, data=fit_data, space=space, metric=metric,
        direction=direction, epochs=int(epochs), trials=int(trials), study_name=study_name,
        out_dir=out, storage=opened, seed=seed, callbacks=list(callbacks or []),
        verbose=verbose, meta=meta,
    )
    if backend == "keras-tuner":
        return kt_backend.run(plan)
    return _run_optuna(plan, optuna_pruner, max_trials=max_trials, timeout=timeout)


def make_pruner(pruner: Any, epochs: int) -> optuna.pruners.BasePruner:
    """Optuna pruner from a name: median, hyperband, none.

    The median pruner waits for 5 finished trials and half the epochs: a one-cycle trial
    peaks at up to half its run (`pct_start <= 0.5`), and at its peak rate it trails
    slower schedules that end better, so judging it earlier prunes the good trials.
    """
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 2))
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=int(epochs),
                                              reduction_factor=3)
    raise ConfigError(f"unknown pruner {pruner!r}: use one of {', '.join(PRUNERS)}")


def _candidates(sweeps: Any, momentum: Any, weight_decay: Any) -> tuple[Any, Any]:
    found: dict[str, Any] = {}
    if sweeps is not None:
        items: list[tuple[str | None, Any]]
        if isinstance(sweeps, Mapping):
            items = list(sweeps.items())
        elif isinstance(sweeps, Sequence) and not isinstance(sweeps, str):
            items = [(None, s) for s in sweeps]
        else:
            items = [(None, sweeps)]
        for key, result in items:
            param = key or getattr(result, "param", None)
            if param not in ("momentum", "weight_decay"):
                raise ConfigError(
                    "sweeps must be SweepResults of param 'momentum' or 'weight_decay' "
                    "(or a dict {param: SweepResult})"
                )
            found[param] = tuple(float(v) for v in result.candidates)
    mom = tuple(momentum) if momentum is not None else found.get("momentum")
    wd = tuple(weight_decay) if weight_decay is not None else found.get("weight_decay")
    return mom, wd


def _has_momentum(optimizer: Any) -> bool:
    """Whether the user's optimizer has a momentum worth cycling (SGD momentum > 0,
    Adam-family beta_1); otherwise the schedules leave momentum alone."""
    try:
        name = lr_optimizers.momentum_name(optimizer)
    except Exception:
        return False
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    value = getattr(inner, name, None)
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return value is not None


def _updates_per_epoch(optimizer: Any, batches: int) -> int:
    """Optimizer updates per epoch, the count lrsearch schedules run on: the batches, or
    batches / k when the optimizer accumulates gradients over k batches.

    Raises:
        ConfigError: the batches of an epoch are not a multiple of k (updates would
            straddle epochs, and no schedule in epochs could end with the run).
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    k = int(getattr(inner, "gradient_accumulation_steps", None) or 1)
    if batches % k:
        raise ConfigError(
            f"the optimizer accumulates gradients over {k} batches but an epoch has "
            f"{batches} batches; choose a batch size (or data size) that gives a multiple "
            f"of {k} batches per epoch"
        )
    return batches // k


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


def _preflight(build_model: Callable[[], keras.Model], data: FitData, metric: str,
               label_smoothing: bool) -> keras.Model:
    """Build one model and evaluate it on one batch: the model is compiled, the data
    fits it, and it produces `metric` — before any trial runs."""
    try:
        model = build_model()
    except Exception as exc:
        raise ConfigError(f"build_model() failed: {type(exc).__name__}: {_line(exc)}") from exc
    if not isinstance(model, keras.Model):
        raise ConfigError(f"build_model() must return a keras.Model; got {type(model).__name__}")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError("build_model() must return a compiled model (call model.compile)")
    if label_smoothing:
        smoothed_loss(_compile_kwargs(model).get("loss"), 0.1)
    try:
        logs = model.evaluate(*data.probe[:2], verbose=0, return_dict=True)
    except Exception as exc:
        raise DataError(f"the data does not fit the model: {type(exc).__name__}: {_line(exc)}") from exc
    names = set(logs)
    wanted = metric.removeprefix("val_") if metric.startswith("val_") else metric
    if wanted not in names:
        produced = sorted(names) + sorted(f"val_{n}" for n in names)
        raise ConfigError(
            f"the model does not produce metric {metric!r}: choose one of " + ", ".join(produced)
        )
    return model


def _range_test(model: keras.Model, data: Any, fit_data: FitData,
                kwargs: Mapping[str, Any] | None) -> LRSuggestion:
    from lrsearch.finder import range_test

    options = {"verbose": 0, **(kwargs or {})}
    if fit_data.batch_size is not None:
        options.setdefault("batch_size", fit_data.batch_size)
    result = range_test(model, data, **options)
    return result.suggestion


def _stored_meta(storage: Any, study_name: str) -> dict[str, Any]:
    for summary in storage.get_all_studies():
        if summary.study_name == study_name:
            return dict(summary.user_attrs.get(ATTR, {}))
    return {}


def _line(exc: BaseException) -> str:
    lines = [s for s in str(exc).strip().splitlines() if s.strip()]
    return lines[0].strip() if lines else ""


# ------------------------------------------------------------------ optuna backend


def _run_optuna(plan: Plan, pruner: optuna.pruners.BasePruner, *, max_trials: int | None,
                timeout: float | None) -> TuneResult:
    existing = _stored_meta(plan.storage, plan.study_name)
    sampler_seed = None
    if plan.seed is not None:
        done = 0
        if existing:
            summary = next(s for s in plan.storage.get_all_studies()
                           if s.study_name == plan.study_name)
            done = plan.storage.get_n_trials(summary._study_id)
        sampler_seed = int(plan.seed) + done
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=sampler_seed, multivariate=True, group=True,
            n_startup_trials=max(3, min(10, plan.trials // 3)),
        )
    verbosity = optuna.logging.get_verbosity()
    if not plan.verbose:  # "A new study created in RDB ..." on Optuna's own handler
        optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        study = optuna.create_study(
            storage=plan.storage, study_name=plan.study_name, direction=plan.direction,
            sampler=sampler, pruner=pruner, load_if_exists=True,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, plan.meta)
        study.enqueue_trial(plan.space.suggested_params(), skip_if_exists=True)
    objective = OptunaObjective(plan)
    callbacks: list[Any] = [_clear_session]
    if max_trials is not None:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        callbacks.append(optuna.study.MaxTrialsCallback(max_trials, states=states))
        if _count(study, states) >= max_trials:
            logger.info("study %s already holds %d finished trials", plan.study_name, max_trials)
            return _finish(study, plan)
    verbosity = optuna.logging.get_verbosity()
    if not plan.verbose:  # Optuna logs every trial at INFO on its own handler
        optuna.logging.set_verbosity(min(max(verbosity, optuna.logging.WARNING),
                                         optuna.logging.CRITICAL))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=plan.trials, timeout=timeout, callbacks=callbacks,
                           catch=(), show_progress_bar=bool(plan.verbose))
    except KeyboardInterrupt:
        # every finished trial is already in the storage; keep the tables in step
        _finish(study, plan)
        raise
    except Exception as exc:
        _finish(study, plan)
        if _is_interrupt(exc):
            raise KeyboardInterrupt from exc
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    return _finish(study, plan)


def _is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C that TensorFlow's C++ layer re-raised as another exception (pybind11)."""
    return "KeyboardInterrupt" in f"{type(exc).__name__}: {exc}"


def _count(study: optuna.study.Study, states: tuple[Any, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _clear_session(study: Any, trial: Any) -> None:
    # Drop the finished trial's graph state; the garbage collector frees the model in its
    # own time (a forced collection here costs ~0.3 s per trial).
    clear_keras_session()


def clear_keras_session() -> None:
    """`keras.backend.clear_session` that keeps the user's global settings.

    Keras keeps the dtype policy, interactive logging, traceback filtering and flash
    attention in the state it resets: a `mixed_float16` study would otherwise train its
    trials in float32 (no loss scaling, other numbers) after the first clear.
    """
    config = keras.config
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


def _finish(study: optuna.study.Study, plan: Plan) -> TuneResult:
    result = result_from_study(study)
    try:
        result.save(plan.out_dir)
    except OSError as exc:
        logger.warning("could not write the tables to %s: %s", plan.out_dir, exc)
    return result


class OptunaObjective:
    """One trial: sample, build, train, record every epoch, report and prune."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, trial: optuna.trial.Trial) -> float:
        plan = self.plan
        # a retried trial inherits the dead one's attributes: start its records afresh
        if trial.user_attrs.get(HISTORY):
            trial.set_user_attr(HISTORY, [])
        params = plan.space.sample(OptunaSampler(trial))
        setup = plan.space.build(params)
        if plan.seed is not None:
            keras.utils.set_random_seed(int(plan.seed) + trial.number)
        model = plan.build_model()
        optimizer = configure_model(model, setup)
        trial.set_user_attr(SPEC, trial_spec(optimizer, setup, plan.space).to_dict())

        def on_epoch(epoch: int, value: float, rows: list[dict]) -> bool:
            trial.set_user_attr(HISTORY, rows)  # one write per epoch; epochs run = len(rows)
            if not math.isfinite(value):
                return True
            trial.report(value, epoch)
            return trial.should_prune()

        recorder = EpochRecorder(plan.metric, on_epoch, momentum=setup.momentum)
        model.fit(epochs=plan.epochs, callbacks=[recorder, *plan.callbacks], verbose=0,
                  **plan.data.fit_kwargs)
        if recorder.stopped == "pruned":
            raise optuna.TrialPruned(f"pruned at epoch {recorder.epochs_run}")
        if recorder.stopped is not None:
            trial.set_user_attr(FAILURE, recorder.stopped)
            logger.warning("trial %d failed: %s", trial.number, recorder.stopped)
            return float("nan")  # Optuna records a NaN value as a failed trial
        return final_value(recorder.rows, plan.callbacks, plan.metric)
