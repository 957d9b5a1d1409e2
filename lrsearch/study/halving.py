"""Successive halving over complete schedules (`StudyOptions(fidelity="schedule-halving")`).

A pruner judges a trial by its metric part-way through its run; a one-cycle schedule is
at its peak rate half-way through and does its best in the anneal after it, so a median
pruner at half the epochs cuts good schedules (BENCHMARKS.md, search efficiency). Here
no schedule is judged truncated: each rung runs *complete* schedules, compressed to the
rung's length.

One bracket (`lrsearch.study.budget.halving_rungs`): `trials` points sampled by the study's
TPE sampler (the suggested schedule first, or a race's designed points, `lrsearch.study.race`) each train the whole schedule squeezed into
the shortest length; the best `1 / eta` of them train again, from fresh weights, at
`eta` times the length; and so on up to `epochs`. One-cycle, WSD and Schedule-Free
warmups scale with the rung's steps; a cyclical schedule keeps its number of cycles (its
half-cycle and its `exp_range` decay per step scale with the rung). Every trial is
recorded in the study with its rung (`results.RUNG`); only trials of the top rung, which
ran the full schedule, can be the study's best.

Example:

    lrsearch.tune(build_model, train, validation_data=val, epochs=8, trials=8,
                  fidelity="schedule-halving")   # 8 x 2 epochs, 4 x 4, 2 x 8
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import uuid
import warnings
from typing import Any

import optuna

from lrsearch.core import interrupts, progress
from lrsearch.study.budget import Rung, halving_rungs
from lrsearch.study.backends.optuna_study import (
    OptunaObjective,
    finish,
    finishing_on_error,
    TablesWriter,
    stored_meta,
    trial_models,
)
from lrsearch.study.reuse import TrialModels
from lrsearch.study.results import ATTR, RUNG, TuneResult
from lrsearch.study.sampling import Param
from lrsearch.study.space import SearchSpace, TrialSetup
from lrsearch.study.trial import Plan

__all__ = ["RungSpace", "run"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RungSpace(SearchSpace):
    """The study's space with each schedule compressed to `epochs` (of `full_epochs`).

    Parameters are drawn as in the full space (they describe the full run); `build`
    makes the same schedule over the rung's steps.
    """

    full_epochs: int = 0

    def full(self) -> SearchSpace:
        """The space of the full run."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(SearchSpace)}
        return SearchSpace(**{**fields, "epochs": self.full_epochs or self.epochs})

    def params(self) -> list[Param]:
        return self.full().params()

    def build(self, params: Any) -> TrialSetup:
        setup = super().build(params)
        scale = self.epochs / (self.full_epochs or self.epochs)
        if setup.family != "cyclic" or scale == 1:
            return setup
        from lrsearch.schedules import CyclicLR

        config = setup.learning_rate.get_config()
        for key in ("step_size_up", "step_size_down"):
            if config.get(key) is not None:
                config[key] = max(1, round(config[key] * scale))
        config["gamma"] = float(config["gamma"]) ** (1 / scale)
        schedule = CyclicLR.from_config(config)
        momentum = schedule.momentum_schedule() if setup.momentum is not None else None
        return dataclasses.replace(setup, learning_rate=schedule, momentum=momentum)


def run(plan: Plan) -> TuneResult:
    """Run one schedule-halving bracket of `plan.trials` first-rung trials in the study
    (created or resumed) and return the tables.

    `plan.pruner` and `plan.max_trials` are not used; `plan.timeout` stops starting
    trials after that many seconds.
    """
    rungs = halving_rungs(plan.trials, plan.epochs, plan.eta)
    logger.info("schedule halving: %s epochs", ", ".join(f"{r.trials} x {r.epochs}" for r in rungs))
    study = _open_study(plan)
    models = trial_models(plan)  # one shared model for every rung (`lrsearch.study.reuse`)
    bracket = uuid.uuid4().hex[:8]
    began = time.monotonic()
    verbosity = optuna.logging.get_verbosity()
    if not plan.verbose:
        optuna.logging.set_verbosity(min(max(verbosity, optuna.logging.WARNING), optuna.logging.CRITICAL))
    try:
        with warnings.catch_warnings(), finishing_on_error(study, plan):
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for index, rung in enumerate(rungs):
                if index == 0:  # a race's designed first rung (`tune(opening_points=)`), else the suggestion
                    for params in plan.meta.get("opening") or [plan.space.suggested_params()]:
                        study.enqueue_trial(dict(params), skip_if_exists=True)
                else:
                    parents = _best(study, bracket, index - 1, rung.trials, plan.direction)
                    if not parents:
                        logger.warning("schedule halving: no trial of rung %d completed; stopping", index - 1)
                        break
                    for parent in parents:
                        study.enqueue_trial(parent.params, user_attrs={"promoted_from": parent.number})
                timeout = None if plan.timeout is None else plan.timeout - (time.monotonic() - began)
                if timeout is not None and timeout <= 0:
                    break
                with interrupts.held():
                    study.optimize(_RungObjective(plan, rung, index, len(rungs), bracket, models),
                                   n_trials=rung.trials if index == 0 else min(rung.trials, len(parents)),
                                   timeout=timeout, callbacks=[models.after_trial, TablesWriter(plan)], catch=(),
                                   show_progress_bar=bool(plan.verbose) and progress.interactive(sys.stderr))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return finish(study, plan)


def _open_study(plan: Plan) -> optuna.study.Study:
    """The study (created or loaded) with a seeded TPE sampler and no pruner; a new study
    gets the plan's metadata."""
    sampler_seed = None
    if plan.seed is not None:
        done = 0
        if stored_meta(plan.storage, plan.study_name):
            summary = next(s for s in plan.storage.get_all_studies() if s.study_name == plan.study_name)
            done = plan.storage.get_n_trials(summary._study_id)
        sampler_seed = int(plan.seed) + done
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, multivariate=True, group=True,
                                             n_startup_trials=max(3, min(10, plan.trials // 3)))
    verbosity = optuna.logging.get_verbosity()
    if not plan.verbose:
        optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        study = optuna.create_study(storage=plan.storage, study_name=plan.study_name, direction=plan.direction,
                                    sampler=sampler, pruner=optuna.pruners.NopPruner(), load_if_exists=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, {**plan.meta, "fidelity": "schedule-halving", "eta": plan.eta})
    return study


def _best(study: optuna.study.Study, bracket: str, index: int, count: int, direction: str) -> list[Any]:
    """The `count` best complete trials of rung `index` of `bracket`."""
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get(RUNG, {}).get("bracket") == bracket
            and t.user_attrs[RUNG].get("index") == index and t.value is not None]
    done.sort(key=lambda t: t.value, reverse=direction == "maximize")
    return done[:count]


class _RungObjective:
    """A trial of one rung: the study's objective over the rung's compressed schedules,
    with the rung recorded on the trial."""

    def __init__(self, plan: Plan, rung: Rung, index: int, rungs: int, bracket: str,
                 models: TrialModels | None = None) -> None:
        space = RungSpace(**{**dataclasses.asdict(plan.space), "epochs": rung.epochs,
                             "full_epochs": plan.space.epochs})
        self.inner = OptunaObjective(dataclasses.replace(plan, space=space, epochs=rung.epochs), models)
        self.attr = {"bracket": bracket, "index": index, "epochs": rung.epochs, "top": index == rungs - 1}

    def __call__(self, trial: optuna.trial.Trial) -> float:
        trial.set_user_attr(RUNG, self.attr)
        return self.inner(trial)
