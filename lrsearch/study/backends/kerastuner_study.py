"""The same bounded search run through KerasTuner (`tune(..., backend="keras-tuner")`).

The space is `lrsearch.study.space.SearchSpace`, registered in `HyperModel.build` through
`KerasTunerSampler` (conditional parameters in `hp.conditional_scope`); the trial's
schedules are attached in `HyperModel.fit`, which recompiles the fresh model with the
user's optimizer rebuilt around them. KerasTuner's Bayesian optimization oracle picks
the points; there is no pruning (KerasTuner's Hyperband changes the epochs of a trial,
which a one-cycle schedule cannot follow). Nor does it widen a rate range whose best
trials sit at an edge, as the Optuna backend does (`lrsearch.study.widening`): KerasTuner
keeps the range a hyperparameter was first registered with (`HyperParameters._retrieve`
returns the existing one), so its study searches the range test's ranges throughout.

Trials live in `<out_dir>/keras_tuner/<study_name>/` (KerasTuner's own files plus one
`lrsearch.json` per trial with its per-epoch records and schedule); running again with
the same `out_dir` and study name resumes. Tables and `schedule.json` are the same as
the Optuna backend's.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import types
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import optuna

from lrsearch.optimizers.base import has_loss_scale
from lrsearch.core import progress
from lrsearch.core.errors import ConfigError, DataError, first_line
from lrsearch.core.fileio import write_text
from lrsearch.study.results import (
    EPOCHS_RUN,
    FAILURE,
    HISTORY,
    SPEC,
    TuneResult,
    result_from_trials,
    save_tables,
)
from lrsearch.study.sampling import KerasTunerSampler
from lrsearch.study.trial import (
    EpochRecorder,
    Plan,
    clear_keras_session,
    configure_model,
    final_value,
    trial_callbacks,
    trial_spec,
    user_step_errors,
)

__all__ = ["project_dir", "run", "stored_meta"]

logger = logging.getLogger(__name__)

_RECORD = "lrsearch.json"
_META = "lrsearch_study.json"
_STATES = {
    "COMPLETED": optuna.trial.TrialState.COMPLETE,
    "FAILED": optuna.trial.TrialState.FAIL,
    "INVALID": optuna.trial.TrialState.FAIL,
    "RUNNING": optuna.trial.TrialState.RUNNING,
    "IDLE": optuna.trial.TrialState.WAITING,
    "STOPPED": optuna.trial.TrialState.PRUNED,
}


def project_dir(out_dir: str | Path, study_name: str) -> Path:
    """Where KerasTuner keeps a study's trials."""
    return Path(out_dir) / "keras_tuner" / study_name


def stored_meta(out_dir: str | Path, study_name: str) -> dict[str, Any]:
    """The study description saved by an earlier run (empty for a new study)."""
    path = project_dir(out_dir, study_name) / _META
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()))


class _HyperModel(keras_tuner.HyperModel):
    def __init__(self, plan: Plan) -> None:
        super().__init__(name=plan.study_name, tunable=True)
        self.plan = plan
        self.trial: Any = None
        self.record_path: Path | None = None

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        self.plan.space.sample(KerasTunerSampler(hp))  # registers the whole space
        if self.plan.seed is not None and self.trial is not None:
            keras.utils.set_random_seed(int(self.plan.seed) + int(self.trial.trial_id))
        return self.plan.build_model()

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any,
            **kwargs: Any) -> dict[str, float]:
        plan = self.plan
        params = plan.space.sample(KerasTunerSampler(hp))
        setup = plan.space.build(params)
        optimizer = configure_model(model, setup)
        record: dict[str, Any] = {
            "params": params,
            SPEC: trial_spec(optimizer, setup, plan.space, plan.data.batch_size, loss_scale=has_loss_scale(model)).to_dict(),
            HISTORY: [],
            EPOCHS_RUN: 0,
            "started": time.time(),
        }
        self._write(record)

        def on_epoch(epoch: int, value: float, rows: list[dict]) -> bool:
            record[HISTORY] = rows
            record[EPOCHS_RUN] = epoch
            self._write(record)
            return False  # no pruning with KerasTuner

        recorder = EpochRecorder(plan.metric, on_epoch, momentum=setup.momentum, number=int(self.trial.trial_id))
        callbacks = [recorder, *trial_callbacks(setup), *plan.callbacks, *kwargs.pop("callbacks", [])]
        try:
            with user_step_errors(recorder):
                model.fit(*args, callbacks=callbacks, **kwargs)
        except DataError as exc:  # KerasTuner retries any other error: this one ends the search
            raise keras_tuner.errors.FatalError(str(exc)) from exc
        record["finished"] = time.time()
        if recorder.stopped is not None:
            record[FAILURE] = recorder.stopped
            self._write(record)
            logger.warning("trial %s failed: %s", self.trial.trial_id, recorder.stopped)
            raise keras_tuner.errors.FailedTrialError(recorder.stopped)
        value = final_value(recorder.rows, plan.callbacks, plan.metric)
        record["value"] = value
        self._write(record)
        return {plan.metric: value}

    def _write(self, record: dict[str, Any]) -> None:
        assert self.record_path is not None
        write_text(self.record_path, json.dumps(record))


