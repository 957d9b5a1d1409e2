"""The instrument's statistics (scripts/stats.py, scripts/instrument_report.py) on values
worked out by hand: paired differences, their bootstrap interval, the verdicts, the
oracle's grid, and the tables' reading of diverged runs.
"""

from __future__ import annotations

import math

import pytest

from scripts import instrument_report as rep
from scripts import stats


def test_two_seeds_percentile_interval_is_every_resampled_mean():
    # differences 0 and 2: a resample's mean is 0, 1 or 2 (1/4, 1/2, 1/4), so the 2.5th and
    # 97.5th percentiles are 0 and 2 exactly; 0 is inside: a tie
    p = stats.paired([1.0, 3.0], [1.0, 1.0], method="percentile")
    assert (p.diff, p.low, p.high, p.n) == (1.0, 0.0, 2.0, 2)
    assert p.verdict == "tie"


def test_identical_differences_give_a_point_interval_and_a_verdict():
    assert stats.paired([0.81] * 5, [0.80] * 5).verdict == "win"
    p = stats.paired([0.5] * 3, [0.52] * 3)
    assert p.low == p.high == pytest.approx(-0.02) and p.verdict == "loss"


def test_losses_are_compared_lower_is_better():
    p = stats.paired([0.5, 0.5, 0.5], [0.6, 0.6, 0.6], higher_is_better=False)
    assert p.diff == pytest.approx(0.1) and p.verdict == "win"


def test_a_consistent_gain_is_a_win_inside_the_range_of_the_differences():
    p = stats.paired([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert p.diff == 3.0 and 1.0 <= p.low < 3.0 < p.high <= 5.0
    assert p.verdict == "win"
    assert stats.paired([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]) == p  # fixed generator: the same interval


def test_differences_that_cancel_are_a_tie():
    p = stats.paired([1, -1, 1, -1, 1, -1], [0] * 6)
    assert p.diff == 0.0 and p.low < 0 < p.high and p.verdict == "tie"


def test_one_seed_has_no_interval():
    p = stats.paired([0.9], [0.8])
    assert p.diff == pytest.approx(0.1) and math.isnan(p.low) and p.verdict == "n/a"
    with pytest.raises(ValueError, match="one length"):
        stats.paired([1, 2], [1])


def test_tally_counts_each_verdict():
    assert stats.tally(["win", "tie", "win", "loss", "n/a"]) == {"win": 2, "tie": 1, "loss": 1, "n/a": 1}


def test_the_oracle_grid_is_quarter_decades_extended_until_the_best_is_interior():
    assert stats.quarter_decade(-8) == pytest.approx(0.01) and stats.quarter_decade(4) == pytest.approx(10.0)
    assert stats.quarter_decade(-9) == pytest.approx(10 ** -2.25)
    # accuracy rising to the top end: one step further up; to the bottom: one further down
    assert stats.extend_grid({-2: 0.5, -1: 0.7, 0: 0.8}, higher_is_better=True, lo=-24, hi=4) == 1
    assert stats.extend_grid({-2: 0.5, -1: 0.7, 0: 0.8}, higher_is_better=False, lo=-24, hi=4) == -3
    assert stats.extend_grid({-2: 0.5, -1: 0.7, 0: 0.6}, higher_is_better=True, lo=-24, hi=4) is None
    assert stats.extend_grid({3: 0.5, 4: 0.9}, higher_is_better=True, lo=-24, hi=4) is None  # grid's end
    # a diverged point (nan) is the worst
    assert stats.extend_grid({-2: 0.5, -1: 0.3, 0: float("nan")}, higher_is_better=False, lo=-24, hi=4) is None
    assert stats.extend_grid({-2: 0.5, -1: 0.6, 0: float("nan")}, higher_is_better=True, lo=-24, hi=4) is None


def test_the_table_pairs_seeds_and_charges_a_diverged_loss_the_worst_seen():
    scores = {"auto": {0: (0.8, 0.3), 1: (0.9, 0.4)},
              "default": {0: (0.5, math.inf), 1: (0.8, 0.5)},
              "prodigy": {0: (0.7, 0.45)}}  # one seed only: paired on seed 0
    # worst finite loss 0.5 < log(2) = 0.693: the diverged run is charged log 2
    assert rep.clip_losses(scores, 2) == pytest.approx(math.log(2))
    rows = {r["arm"]: r for r in rep.compare(scores, "loss", 2, ["auto", "default", "prodigy"])}
    assert rows["auto"]["loss"] == pytest.approx(0.35) and rows["auto"]["verdict"] == ""
    assert rows["default"]["loss"] == pytest.approx((math.log(2) + 0.5) / 2)
    assert rows["default"]["diff"] == pytest.approx(((math.log(2) - 0.3) + (0.5 - 0.4)) / 2)
    assert rows["prodigy"]["diff"] == pytest.approx(0.15) and rows["prodigy"]["verdict"] == "n/a"
    acc = {r["arm"]: r for r in rep.compare(scores, "acc", 2, ["auto", "default"])}
    assert acc["default"]["diff"] == pytest.approx(0.2) and acc["default"]["acc"] == pytest.approx(0.65)
    assert rep.spread(list(acc.values()), "acc") == pytest.approx((0.85 - 0.65) / 0.85)


def test_a_table_calls_a_verdict_only_from_five_paired_seeds():
    five = {"auto": {s: (0.8, 0.5) for s in range(5)}, "default": {s: (0.7, 0.6) for s in range(5)}}
    four = {arm: dict(list(per.items())[:4]) for arm, per in five.items()}
    assert rep.compare(five, "acc", 2, ["auto", "default"])[1]["verdict"] == "win"
    row = rep.compare(four, "acc", 2, ["auto", "default"])[1]
    assert row["verdict"] == "n/a" and row["low"] == row["high"] == pytest.approx(0.1)


def test_the_summary_counts_autos_wins_ties_and_losses():
    cells = {("a", 8): [{"arm": "auto", "seeds": 5, "verdict": ""}, {"arm": "default", "verdict": "win"},
                        {"arm": "fastai", "verdict": "loss"}],
             ("b", 8): [{"arm": "auto", "seeds": 5, "verdict": ""}, {"arm": "default", "verdict": "tie"},
                        {"arm": "fastai", "verdict": "loss"}]}
    lines = rep.summary_table(cells, ["auto", "default", "fastai"], {"a": "acc", "b": "loss"})
    assert lines[2] == "| a | 8 | acc | 5 | win | loss |"
    assert lines[-2] == "| **auto: wins / ties / losses** | | | | 1 / 1 / 0 | 0 / 0 / 2 |"
    assert lines[-1].startswith("\nIn all: auto wins 1, ties 1, loses 2")
