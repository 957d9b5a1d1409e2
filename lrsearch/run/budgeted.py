"""`auto(..., budget=...)`: the plan before each stage, the charge after it, the study
topped up to the budget.

`BudgetedRun` keeps the books of one budgeted `auto` run. Before the range test it plans
with an estimate of the sweeps' window (`lrsearch.study.budget.plan_budget`); after it, the
range test's batches are charged and the sweeps planned on their real window; after
them, the study gets what is left (with the final fit left to the planner, a short budget
is decided once, at the first plan: a race of short trials and a final fit of its winner,
`lrsearch.study.budget.FINAL_SHARE`): whole trials (the study is resumed with more trials
while a whole trial still fits, since pruned trials spend less), or one schedule-halving
bracket. With no `range_steps` given, the range test is the self-extending one
(`range_test(steps=None)`), its rounds capped at `RANGE_SHARE` of an epochs budget, and
the first plan is made from what it leaves. A race (`lrsearch.study.race`) is one
schedule-halving bracket with a designed first rung.
A budget in seconds is turned into epochs at the speed the range test measured,
and the study also stops starting trials at the deadline. A study already in the storage
(a rerun of the same command) has its epochs charged, so a rerun tops up to the budget
instead of spending it again. Trials or epochs the user asked for explicitly that the plan
replaces are told in one line (`lrsearch.study.budget.overridden`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrsearch.study.budget import (
    MIN_BUDGET_TRIALS,
    RACE_TRIALS,
    RANGE_SHARE,
    Budget,
    BudgetPlan,
    Spend,
    epochs_for_seconds,
    overridden,
    plan_budget,
    race_rungs,
)
from lrsearch.core.errors import ConfigError
from lrsearch.study.options import StudyOptions

__all__ = ["BudgetReport", "BudgetedRun", "MIN_RANGE_STEPS", "existing_study", "open_books"]

logger = logging.getLogger(__name__)

MIN_RANGE_STEPS = 20
"""Fewest steps a budget must leave the self-extending range test (`RANGE_SHARE` of it)."""


@dataclass(frozen=True)
class BudgetReport:
    """Planned against spent, as `AutoResult.budget` holds it.

    Attributes:
        budget: the `Budget` asked for.
        planned: the plan made before anything ran (`BudgetPlan`; `None` for a budget in
            seconds, which is planned once the range test has timed a batch).
        study_plan: the plan the study ran under, made once the evidence was charged.
        spent: the `Spend`: batches of evidence, trial epochs, final-fit epochs, seconds.
    """

    budget: Budget
    planned: BudgetPlan | None
    study_plan: BudgetPlan | None
    spent: Spend

    def to_dict(self) -> dict[str, Any]:
        return {"budget": {"amount": self.budget.amount, "unit": self.budget.unit},
                "planned": self.planned.to_dict() if self.planned else None,
                "study_plan": self.study_plan.to_dict() if self.study_plan else None,
                "spent": self.spent.to_dict()}


class BudgetedRun:
    """The books of one budgeted `auto` run (see the module's docstring)."""

    def __init__(self, budget: Any, *, steps_per_epoch: int, options: StudyOptions,
                 sweep_values: Mapping[str, int], final_epochs: int | None = None,
                 existing_epochs: int = 0, existing_trial_epochs: int | None = None,
                 asked: Mapping[str, int] | None = None) -> None:
        self.budget = Budget.parse(budget)
        self.asked = dict(asked or {})  # the trials / epochs the user set explicitly
        self.spe = int(steps_per_epoch)
        self.options = options
        self.sweep_values = dict(sweep_values)
        self.final_epochs = None if final_epochs is None else int(final_epochs)  # None: the planner's
        self.race = False
        self.existing = int(existing_epochs)  # trial epochs already in a resumed study
        self.fixed_epochs = existing_trial_epochs  # a resumed study keeps its trial length
        self.spent = Spend(self.spe)
        self.began = time.monotonic()
        self.epochs_budget: float | None = self.budget.amount if self.budget.unit == "epochs" else None
        self.planned: BudgetPlan | None = None
        self.study_plan: BudgetPlan | None = None
        self.design: Any = None  # a race's `lrsearch.run.racing.RaceDesign` and first rung, once designed
        self.points: list[dict[str, Any]] = []
        # no steps given: the range test extends itself inside RANGE_SHARE of an epochs budget
        self.extending = self.options.range_steps is None and self.epochs_budget is not None

    # ------------------------------------------------------------------ planning
    def _plan(self, *, range_steps: int, sweep_steps: int, sweeps: bool = True, spent: float = 0.0) -> BudgetPlan:
        assert self.epochs_budget is not None
        eta = self.options.eta if self.options.fidelity == "schedule-halving" else None
        if self.final_epochs is None:  # decided once, as for a new study (a rerun decides alike)
            first = plan_budget(self.epochs_budget, self.spe, epochs=self.options.epochs, range_steps=range_steps,
                                sweep_values=self.sweep_values, sweep_steps=sweep_steps, spent=spent,
                                final_epochs=None, halving_eta=eta, told=self._told())
            self.final_epochs, self.race = first.final_epochs, first.race
            if self.race:
                self.sweep_values = {}
                self.fixed_epochs = self.fixed_epochs or first.epochs
                for note in first.notes:
                    logger.info("budget: %s", note)
        plan = plan_budget(
            self.epochs_budget, self.spe, epochs=self.fixed_epochs or self.options.epochs, range_steps=range_steps,
            sweep_values=self.sweep_values if sweeps else None, sweep_steps=sweep_steps,
            spent=spent + self.existing, final_epochs=self.final_epochs, halving_eta=eta,
            min_trials=1 if self.fixed_epochs else MIN_BUDGET_TRIALS, told=self._told(),
        )
        plan = dataclasses.replace(plan, race=self.race)
        if self.race and self.options.backend == "optuna":  # one halving bracket in the room the final fit leaves
            rungs = race_rungs(plan.budget - plan.spent - plan.range_epochs - plan.final_epochs,
                               max_epochs=self.options.epochs)
            plan = dataclasses.replace(plan, trials=rungs[0].trials, epochs=rungs[-1].epochs, rungs=rungs)
        if self.planned is None:  # a self-extending range test: the first plan is made after it
            self.planned = plan
        return plan

    def _told(self) -> str:
        """The budget as a refusal names it: a budget in seconds with the epochs it bought."""
        if self.budget.unit == "seconds" and self.epochs_budget is not None:
            return f"{self.budget} ({self.epochs_budget:.2f} epochs at the range test's speed)"
        return f"{self.epochs_budget:g} epochs"

    @property
    def range_step_budget(self) -> int | None:
        """The most steps the self-extending range test may run: `RANGE_SHARE` of the budget."""
        if not self.extending:
            return None
        return max(2, int(RANGE_SHARE * float(self.epochs_budget or 0) * self.spe + 1e-9))

    def start(self) -> str:
        """The plan before anything runs, in a line or two (logged by the caller)."""
        steps = int(self.options.range_steps or 0)
        if self.extending:
            cap = self.range_step_budget or 0
            if cap < MIN_RANGE_STEPS:
                raise ConfigError(f"a budget of {self.budget} leaves the range test {cap} steps ({RANGE_SHARE:.0%} "
                                  f"of it) and it needs {MIN_RANGE_STEPS}: raise the budget or give its steps (--steps)")
            return (f"budget {self.budget} of {self.spe} steps: a self-extending range test first, at most "
                    f"{cap} steps ({cap / self.spe:.2f} epochs, {RANGE_SHARE:.0%} of the budget); the rest "
                    "is planned from what it leaves")
        if self.epochs_budget is None:
            return (f"budget {self.budget}: range test {steps} steps first; the rest is planned "
                    "at the speed it measures")
        self.planned = self._plan(range_steps=steps, sweep_steps=_window_estimate(self.options))
        return self.planned.describe()

    def charge_range_test(self, steps: int, seconds: float | None) -> None:
        """Charge the range test; a budget in seconds becomes epochs at its speed."""
        self.spent.range_steps = int(steps)
        if self.epochs_budget is None:
            if seconds is None or steps < 1:
                raise ConfigError("a budget in seconds needs a range test that runs here: pass the budget in "
                                  "epochs, or a new --out folder")
            self.epochs_budget = epochs_for_seconds(self.budget.amount, seconds / steps, self.spe)
            logger.info("budget %s: about %.1f epochs at %.3g s per step (range test)", self.budget,
                        self.epochs_budget, seconds / steps)

    def plan_sweeps(self, window_steps: int) -> BudgetPlan:
        """The sweeps that fit, on the range test's real window."""
        plan = self._plan(range_steps=0, sweep_steps=window_steps, spent=self.spent.evidence_epochs)
        notes = [n for n in plan.notes if "sweep" in n]
        logger.info("budget: %s", "; ".join([plan.describe_sweeps(), *notes]))
        return plan

    def charge_sweep(self, steps: int) -> None:
        self.spent.sweep_steps += int(steps)

    # ------------------------------------------------------------------ the study
    def run_study(self, call: Callable[..., Any], race_points: Callable[[int], Any] | None = None) -> Any:
        """Run the study through `call(options)` (resumable: the same study each call)
        until the budget has no room for another whole trial; returns the last result.
        A race runs one schedule-halving bracket whose first rung is `race_points(trials)`
        (`call(options, opening_points=...)`), `families` those of its points."""
        plan = self._plan(range_steps=0, sweep_steps=0, sweeps=False, spent=self.spent.evidence_epochs)
        self.study_plan = plan
        room = plan.budget - plan.spent - plan.final_epochs
        options = dataclasses.replace(self.options, trials=plan.trials, epochs=plan.epochs,
                                      timeout=self._time_left(),
                                      opening=min(RACE_TRIALS, plan.trials) if self.race else self.options.opening)
        logger.info("budget: %s, %.2f epochs left", plan.describe_study(), room)
        note = overridden(plan, self.asked)
        if note:
            logger.warning("budget %s: %s", self.budget, note)
        if self.race and race_points is not None and plan.rungs:  # (KerasTuner: trials of the top rung's length)
            points = race_points(plan.trials)
            families = tuple(dict.fromkeys(p["family"] for p in points))
            options = dataclasses.replace(options, fidelity="schedule-halving", eta=2, pruner="none",
                                          families=families)
            result = call(options, opening_points=points)
            self.spent.trial_epochs = self._trial_epochs(result) + self.existing
            return result
        result = call(options)
        used = self._trial_epochs(result)
        while options.fidelity == "truncate":
            left = room - used
            timeout = self._time_left()
            if left < plan.epochs or (timeout is not None and timeout <= 0):
                break
            result = call(dataclasses.replace(options, trials=int(left // plan.epochs), timeout=timeout))
            now = self._trial_epochs(result)
            if now <= used:  # nothing ran (a cap on the study's trials): stop
                break
            used = now
        self.spent.trial_epochs = used + self.existing
        return result

    def _trial_epochs(self, result: Any) -> int:
        return int(result.trials["epochs_run"].sum()) - self.existing

    def _time_left(self) -> float | None:
        if self.budget.unit != "seconds":
            return self.options.timeout
        left = self.budget.amount - (time.monotonic() - self.began)
        return left if self.options.timeout is None else min(left, self.options.timeout)

    def charge_probes(self, result: Any, epochs: int) -> None:
        """Charge trials run after the race (edge probes) from the final fit's `epochs`."""
        self.spent.trial_epochs = self._trial_epochs(result) + self.existing
        self.final_epochs = max(0, int(self.final_epochs or 0) - int(epochs))

    def final_epochs_in_time(self, result: Any) -> int:
        """The final fit's epochs; under a budget in seconds no more than the time left buys
        at the speed the trials ran (a trial's epoch costs more than the range test's batches:
        building, compiling, validating), said in one line when that is fewer."""
        planned = int(self.final_epochs or 0)
        left = self._time_left()
        if self.budget.unit != "seconds" or not planned or left is None:
            return planned
        ran = result.trials.dropna(subset=["duration_s"])
        epochs, seconds = float(ran["epochs_run"].sum()), float(ran["duration_s"].sum())
        if epochs <= 0 or seconds <= 0:
            return planned
        fits = max(0, min(planned, int(left / (seconds / epochs))))
        if fits < planned:
            fit = f"the final fit trains {fits} epochs, not {planned}" if fits else "no final fit"
            logger.info("budget %s: %.1f s left at %.3g s per trial epoch: %s", self.budget, max(left, 0.0),
                        seconds / epochs, fit)
        return fits

    # ------------------------------------------------------------------ the end
    def finish(self, final_epochs: int = 0) -> BudgetReport:
        """Charge the final fit and close the books; logs the spend."""
        self.spent.final_epochs = int(final_epochs or 0)
        self.spent.seconds = time.monotonic() - self.began
        logger.info("%s", self.spent.describe(self.budget))
        return BudgetReport(self.budget, self.planned, self.study_plan, self.spent)


def _window_estimate(options: StudyOptions) -> int:
    """Batches of one sweep range test before the range test has run: its density of
    steps per decade over three decades (the window `sweep_window` usually takes)."""
    steps = int(options.range_steps or 0)
    if options.mode != "exp" or steps < 2:
        return steps
    density = (steps - 1) / math.log10(options.max_lr / options.min_lr)
    return min(steps, max(30, math.ceil(density * 3) + 1))


def existing_study(options: StudyOptions, out: Path, name: str) -> tuple[int, int | None]:
    """`(trial epochs run, epochs per trial)` of the study a rerun resumes (`(0, None)` if new)."""
    if options.backend != "optuna":
        return 0, None
    from lrsearch.study.results import ATTR, load_result
    from lrsearch.study.storage import default_storage_url, study_names

    storage = options.storage or default_storage_url(out)
    if name not in study_names(storage):
        return 0, None
    result = load_result(storage, name)
    space = (result.study.user_attrs.get(ATTR) or {}).get("space") or {}
    return int(result.trials["epochs_run"].sum()), space.get("epochs")


def open_books(budget: Any, source: Any, out: Path, options: StudyOptions, *, sweep_values: Mapping[str, int],
               final_epochs: int | None, asked: Mapping[str, int] | None = None) -> BudgetedRun:
    """A `BudgetedRun` for `auto` on `source` (a `ModelSource`), with the epochs of a
    study already in the storage charged; `asked`: the trials / epochs set explicitly,
    told when the plan replaces them."""
    from lrsearch.data.reader import steps_per_epoch

    spe = options.steps_per_epoch or steps_per_epoch(source.train, options.array_batch_size)
    if not spe:
        raise ConfigError("cannot tell the batches of an epoch of this dataset: pass steps_per_epoch")
    run_epochs, epochs = existing_study(options, out, options.study_name or source.name)
    return BudgetedRun(budget, steps_per_epoch=int(spe), options=options, sweep_values=sweep_values,
                       final_epochs=final_epochs, existing_epochs=run_epochs, existing_trial_epochs=epochs,
                       asked=asked)
