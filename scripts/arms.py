"""What the equal-budget benchmarks' arms share: the ledger of epochs spent, and the searches.

An arm's spending is an ordered `Ledger`: range tests and sweeps as fractions of an epoch,
then every epoch of every trial in the order they ran, with its validation accuracy.
`bench_search_efficiency` and `bench_budget_suite` read the best accuracy within a
budget and the epochs spent until a target from it, and cache it as JSON. Also the
pieces of their wide searches: the rate range, the study's results appended epoch by
epoch, a study resumed until the budget is spent, and KerasTuner over a constant rate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras

from lrsearch.rangetest.analysis import LRSuggestion

WIDE = (1e-5, 10.0)
"""The rate range of the searches without a range test."""


@dataclass
class Ledger:
    """What one arm spent, in order: `(epochs, val_accuracy or None, val_loss or None)` per
    entry (ledgers cached before the loss was kept have two fields: their loss reads nan)."""

    entries: list[tuple] = field(default_factory=list)
    trials: int = 0
    overhead: float = 0.0
    note: str = ""

    def charge(self, epochs: float) -> None:
        self.entries.append((epochs, None, None))
        self.overhead += epochs

    def epoch(self, val_acc: float, val_loss: float | None = None) -> None:
        """One epoch's validation accuracy and (when kept) loss; a diverged run's nan or
        inf reads as accuracy 0 and loss inf."""
        if val_loss is not None and not math.isfinite(val_loss):
            val_loss = math.inf
        self.entries.append((1.0, val_acc if math.isfinite(val_acc) else 0.0, val_loss))

    @property
    def spent(self) -> float:
        return sum(e[0] for e in self.entries)

    def _within(self, budget: float, col: int) -> list[tuple[float, float]]:
        out, cum = [], 0.0
        for e in self.entries:
            cum += e[0]
            if cum > budget + 1e-9:
                break
            if e[1] is not None:
                value = e[col] if len(e) > col else None
                out.append((cum, math.nan if value is None else value))
        return out

    def within(self, budget: float) -> list[tuple[float, float]]:
        """(cumulative epochs, val acc) of the epochs that end within `budget`."""
        return self._within(budget, 1)

    def losses_within(self, budget: float) -> list[tuple[float, float]]:
        """(cumulative epochs, val loss) of the epochs that end within `budget` (inf where
        the run diverged, nan where the loss was not kept)."""
        return self._within(budget, 2)

    def best(self, budget: float) -> float:
        return max((a for _, a in self.within(budget)), default=float("nan"))

    def best_loss(self, budget: float) -> float:
        """The lowest validation loss within `budget` (nan: none kept; inf: all diverged)."""
        values = [v for _, v in self.losses_within(budget) if not math.isnan(v)]
        return min(values, default=float("nan"))

    def to_target(self, target: float, budget: float) -> float:
        return next((c for c, a in self.within(budget) if a >= target - 1e-9), math.inf)

    def save(self, path: Path, **extra: float) -> None:
        """Written as JSON (with `extra` keys beside the ledger's), replaced in one move."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        entries = [(e, a, "inf" if loss is not None and math.isinf(loss) else loss)
                   for e, a, loss in (tuple(x) + (None,) * (3 - len(x)) for x in self.entries)]
        tmp.write_text(json.dumps({"entries": entries, "trials": self.trials,
                                   "overhead": self.overhead, "note": self.note, **extra}))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> tuple[Ledger, dict]:
        """The ledger in `path` and the whole JSON object it was read from."""
        d = json.loads(path.read_text())
        entries = [tuple(e) + (None,) * (3 - len(e)) for e in d["entries"]]
        entries = [(e, a, math.inf if loss == "inf" else loss) for e, a, loss in entries]
        return cls(entries, d["trials"], d["overhead"], d["note"]), d


def fmt_epochs(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.1f}"


def wide_suggestion() -> LRSuggestion:
    """Bounds `WIDE` handed to `tune` in place of a range test's."""
    return LRSuggestion(base_lr=WIDE[0], max_lr=WIDE[1], steepest_lr=1e-2, valley_lr=1e-2,
                        min_loss_lr=1.0)


def from_tune(result, ledger: Ledger) -> None:
    """Append a study's trials, in the order they ran, epoch by epoch."""
    history = result.history
    for _, row in result.trials.sort_values("number").iterrows():
        ledger.trials += 1
        rows = history[history["trial"] == row["number"]].sort_values("epoch")
        accs = [float(a) for a in rows.get("val_accuracy", [])]
        losses = [float(v) for v in rows.get("val_loss", [])]
        run = int(row["epochs_run"])
        for i in range(run):
            ledger.epoch(accs[i] if i < len(accs) else 0.0, losses[i] if i < len(losses) else None)


def top_up(call, budget: float, spent: float, epochs: int):
    """Call `call(trials=n)` (a resumable study) until the trials have spent `budget`."""
    result, used = None, 0.0
    while spent + used < budget:
        n = max(1, math.ceil((budget - spent - used) / epochs))
        result = call(trials=n)
        used = float(result.trials["epochs_run"].sum())
    return result


def without_tensorboard(tuner_class: type) -> type:
    """A KerasTuner tuner class that does not import tensorboard for every trial (it does
    on TensorFlow even without a TensorBoard callback; none here, none installed)."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        pass

    return type(tuner_class.__name__, (tuner_class,),
                {"_configure_tensorboard_dir": _configure_tensorboard_dir})


def constant_rate_hypermodel(build: Callable[[], keras.Model], seed: int, **compile_kwargs):
    """A KerasTuner hypermodel: `build()`'s model with its optimizer at a constant rate,
    log-uniform in `WIDE`; each trial seeded `seed * 1000 + its number`."""
    counter = iter(range(10**6))

    def hypermodel(hp):
        keras.utils.set_random_seed(seed * 1000 + next(counter))
        model = build()
        lr = hp.Float("learning_rate", WIDE[0], WIDE[1], sampling="log")
        config = {**model.optimizer.get_config(), "learning_rate": lr}
        model.compile(optimizer=type(model.optimizer).from_config(config), loss=model.loss,
                      metrics=["accuracy"], **compile_kwargs)
        return model

    return hypermodel
