"""The Optuna backend of `tune`: a TPE search with pruning, kept in an Optuna storage.

Each trial samples the space (`OptunaSampler`), records its schedule and every epoch in
the trial's user attributes (see `lrsearch.study.results`), reports the metric each epoch and
can be pruned. The storage holds everything, so several workers can share a study and a
stopped one resumes where it was. When the best trials sit at the edge of a rate range,
the range is widened for the remaining trials (`lrsearch.study.widening`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import optuna

from lrsearch.optimizers.base import has_loss_scale
from lrsearch.core import interrupts, progress
from lrsearch.core.errors import ConfigError, DataError, data_cause
from lrsearch.study.options import PRUNERS
from lrsearch.study.reuse import TrialModels
from lrsearch.study.results import (
    ATTR,
    FAILURE,
    HISTORY,
    INTERRUPTED,
    SPEC,
    TuneResult,
    best_trial,
    result_from_study,
    save_tables,
)
from lrsearch.study.sampling import OptunaSampler
from lrsearch.study.storage import retried, retry_trial
from lrsearch.study.space import SearchSpace
from lrsearch.study.trial import (
    EpochRecorder,
    Plan,
    final_value,
    trial_callbacks,
    trial_spec,
    user_step_errors,
)
from lrsearch.study.widening import TOP_K, WIDEN_AFTER_TRIALS, RangeAwareTPESampler, edge_widening

__all__ = ["OptunaObjective", "current_space", "make_pruner", "requeue_interrupted", "run", "stored_meta",
           "trial_models"]

logger = logging.getLogger(__name__)


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


def stored_meta(storage: Any, study_name: str) -> dict[str, Any]:
    for summary in storage.get_all_studies():
        if summary.study_name == study_name:
            return dict(summary.user_attrs.get(ATTR, {}))
    return {}


def run(plan: Plan) -> TuneResult:
    """Run `plan.trials` more trials of the study (created or resumed) and return the tables."""
    pruner = make_pruner(plan.pruner, plan.epochs)
    max_trials, timeout = plan.max_trials, plan.timeout
    existing = stored_meta(plan.storage, plan.study_name)
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
        sampler = RangeAwareTPESampler(
            seed=sampler_seed, multivariate=True, group=True, attr=ATTR,
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
        # the suggested schedule is where the search starts: the new study's first trial
        for params in plan.space.opening_params(plan.opening):
            study.enqueue_trial(params, skip_if_exists=True)
    for number in requeue_interrupted(study):
        logger.info("trial %d was stopped by a signal: its parameters run again first", number)
    objective = OptunaObjective(plan)
    callbacks: list[Any] = [objective.models.after_trial, _EdgeWidener(plan), TablesWriter(plan)]
    if max_trials is not None:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        callbacks.append(optuna.study.MaxTrialsCallback(max_trials, states=states))
        if _count(study, states) >= max_trials:
            logger.info("study %s already holds %d finished trials", plan.study_name, max_trials)
            return finish(study, plan)
    verbosity = optuna.logging.get_verbosity()
    if not plan.verbose:  # Optuna logs every trial at INFO on its own handler
        optuna.logging.set_verbosity(min(max(verbosity, optuna.logging.WARNING),
                                         optuna.logging.CRITICAL))
    best = best_trial(study.get_trials(deepcopy=False), plan.direction)
    progress.current().study_begin(plan.trials, plan.epochs, plan.metric, plan.direction,
                                   best=None if best is None else best.value,
                                   best_trial=None if best is None else best.number)
    try:
        with warnings.catch_warnings(), finishing_on_error(study, plan), interrupts.held():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=plan.trials, timeout=timeout, callbacks=callbacks,
                           catch=(), show_progress_bar=bool(plan.verbose) and progress.interactive(sys.stderr))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return finish(study, plan)


def requeue_interrupted(study: optuna.study.Study) -> list[int]:
    """Queue again, once each, the parameters of the trials Ctrl-C or SIGTERM failed (marked
    `INTERRUPTED` by the objective), as Optuna's heartbeat queues a killed one
    (`lrsearch.study.storage.retry_trial`). Returns the numbers of the trials queued again."""
    trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    queued = []
    for trial in trials:
        if (trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs.get(INTERRUPTED)
                and trial.number not in done):
            retry_trial(study, trial)
            queued.append(trial.number)
    return queued


@contextlib.contextmanager
def finishing_on_error(study: optuna.study.Study, plan: Plan) -> Iterator[None]:
    """Around `study.optimize`: on Ctrl-C or an error the tables are written first (every
    finished trial is already in the storage); a Ctrl-C that TensorFlow re-raised becomes
    KeyboardInterrupt, a bad batch met mid-trial a `DataError` naming the trial and epoch."""
    try:
        yield
    except KeyboardInterrupt:
        finish(study, plan)
        raise
    except Exception as exc:
        finish(study, plan)
        if _is_interrupt(exc):
            raise KeyboardInterrupt from exc
        if type(exc).__name__ == "InvalidArgumentError":
            trial = study.trials[-1] if study.trials else None
            where = f" in trial {trial.number} (epoch {len(trial.user_attrs.get(HISTORY) or []) + 1})" if trial else ""
            raise DataError(f"{data_cause(exc)}{where}, in the training or validation data; fix or remove "
                            "that data") from exc
        raise


def _is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C that TensorFlow's C++ layer re-raised as another exception (pybind11)."""
    return "KeyboardInterrupt" in f"{type(exc).__name__}: {exc}"


