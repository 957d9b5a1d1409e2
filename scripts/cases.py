"""The equal-budget suite's eight cases: a setup of `scripts.setups`, its batch and a budget.

`bench_budget_suite` runs its arms on them; `bench_race_horizon` trains one-cycle runs
on the fit half's. Some batch sizes differ from the setup's: the GRU at 16, 75 steps an
epoch, so that the range test is not a third of the budget, the attention block at 32,
and the RMSprop and Adam MLPs at 10, 300 steps an epoch.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path

import keras

from scripts import split
from scripts.setups import SETUPS, Setup, optimizer


@dataclasses.dataclass(frozen=True)
class Case:
    """One setup of the suite: a `scripts.setups` setup, its batch and a budget."""

    setup: Setup
    budget: int  # epochs every arm may spend
    trial_epochs: int  # epochs per trial of the searches (the setup's run length)

    @property
    def name(self) -> str:
        return self.setup.name

    @property
    def half(self) -> str:
        """`"fit"` (the planner's constants were chosen on it) or `"check"` (reported only),
        from `scripts.split`."""
        return split.half(self.name)


def _setup(name: str, batch: int | None = None) -> Setup:
    s = next(s for s in SETUPS if s.name == name)
    if batch is None or batch == s.batch:
        return s
    return dataclasses.replace(s, name=f"{name.split('-b')[0]}-b{batch}", batch=batch)


CASES = (
    Case(_setup("mlp-sgd"), budget=20, trial_epochs=5),
    Case(_setup("lstm-rmsprop"), budget=16, trial_epochs=4),
    Case(_setup("gru-adamw", 16), budget=20, trial_epochs=5),
    Case(_setup("mlp-rmsprop-b16", 10), budget=12, trial_epochs=3),
    Case(_setup("cnn-bn-sgd"), budget=16, trial_epochs=4),
    Case(_setup("attn-adam", 32), budget=16, trial_epochs=4),
    Case(_setup("finetune-mlp-sgd"), budget=12, trial_epochs=3),
    Case(_setup("mlp-adam-b512", 10), budget=12, trial_epochs=3),
)


class CaseData:
    """One case's data and a model builder at the optimizer's default rate."""

    def __init__(self, case: Case, cache_root: Path) -> None:
        self.case = case
        self.s = case.setup
        self.cache_root = cache_root
        xtr, ytr, xva, yva = self.s.data()
        self.train, self.val = (xtr, ytr), (xva, yva)
        self.spe = math.ceil(len(xtr) / self.s.batch)
        cls = type(optimizer(self.s.optimizer, 1.0))
        self.default_lr = float(inspect.signature(cls).parameters["learning_rate"].default)

    def build(self) -> keras.Model:
        """A fresh model compiled with the setup's optimizer at Keras' default rate."""
        m = self.s.model(self.cache_root)
        m.compile(optimizer=optimizer(self.s.optimizer, self.default_lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
        return m