class _Tuner(keras_tuner.BayesianOptimization):
    """KerasTuner's Bayesian search that tells the hypermodel which trial runs."""

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        self.hypermodel.trial = trial
        self.hypermodel.record_path = Path(self.get_trial_dir(trial.trial_id)) / _RECORD
        return super().run_trial(trial, *args, **kwargs)

    def _configure_tensorboard_dir(self, callbacks: Any, trial: Any, execution: int = 0) -> None:
        # KerasTuner imports tensorboard for every trial on TensorFlow, even without a
        # TensorBoard callback; only then is it needed (and installed by the user).
        if any(type(c).__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        clear_keras_session()
        plan = self.hypermodel.plan  # the tables stay current: a killed search leaves them
        save_tables(result_from_tuner(self, plan), plan.out_dir)


def run(plan: Plan) -> TuneResult:
    """Run `plan.trials` more trials of the study with KerasTuner and return the tables."""
    project = project_dir(plan.out_dir, plan.study_name)
    project.mkdir(parents=True, exist_ok=True)
    meta_path = project / _META
    if not meta_path.is_file():
        write_text(meta_path, json.dumps({**plan.meta, "backend": "keras-tuner"}, indent=2))
    hypermodel = _HyperModel(plan)
    direction = "min" if plan.direction == "minimize" else "max"
    tuner = _Tuner(
        hypermodel,
        objective=keras_tuner.Objective(plan.metric, direction=direction),
        max_trials=plan.trials,
        num_initial_points=max(2, min(5, plan.trials // 2)),
        seed=plan.seed,
        directory=str(project.parent),
        project_name=plan.study_name,
        overwrite=False,
        max_consecutive_failed_trials=10**6,  # a NaN trial fails alone; the study goes on
    )
    already = len(tuner.oracle.trials)
    tuner.oracle.max_trials = already + plan.trials
    progress.current().study_begin(plan.trials, plan.epochs, plan.metric, plan.direction)
    try:
        tuner.search(epochs=plan.epochs, verbose=0, **plan.data.fit_kwargs)
    except KeyboardInterrupt:
        save_tables(result_from_tuner(tuner, plan), plan.out_dir)
        raise
    except keras_tuner.errors.FatalError as exc:
        save_tables(result_from_tuner(tuner, plan), plan.out_dir)
        if isinstance(exc.__cause__, DataError):
            raise exc.__cause__  # the one line, not KerasTuner's wrapper
        raise
    except RuntimeError as exc:  # KerasTuner's own "too many failed trials" and the like
        raise ConfigError(f"KerasTuner stopped the search: {first_line(exc)}") from exc
    return save_tables(result_from_tuner(tuner, plan), plan.out_dir)


def result_from_tuner(tuner: Any, plan: Plan) -> TuneResult:
    """The KerasTuner trials in the same tables as an Optuna study's."""
    project = project_dir(plan.out_dir, plan.study_name)
    meta = stored_meta(plan.out_dir, plan.study_name) or {**plan.meta, "backend": "keras-tuner"}
    frozen = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda kv: int(kv[0])):
        path = project / f"trial_{trial_id}" / _RECORD
        record = json.loads(path.read_text()) if path.is_file() else {}
        state = _STATES.get(str(trial.status), optuna.trial.TrialState.FAIL)
        value = record.get("value") if state == optuna.trial.TrialState.COMPLETE else None
        started, finished = record.get("started"), record.get("finished")
        frozen.append(
            types.SimpleNamespace(
                number=int(trial_id),
                state=state,
                value=value,
                params=dict(record.get("params", {})),
                user_attrs={k: record[k] for k in (HISTORY, SPEC, EPOCHS_RUN, FAILURE) if k in record},
                system_attrs={},
                intermediate_values={},
                duration=dt.timedelta(seconds=finished - started) if started and finished else None,
                datetime_start=dt.datetime.fromtimestamp(started) if started else None,
            )
        )
    result = result_from_trials(tuner, frozen, study_name=plan.study_name, metric=plan.metric,
                                direction=plan.direction, meta=meta)
    if result.best is not None:
        result.best.provenance["storage"] = str(project)
    return result