def _count(study: optuna.study.Study, states: tuple[Any, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def trial_models(plan: Plan) -> TrialModels:
    """The study's models: one shared model for the trials that can share it
    (`lrsearch.study.reuse`), sized for the plan's longest trial."""
    return TrialModels(plan.build_model, steps=plan.space.total_steps, seed=plan.seed,
                       callbacks=plan.callbacks, enabled=plan.reuse)


class TablesWriter:
    """Study callback: rewrite the tables (and the best schedule so far) after each finished
    trial, so a run killed mid-study leaves them current; each write is atomic."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, study: optuna.study.Study, trial: Any) -> None:
        finish(study, self.plan)


class _EdgeWidener:
    """Study callback: widen the rate ranges where the best trials sit at an edge
    (`lrsearch.study.widening`), store the new space and the event in the study's user
    attributes, and say so in one line."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, study: optuna.study.Study, trial: Any) -> None:
        complete = [t for t in study.get_trials(deepcopy=False,
                                                states=(optuna.trial.TrialState.COMPLETE,))
                    if t.value is not None and math.isfinite(t.value)]
        if len(complete) < WIDEN_AFTER_TRIALS:
            return
        complete.sort(key=lambda t: t.value, reverse=self.plan.direction == "maximize")
        meta = dict(study.user_attrs.get(ATTR) or self.plan.meta)
        space = current_space(meta, self.plan.space)
        new, events = edge_widening(space, [t.params for t in complete[:TOP_K]])
        if not events:
            return
        done = len(study.get_trials(deepcopy=False))
        for event in events:
            event["after_trials"] = done
            logger.info("study %s: best trials sit at the %s of %s's range [%.3g, %.3g]; "
                        "widened to [%.3g, %.3g] (limit %.3g) for the remaining trials",
                        self.plan.study_name, event["side"], event["param"], *event["old"],
                        *event["new"], event["cap"])
        meta["space"] = new.to_dict()
        meta["widened"] = [*meta.get("widened", ()), *events]
        study.set_user_attr(ATTR, meta)


def current_space(meta: dict[str, Any], default: SearchSpace) -> SearchSpace:
    """The study's space as last widened (its user attributes), else `default`."""
    if meta.get("widened") and meta.get("space"):
        return SearchSpace.from_dict(meta["space"])
    return default


def finish(study: optuna.study.Study, plan: Plan) -> TuneResult:
    return save_tables(result_from_study(study), plan.out_dir)


class OptunaObjective:
    """One trial: sample, build (or reset the shared model, `lrsearch.study.reuse`), train,
    record every epoch, report and prune. `models` may be shared with other objectives
    of the same study (the rungs of `lrsearch.study.halving`)."""

    def __init__(self, plan: Plan, models: TrialModels | None = None) -> None:
        self.plan = plan
        self.models = models if models is not None else trial_models(plan)

    def __call__(self, trial: optuna.trial.Trial) -> float:
        try:
            with interrupts.interruptible():  # a signal noted while Optuna booked the trial raises here
                return self._run(trial)
        except BaseException as exc:  # Ctrl-C or SIGTERM (as TensorFlow may re-raise it): a rerun retries it
            if isinstance(exc, KeyboardInterrupt) or _is_interrupt(exc):
                with contextlib.suppress(Exception):  # a storage that fails now must not hide the Ctrl-C
                    trial.set_user_attr(INTERRUPTED, True)
            raise

    def _run(self, trial: optuna.trial.Trial) -> float:
        plan = self.plan
        # a retried trial inherits the dead one's attributes: start its records afresh
        if trial.user_attrs.get(HISTORY):
            trial.set_user_attr(HISTORY, [])
        if trial.user_attrs.get(INTERRUPTED):
            trial.set_user_attr(INTERRUPTED, False)
        space = current_space(dict(trial.study.user_attrs.get(ATTR) or {}), plan.space)
        params = space.sample(OptunaSampler(trial))
        setup = space.build(params)
        prepared = self.models.prepare(setup, None if plan.seed is None else int(plan.seed) + trial.number)
        trial.set_user_attr(SPEC, trial_spec(prepared.optimizer, setup, space, plan.data.batch_size,
                                                  loss_scale=has_loss_scale(prepared.model)).to_dict())

        def on_epoch(epoch: int, value: float, rows: list[dict]) -> bool:
            trial.set_user_attr(HISTORY, rows)  # one write per epoch; epochs run = len(rows)
            if not math.isfinite(value):
                return True
            trial.report(value, epoch)
            return trial.should_prune()

        recorder = EpochRecorder(plan.metric, on_epoch, momentum=setup.momentum, number=trial.number)
        with user_step_errors(recorder):
            prepared.model.fit(epochs=plan.epochs,
                               callbacks=[*prepared.callbacks, recorder, *trial_callbacks(setup), *plan.callbacks],
                               verbose=0, **plan.data.fit_kwargs)
        if recorder.stopped == "pruned":
            raise optuna.TrialPruned(f"pruned at epoch {recorder.epochs_run}")
        if recorder.stopped is not None:
            trial.set_user_attr(FAILURE, recorder.stopped)
            logger.warning("trial %d failed: %s", trial.number, recorder.stopped)
            return float("nan")  # Optuna records a NaN value as a failed trial
        return final_value(recorder.rows, plan.callbacks, plan.metric)
