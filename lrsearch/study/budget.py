"""Budgets: what `auto` may spend, planned before it starts and charged as it goes.

Everything `auto` does is charged in epochs of the training data: a range test (or one
value of a sweep) of N batches costs `N / steps_per_epoch` epochs, a trial the epochs it
ran, the final fit its epochs. `plan_budget` splits a budget between them:

1. the final fit (`final_epochs`, when asked for) and the range test come first;
2. the sweeps may take at most `SWEEP_SHARE` of the budget: past it their range tests are
   shortened (down to `MIN_SWEEP_STEPS` batches each), then the weight-decay sweep is
   dropped, then the momentum sweep (on digits, 45 batches an epoch, the full sweeps cost
   9 of 48 epochs and delayed the target accuracy; BENCHMARKS.md, search efficiency);
3. the study gets the rest: whole trials of `epochs` epochs, or one bracket of
   schedule-halving rungs (`halving_rungs`). When fewer than `MIN_BUDGET_TRIALS` trials
   fit, the trials are shortened until they do.

A short budget with the final fit left to the planner (`final_epochs=None`, trials not
halved) is spent another way: when fewer than `MIN_BUDGET_TRIALS` trials of `epochs` fit
after the evidence, the sweeps are skipped, `FINAL_SHARE` of what is left goes to one final fit
of the winner and the rest to a race: one bracket of successive halving over short complete
schedules (`lrsearch.study.race`) that picks its schedule.
Trials cut short to fit four lost at an equal budget to one long run (BENCHMARKS.md 3c:
four 2-4 epoch trials from scratch against 11-18 epochs of fastai's one-cycle).

A budget in seconds is planned the same way once the range test has measured the time
of a batch (`epochs_for_seconds`).

Pure arithmetic: this module imports neither Keras nor Optuna.

Example:

    plan = plan_budget(48, 45, epochs=6, range_steps=160,
                       sweep_values={"momentum": 3, "weight_decay": 3}, sweep_steps=68)
    plan.range_epochs            # 3.56: 160 batches of 45 an epoch
    plan.describe()
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lrsearch.core.errors import ConfigError
from lrsearch.study.rungs import Rung, halving_cost, halving_rungs, race_rungs

__all__ = [
    "Budget",
    "BudgetPlan",
    "FINAL_SHARE",
    "MIN_SWEEP_STEPS",
    "MIN_BUDGET_TRIALS",
    "RACE_TRIALS",
    "RANGE_SHARE",
    "Rung",
    "SWEEP_SHARE",
    "Spend",
    "epochs_for_seconds",
    "halving_cost",
    "halving_rungs",
    "overridden",
    "plan_budget",
    "race_rungs",
]

SWEEP_SHARE = 0.1
"""The largest share of a budget the momentum and weight-decay sweeps may take."""
MIN_SWEEP_STEPS = 30
"""Fewest batches of one sweep range test (as `lrsearch.run.stages.sweep_window`)."""
MIN_BUDGET_TRIALS = 4
"""Fewest trials (or first-rung trials) a budgeted study runs; trials shorten to fit them."""

RACE_TRIALS = 3
"""Designed first trials of a budgeted study (`SearchSpace.opening_params`; a race: its own)."""
RANGE_SHARE = 0.25
"""The largest share of a budget in epochs the self-extending range test may take."""
FINAL_SHARE = 0.75
"""Share of a short budget, after the range test, that its final fit takes."""

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|seconds|e|epochs)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """An amount of epochs or of wall-clock seconds.

    `Budget.parse("48")` is 48 epochs, `Budget.parse("600s")` 600 seconds.
    """

    amount: float
    unit: str = "epochs"

    def __post_init__(self) -> None:
        if self.unit not in ("epochs", "seconds"):
            raise ConfigError(f"unknown budget unit {self.unit!r}: use 'epochs' or 'seconds'")
        if isinstance(self.amount, bool) or not (isinstance(self.amount, (int, float))
                                                 and math.isfinite(self.amount) and self.amount > 0):
            raise ConfigError(f"a budget must be a number > 0 of epochs or seconds; got {self.amount!r}")

    @classmethod
    def parse(cls, value: Any) -> Budget:
        """A `Budget` from a number (epochs), `"48"` (epochs) or `"600s"` (seconds).

        Raises:
            ConfigError: anything else, e.g. `"ten"` or `"-3"`.
        """
        if isinstance(value, Budget):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(float(value))
        match = _BUDGET.match(str(value))
        if not match:
            raise ConfigError(f"cannot read budget {value!r}: give epochs (e.g. 48) or seconds (e.g. 600s)")
        unit = "seconds" if (match.group(2) or "e").lower().startswith("s") else "epochs"
        return cls(float(match.group(1)), unit)

    def __str__(self) -> str:
        return f"{self.amount:g} epochs" if self.unit == "epochs" else f"{self.amount:g} s"


def epochs_for_seconds(seconds: float, seconds_per_step: float, steps_per_epoch: int) -> float:
    """The epochs `seconds` buy at `seconds_per_step` (as a range test measured it)."""
    if not seconds_per_step > 0:
        raise ConfigError(f"seconds per step must be > 0; got {seconds_per_step}")
    return float(seconds) / (float(seconds_per_step) * int(steps_per_epoch))


@dataclass(frozen=True)
class BudgetPlan:
    """How a budget (in epochs) is split; every figure is charged in epochs.

    Attributes:
        budget: the whole budget, epochs.
        steps_per_epoch: batches per epoch of the training data.
        spent: epochs already spent when planned (evidence and trials of an earlier run
            of the same study, or the range test when the plan is redone after it).
        range_steps: batches of the range test still to run (0 when done).
        sweeps: `(param, values)` of each sweep to run, in order.
        sweep_steps: batches of each sweep's range test.
        trials: trials of the study (the first rung's, for schedule halving).
        epochs: epochs per trial (of the top rung, for schedule halving).
        rungs: the schedule-halving bracket, or `()` for trials of `epochs` each.
        final_epochs: epochs of the final fit of the chosen schedule (0: none).
        race: the study is the race of a short budget (a few short trials whose winner
            the final fit trains; see the module's docstring).
        notes: what the planner changed from what was asked, in words.
    """

    budget: float
    steps_per_epoch: int
    spent: float
    range_steps: int
    sweeps: tuple[tuple[str, int], ...]
    sweep_steps: int
    trials: int
    epochs: int
    rungs: tuple[Rung, ...] = ()
    final_epochs: int = 0
    race: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def range_epochs(self) -> float:
        return self.range_steps / self.steps_per_epoch

    @property
    def sweep_epochs(self) -> float:
        return sum(n for _, n in self.sweeps) * self.sweep_steps / self.steps_per_epoch

    @property
    def study_epochs(self) -> int:
        return halving_cost(self.rungs) if self.rungs else self.trials * self.epochs

    @property
    def total(self) -> float:
        """Epochs spent once the plan has run (at most `budget`)."""
        return self.spent + self.range_epochs + self.sweep_epochs + self.study_epochs + self.final_epochs

    def describe(self) -> str:
        """The plan in one line (two with the planner's notes)."""
        parts = []
        if self.spent:
            parts.append(f"{self.spent:.2f} spent before")
        if self.range_steps:
            parts.append(f"range test {self.range_steps} steps ({self.range_epochs:.2f})")
        if self.sweeps:
            parts.append(self.describe_sweeps())
        parts.append(self.describe_study())
        if self.final_epochs:
            parts.append(f"final fit {self.final_epochs}")
        line = (f"budget {self.budget:g} epochs of {self.steps_per_epoch} steps: " + ", ".join(parts)
                + f"; {self.total:.2f} planned")
        return line + ("\n  " + "; ".join(self.notes) if self.notes else "")

    def describe_sweeps(self) -> str:
        """The sweeps part of the plan, e.g. `sweeps momentum x3 of 36 steps (2.40)`."""
        if not self.sweeps:
            return "no sweeps"
        tests = " + ".join(f"{p.replace('_', '-')} x{n}" for p, n in self.sweeps)
        return f"sweeps {tests} of {self.sweep_steps} steps ({self.sweep_epochs:.2f})"

    def describe_study(self) -> str:
        """The study part of the plan, e.g. `6 trials x 6 epochs (36)`."""
        if self.race and len(self.rungs) > 1:
            return f"a race of {', '.join(f'{r.trials} x {r.epochs}' for r in self.rungs)} epochs ({self.study_epochs})"
        if self.race:
            return f"a race of {self.trials} trials x {self.epochs} epochs ({self.study_epochs})"
        if self.rungs:
            bracket = ", ".join(f"{r.trials} x {r.epochs}" for r in self.rungs)
            return f"schedule halving {bracket} epochs ({self.study_epochs})"
        return f"{self.trials} trials x {self.epochs} epochs ({self.study_epochs})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget, "steps_per_epoch": self.steps_per_epoch, "spent": self.spent,
            "range_steps": self.range_steps, "sweeps": [list(s) for s in self.sweeps],
            "sweep_steps": self.sweep_steps, "trials": self.trials, "epochs": self.epochs,
            "rungs": [[r.trials, r.epochs] for r in self.rungs], "final_epochs": self.final_epochs,
            "race": self.race, "planned": self.total, "notes": list(self.notes),
        }


def plan_budget(
    budget: float,
    steps_per_epoch: int,
    *,
    epochs: int,
    range_steps: int = 0,
    sweep_values: Mapping[str, int] | None = None,
    sweep_steps: int = 0,
    spent: float = 0.0,
    final_epochs: int | None = 0,
    halving_eta: int | None = None,
    sweep_share: float = SWEEP_SHARE,
    min_trials: int = MIN_BUDGET_TRIALS,
    told: str | None = None,
) -> BudgetPlan:
    """Split `budget` epochs between the range test, the sweeps, the study and a final fit.

    Args:
        budget: epochs in all (including `spent`).
        steps_per_epoch: batches per epoch of the training data.
        epochs: the epochs per trial asked for (shortened only when fewer than
            `min_trials` trials would fit).
        range_steps: batches of the range test still to run.
        sweep_values: `{param: number of values}` of the sweeps wanted, in priority order.
        sweep_steps: batches of one sweep range test as its window asks (an estimate
            before the range test has run).
        spent: epochs already spent.
        final_epochs: epochs of a final fit of the chosen schedule; `None` lets the
            planner decide: none when `min_trials` trials of `epochs` fit, else the race
            and final fit of a short budget (see the module's docstring).
        halving_eta: plan one schedule-halving bracket with this factor; `None` plans
            trials of `epochs` each.
        told: the budget as a refusal names it (default "N epochs"; a budget in seconds:
            its seconds and the epochs they were converted to).

    Raises:
        ConfigError: the budget does not cover what must run: what is spent, the final
            fit, the range test and one epoch of one trial.
    """
    spe = int(steps_per_epoch)
    if spe < 1:
        raise ConfigError(f"steps per epoch must be >= 1; got {steps_per_epoch}")
    notes: list[str] = []
    if final_epochs is None:
        plan = plan_budget(budget, spe, epochs=epochs, range_steps=range_steps, sweep_values=sweep_values,
                           sweep_steps=sweep_steps, spent=spent, final_epochs=0, halving_eta=halving_eta,
                           sweep_share=sweep_share, min_trials=min_trials, told=told)
        short = not plan.rungs and plan.trials * plan.epochs < min_trials * int(epochs)
        return _race(plan, int(epochs), min_trials) if short else plan
    fixed = spent + final_epochs + range_steps / spe
    if budget < fixed + 1:
        parts = [f"{spent:.2f} epochs spent"] if spent else []
        parts += [f"the final fit ({final_epochs})"] if final_epochs else []
        parts += [f"the range test ({range_steps / spe:.2f})"] if range_steps else []  # only what is still to run
        raise ConfigError(
            f"a budget of {told or f'{budget:g} epochs'} does not cover {', '.join(parts)}"
            + (" and " if parts else "") + "one epoch of training: raise the budget"
            + (" or lower --final-epochs" if final_epochs else "")
        )
    sweeps, steps = _plan_sweeps(budget * sweep_share, spe, dict(sweep_values or {}), int(sweep_steps), notes)
    left = budget - fixed - sum(n for _, n in sweeps) * steps / spe
    trials, per_trial, rungs = _plan_study(left, int(epochs), halving_eta, min_trials, notes)
    return BudgetPlan(budget=float(budget), steps_per_epoch=spe, spent=float(spent), range_steps=int(range_steps),
                      sweeps=sweeps, sweep_steps=steps if sweeps else 0, trials=trials, epochs=per_trial,
                      rungs=rungs, final_epochs=int(final_epochs), notes=tuple(notes))


def overridden(plan: BudgetPlan, asked: Mapping[str, int]) -> str | None:
    """What `plan` runs in place of the `trials` / `epochs` the user asked for explicitly
    (`asked`), in words, or `None` when it runs them as asked: a budget plans both, so an
    asked number it replaces is told rather than dropped.

    Example: `overridden(plan, {"trials": 2, "epochs": 10})` of a plan of 4 trials of 6
    epochs is "4 trials x 6 epochs (24) instead of the trials=2, epochs=10 asked".
    """
    told = [(name, int(asked[name])) for name in ("trials", "epochs") if asked.get(name) is not None]
    if all(value == getattr(plan, name) for name, value in told):
        return None
    return f"{plan.describe_study()} instead of the " + ", ".join(f"{n}={v}" for n, v in told) + " asked"


def _race(plan: BudgetPlan, epochs: int, min_trials: int) -> BudgetPlan:
    """`plan` (whose trials were shortened to fit) as a short budget's race and final fit:
    one successive-halving bracket (`race_rungs`) of complete schedules no longer than `epochs`."""
    left = plan.budget - plan.spent - plan.range_epochs  # the sweeps are skipped
    final = int(left * FINAL_SHARE + 1e-9)
    if left - final < 1:
        final = max(0, math.floor(left + 1e-9) - 1)
    rungs = race_rungs(left - final, max_epochs=epochs)
    notes = [f"a short budget: fewer than {min_trials} trials of {epochs} epochs fit, so a race of "
             f"{', '.join(f'{r.trials} x {r.epochs}' for r in rungs)} epochs picks the schedule and the "
             f"winner trains {final} epochs"
             + (" (sweeps skipped)" if plan.sweeps or any("sweep" in n for n in plan.notes) else "")]
    return replace(plan, sweeps=(), sweep_steps=0, trials=rungs[0].trials, epochs=rungs[-1].epochs,
                   rungs=rungs, final_epochs=final, race=True, notes=tuple(notes))


def _plan_sweeps(cap: float, spe: int, wanted: dict[str, int], steps: int,
                 notes: list[str]) -> tuple[tuple[tuple[str, int], ...], int]:
    """The sweeps that fit in `cap` epochs: all at `steps`, else shorter tests, else fewer sweeps."""
    wanted = {p: n for p, n in wanted.items() if n > 0}
    if not wanted or steps < 1:
        return (), 0
    names = list(wanted)
    while names:
        tests = sum(wanted[p] for p in names)
        fit = min(steps, int(cap * spe // tests))
        if fit >= min(steps, MIN_SWEEP_STEPS):
            if fit < steps:
                notes.append(f"sweep range tests shortened from {steps} to {fit} steps "
                             f"(sweeps capped at {cap:.2f} epochs)")
            dropped = [p for p in wanted if p not in names]
            if dropped:
                notes.append(f"{' and '.join(p.replace('_', '-') for p in dropped)} sweep skipped: "
                             f"over {cap:.2f} epochs")
            return tuple((p, wanted[p]) for p in names), fit
        names.pop()
    notes.append(f"sweeps skipped: {sum(wanted.values())} range tests of {steps} steps exceed {cap:.2f} epochs")
    return (), 0


def _plan_study(left: float, epochs: int, eta: int | None, min_trials: int,
                notes: list[str]) -> tuple[int, int, tuple[Rung, ...]]:
    """The most trials (or the largest bracket) of `epochs` that fit in `left` epochs,
    shortening the trials while fewer than `min_trials` fit."""
    for length in range(epochs, 0, -1):
        if eta is None:
            n = int(left // length + 1e-9)
            rungs: tuple[Rung, ...] = ()
        else:
            n, rungs = _largest_bracket(left, length, eta)
        if n >= min_trials or length == 1:
            if length < epochs:
                notes.append(f"trials shortened from {epochs} to {length} epochs to fit {n} trials")
            return max(n, 1), length, rungs
    raise AssertionError("unreachable")  # pragma: no cover


def _largest_bracket(left: float, epochs: int, eta: int) -> tuple[int, tuple[Rung, ...]]:
    best: tuple[int, tuple[Rung, ...]] = (0, ())
    n = 1
    while True:
        rungs = halving_rungs(n, epochs, eta)
        if halving_cost(rungs) > left + 1e-9:
            return best
        best = (n, rungs)
        n += 1


@dataclass
class Spend:
    """What a budgeted run spent, in epochs (and seconds of wall clock)."""

    steps_per_epoch: int
    range_steps: int = 0
    sweep_steps: int = 0
    trial_epochs: int = 0
    final_epochs: int = 0
    seconds: float = 0.0

    @property
    def evidence_epochs(self) -> float:
        return (self.range_steps + self.sweep_steps) / self.steps_per_epoch

    @property
    def total(self) -> float:
        return self.evidence_epochs + self.trial_epochs + self.final_epochs

    def describe(self, budget: Budget | float | None = None) -> str:
        """The spend in one line, against `budget` in the unit it was given: "...; 21 s of
        a 20 s budget", or "...; 40 s (a budget of 48 epochs)" (a number is epochs)."""
        line = (f"spent {self.total:.2f} epochs: range test {self.range_steps} steps, sweeps {self.sweep_steps} "
                f"steps ({self.evidence_epochs:.2f} epochs of evidence), trials {self.trial_epochs}")
        if self.final_epochs:
            line += f", final fit {self.final_epochs}"
        line += f"; {self.seconds:.0f} s"
        if budget is None:
            return line
        if not isinstance(budget, Budget):
            budget = Budget(float(budget))
        if budget.unit != "seconds":
            return line + f" (a budget of {budget})"
        over = round(self.seconds) - round(budget.amount)  # as the line rounds them: they agree
        told = over > max(1.0, 0.1 * budget.amount)  # more than a planner's error: said, with why
        return line + f" of a {budget} budget" + (f", over by {over} s (a study runs one trial at least)"
                                                 if told else "")

    def to_dict(self) -> dict[str, Any]:
        return {"steps_per_epoch": self.steps_per_epoch, "range_steps": self.range_steps,
                "sweep_steps": self.sweep_steps, "trial_epochs": self.trial_epochs,
                "final_epochs": self.final_epochs, "evidence_epochs": self.evidence_epochs,
                "total": self.total, "seconds": self.seconds}
