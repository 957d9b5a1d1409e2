"""The equal-budget ledger (scripts/arms.py): epochs charged in order, with the validation
accuracy and loss of each epoch, read within a budget and kept on disk."""

from __future__ import annotations

import json
import math

from scripts.arms import Ledger


def _ledger() -> Ledger:
    led = Ledger()
    led.charge(0.5)  # a range test of half an epoch
    led.epoch(0.6, 0.9)
    led.epoch(0.7, 0.8)
    led.epoch(float("nan"), float("nan"))  # diverged: accuracy 0, loss inf
    return led


def test_best_accuracy_and_loss_are_read_within_the_budget():
    led = _ledger()
    assert led.spent == 3.5 and led.overhead == 0.5
    assert led.within(2.5) == [(1.5, 0.6), (2.5, 0.7)]
    assert led.best(1.5) == 0.6 and led.best_loss(1.5) == 0.9
    assert led.best(3.5) == 0.7 and led.best_loss(3.5) == 0.8
    assert led.losses_within(3.5)[-1] == (3.5, math.inf)
    assert math.isnan(led.best_loss(1.0))  # nothing within a budget smaller than the range test


def test_a_ledger_round_trips_through_json_with_its_diverged_epoch(tmp_path):
    led = _ledger()
    led.save(tmp_path / "l.json", seconds=12.0)
    back, d = Ledger.load(tmp_path / "l.json")
    assert back.entries == led.entries and d["seconds"] == 12.0
    assert "Infinity" not in (tmp_path / "l.json").read_text()  # plain JSON


def test_a_ledger_cached_before_losses_were_kept_reads_nan_loss(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps(
        {"entries": [[0.5, None], [1.0, 0.6]], "trials": 0, "overhead": 0.5, "note": "", "seconds": 1.0}))
    led, _ = Ledger.load(tmp_path / "old.json")
    assert led.best(1.5) == 0.6 and math.isnan(led.best_loss(1.5))
