"""A short budget's race: its bracket on both sides of the suggestion, its rungs, a wide
bracket for a curve that was not read, the Schedule-Free twin it may export, and
`keep_optimizer`."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

import pytest

from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.study.budget import Rung, halving_rungs, race_rungs
from lrsearch.study.race import (
    Bracket,
    at_edge,
    designed_opening,
    optimizer_margin,
    race_bracket,
    race_points,
)
from lrsearch.study.space import SearchSpace
from tests.support import CLI_MODEL

SQRT10 = 10**0.5


def _suggestion(base=1e-3, top=1e-2, minimum=5e-2, problems=()):
    return LRSuggestion(base_lr=base, max_lr=top, steepest_lr=top / 2, valley_lr=top / 3, min_loss_lr=minimum,
                        problems=problems, warnings=tuple(f"curve {p}" for p in problems))


def test_race_rungs_and_survivors_for_a_budget():
    # 9 epochs: 5 one-epoch one-cycles, the best 2 again over 2 epochs (5 + 4 = 9)
    assert race_rungs(9) == (Rung(5, 1), Rung(2, 2))
    # 18: the longest top rung that still opens with 5: 5 x 2 and 2 x 4 (10 + 8)
    assert race_rungs(18) == (Rung(5, 2), Rung(2, 4))
    # top rung capped at 2 epochs: 9 x 1 then 4 x 2 (9 + 8 = 17 of 18)
    assert race_rungs(18, max_epochs=2) == (Rung(9, 1), Rung(4, 2)) == halving_rungs(9, 2)
    # too short to open with five and halve: one rung of as many one-epoch trials as fit
    assert race_rungs(4) == (Rung(4, 1),) and race_rungs(7.44, max_epochs=10) == (Rung(7, 1),)


def test_a_read_curve_races_peaks_on_both_sides_of_max_lr():
    s = _suggestion()
    bracket = race_bracket(s, end_lr=0.5)
    # a decade below max_lr (not under base_lr) up to the loss minimum; the twin at minimum / 1.5
    assert (bracket.low, bracket.high, bracket.anchor) == pytest.approx((1e-3, 5e-2, 1e-2))
    assert bracket.sf_rate == pytest.approx(5e-2 / 1.5) and bracket.flags == ()
    points = race_points(bracket, 5)
    peaks = [p["oc_max_lr"] for p in points if p["family"] == "one_cycle"]
    assert peaks == pytest.approx([1e-3, 1e-2, 5e-2])  # below, at and above max_lr
    assert min(peaks) < s.max_lr < max(peaks) and max(peaks) == s.min_loss_lr
    assert {"family": "schedule_free", "sf_lr": pytest.approx(5e-2 / 1.5)} in points
    assert {"family": "wsd", "wsd_max_lr": 1e-2} in points
    # more room: seven peaks geometric from 1e-3 to 5e-2, the one nearest max_lr moved onto it
    peaks = [p["oc_max_lr"] for p in race_points(bracket, 7, twin=False, wsd=False)]
    grid = [1e-3 * 50 ** (i / 6) for i in range(7)]  # grid[4], 0.0136, is the nearest to 0.01
    assert peaks == pytest.approx([*grid[:4], 1e-2, *grid[5:]])
    # a minimum at max_lr still opens half a decade above it
    near = race_bracket(_suggestion(minimum=1e-2))
    assert near.high == pytest.approx(1e-2 * SQRT10)
    assert [p["oc_max_lr"] for p in race_points(near, 3)] == pytest.approx([1e-3, 1e-2, 1e-2 * SQRT10])
    # a race of two: max_lr itself and the top, not a decade below and the top
    assert [p["oc_max_lr"] for p in race_points(bracket, 2)] == pytest.approx([1e-2, 5e-2])


def test_a_flagged_curve_races_a_wide_bracket():
    s = _suggestion(base=1e-4, top=2.45e-3, minimum=3e-3, problems=("flat", "noisy"))
    # from a decade below max_lr (base_lr lower still) up to where the test diverged (0.3),
    # at most two decades above max_lr
    bracket = race_bracket(s, end_lr=0.3)
    assert (bracket.low, bracket.high) == pytest.approx((2.45e-4, 0.245)) and bracket.flags == ("flat", "noisy")
    assert bracket.sf_rate == pytest.approx(math.sqrt(2.45e-3 * 0.245))
    # the middles of five equal parts of those three decades: max_lr is no evidence, nor the ends
    peaks = [p["oc_max_lr"] for p in race_points(bracket, 5, twin=False, wsd=False)]
    assert peaks == pytest.approx([2.45e-4 * 1000 ** ((i + 0.5) / 5) for i in range(5)])
    # a race of two: a half and two and a half decades above the bracket's foot, no peak at either end
    assert [p["oc_max_lr"] for p in race_points(bracket, 2)] == pytest.approx([2.45e-4 * 10**0.75, 2.45e-4 * 10**2.25])
    # a test that stopped low still reaches a decade above max_lr; a base_lr above max_lr / 10 is the foot
    assert race_bracket(s, end_lr=4e-3).high == pytest.approx(2.45e-2)
    assert race_bracket(_suggestion(base=1e-3, top=2.45e-3, problems=("noisy",)), end_lr=0.3).low == 1e-3
    assert bracket.describe() == "0.000245 to 0.245 (below max_lr to where the test ended)"


def test_edges_and_the_margin_between_optimizers():
    assert at_edge(0.05, [1e-3, 1e-2, 0.05]) == "top" and at_edge(1e-3, [1e-3, 1e-2, 0.05]) == "bottom"
    assert at_edge(1e-2, [1e-3, 1e-2, 0.05]) is None and at_edge(1e-2, [1e-2]) is None
    rows = [
        {"family": "one_cycle", "value": 0.80, "state": "COMPLETE", "rung": 0},
        {"family": "schedule_free", "value": 0.85, "state": "COMPLETE", "rung": 0},
        {"family": "one_cycle", "value": 0.90, "state": "COMPLETE", "rung": 1},
        {"family": "schedule_free", "value": 0.912, "state": "COMPLETE", "rung": 1},
        {"family": "schedule_free", "value": 0.99, "state": "FAIL", "rung": 1},
    ]
    margin, rung = optimizer_margin(rows, "maximize")
    assert rung == 1 and margin == pytest.approx(0.012)
    margin, rung = optimizer_margin([{**r, "value": -r["value"]} for r in rows], "minimize")
    assert rung == 1 and margin == pytest.approx(0.012)
    assert optimizer_margin(rows[:1], "maximize") is None


def test_designed_points_are_completed_and_held_by_the_space():
    s = _suggestion()
    space = SearchSpace.from_suggestion(s, steps_per_epoch=10, epochs=2, families=("one_cycle", "wsd", "schedule_free"))
    bracket = Bracket(low=1e-3, high=0.2, anchor=1e-2, sf_rate=0.03)
    wide, points = designed_opening(space, race_points(bracket, 5))
    # the top peak, 0.2, lies past the suggestion's peak range (the minimum, 0.05): the range reaches it
    assert space.peak_max_lr == pytest.approx(5e-2) and wide.peak_max_lr == pytest.approx(0.2)
    assert [p["family"] for p in points] == ["one_cycle", "one_cycle", "one_cycle", "schedule_free", "wsd"]
    assert points[0] == {**space.suggested_params(), "oc_max_lr": 1e-3}
    assert points[3]["sf_lr"] == 0.03 and points[3]["sf_beta"] == 0.9
    # a Schedule-Free user's space: the one-cycle peaks become its rates, the rest dropped
    sf_space = SearchSpace.from_suggestion(s, steps_per_epoch=10, epochs=2, families=("schedule_free",))
    _, sf_points = designed_opening(sf_space, race_points(bracket, 5))
    assert [p["sf_lr"] for p in sf_points] == pytest.approx([1e-3, 1e-2, 0.2, 0.03])


def test_the_books_run_the_race_as_one_bracket_with_its_designed_rung():
    import pandas as pd

    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    asked = []

    def call(options, opening_points=None):
        asked.append((options.fidelity, options.families, options.trials, options.epochs, opening_points))
        return SimpleNamespace(trials=pd.DataFrame({"epochs_run": [1] * 5 + [2] * 2}))

    points = [{"family": "one_cycle", "oc_max_lr": r} for r in (1e-3, 1e-2, 5e-2)]
    points += [{"family": "schedule_free", "sf_lr": 0.03}, {"family": "wsd", "wsd_max_lr": 1e-2}]
    # 40 epochs of 10, a 40-step test, trials of 10: final fit 27, a race of 5 x 1 then 2 x 2
    books = BudgetedRun(40, steps_per_epoch=10, options=StudyOptions(epochs=10, range_steps=40), sweep_values={})
    books.start()
    books.charge_range_test(40, seconds=1.0)
    books.run_study(call, race_points=lambda n: points[:n])
    assert asked == [("schedule-halving", ("one_cycle", "schedule_free", "wsd"), 5, 2, points)]
    assert books.spent.trial_epochs == 9 and books.final_epochs == 27
    # KerasTuner cannot halve: trials of the top rung's length fill the race's 9 epochs
    asked.clear()
    options = StudyOptions(epochs=10, range_steps=40, backend="keras-tuner")
    books = BudgetedRun(40, steps_per_epoch=10, options=options, sweep_values={})
    books.start()
    books.charge_range_test(40, seconds=1.0)
    books.run_study(call, race_points=lambda n: points[:n])
    assert [a[:4] for a in asked] == [("truncate", ("one_cycle", "cyclic"), 4, 2)] and asked[0][4] is None


def test_a_step_budget_caps_the_self_extending_range_test(caplog):
    import lrsearch
    from tests.support.cli_model import build_model, load_data

    (x, y), _ = load_data()
    # rates too low to move this model: the first round (100 steps: one pass, at least 100)
    # shows no descent; the next would run 300 and 50 are left: the test ends, in one line
    with caplog.at_level(logging.INFO, logger="lrsearch.rangetest.finder"):
        result = lrsearch.range_test(build_model(), (x, y), min_lr=1e-7, max_lr=1e-5, step_budget=150, verbose=0)
    assert [r["recorded"] for r in result.meta["rounds"]] == [100] and len(result.frame) == 100
    told = [r.getMessage() for r in caplog.records if "step budget" in r.getMessage()]
    assert told == ["range test: its step budget (150) ends it after round 1 (no_descent), 50 steps left"]
    # a cap below one pass shortens the first round itself
    short = lrsearch.range_test(build_model(), (x, y), min_lr=1e-7, max_lr=1e-5, step_budget=40, verbose=0)
    assert len(short.frame) == 40


def test_keep_optimizer_is_a_flag_of_auto():
    from lrsearch.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["auto", "m.py", "--keep-optimizer"]).keep_optimizer is True
    assert parser.parse_args(["auto", "m.py"]).keep_optimizer is False


@pytest.mark.slow
def test_a_flagged_curve_under_a_budget_races_a_wide_bracket_and_says_so(tmp_path, caplog):
    from lrsearch.run.auto import auto

    # 16 epochs of 10 steps, no steps given: the self-extending test may take 40 steps; over
    # 1e-6..1e-4 this model's curve of 40 steps is flat and noisy, and the longer round that
    # would follow does not fit: the race brackets a decade below max_lr up to a decade above it
    caplog.set_level(logging.INFO)
    result = auto(str(CLI_MODEL), out_dir=tmp_path / "run", study_name="f", budget=16, min_lr=1e-6, max_lr=1e-4,
                  pruner=None, verbose=0, report=False, sweeps=False)
    s, spent = result.suggestion, result.budget.spent
    assert {"flat", "noisy"} <= set(s.problems) and spent.range_steps == 40 == len(result.range_test.frame)
    end = float(result.range_test.frame["lr"].iloc[-1])
    high = min(s.max_lr * 100, max(end, s.min_loss_lr, s.max_lr * 10))
    lines = [r.getMessage() for r in caplog.records if "not trained on as read" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("range test: the curve is still ")
    low = max(s.base_lr, s.max_lr / 10)
    assert lines[0].endswith(f"the race brackets {low:.3g} to {high:.3g} (below max_lr to where the test ended)")
    assert any("step budget (40) ends it after round 1" in r.getMessage() for r in caplog.records)
    # 12 epochs left: final fit 9, a race of three 1-epoch one-cycles at the middles of the bracket's thirds
    plan = result.budget.study_plan
    assert plan.race and plan.rungs == (Rung(3, 1),) and plan.final_epochs == 9
    peaks = result.tune.trials.sort_values("number")["params_oc_max_lr"].tolist()[:3]
    assert peaks == pytest.approx([low * (high / low) ** (k / 6) for k in (1, 3, 5)], rel=1e-6)
    assert spent.total == pytest.approx(16.0)


@pytest.mark.slow
def test_a_schedule_free_twin_that_wins_the_race_is_exported_and_named(tmp_path, caplog):
    import keras

    import lrsearch
    from lrsearch.optimizers import ScheduleFreeAdamW
    from lrsearch.run.racing import RaceDesign, tell_winner
    from tests.support.cli_model import load_data

    def build():
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    train, val = load_data()
    # the AdamW one-cycles peak at 1e-7 and cannot move the weights; the twin trains at 0.02
    points = [{"family": "one_cycle", "oc_max_lr": 1e-7}, {"family": "one_cycle", "oc_max_lr": 2e-7},
              {"family": "one_cycle", "oc_max_lr": 3e-7}, {"family": "schedule_free", "sf_lr": 0.02}]
    tuned = lrsearch.tune(build, train, validation_data=val, bounds=(1e-7, 0.05), epochs=2, trials=4,
                          families=("one_cycle", "schedule_free"), fidelity="schedule-halving", pruner=None,
                          metric="val_accuracy", seed=0, out_dir=tmp_path, study_name="sf", opening_points=points)
    rows = tuned.trials
    assert rows["rung"].tolist() == [0, 0, 0, 0, 1, 1]  # 4 x 1 epoch, the best 2 x 2
    assert tuned.best.provenance["params"]["family"] == "schedule_free"
    top = rows[rows["rung"] == 1]
    margin = top[top["family"] == "schedule_free"]["value"].max() - top[top["family"] == "one_cycle"]["value"].max()
    assert margin > 0.3
    design = RaceDesign(bracket=Bracket(1e-7, 0.05, 1e-7, 0.02), portfolio=True, optimizer="AdamW",
                        schedule_free=False)
    with caplog.at_level(logging.WARNING, logger="lrsearch.run.racing"):
        line = tell_winner(tuned, design, "val_accuracy", "maximize")
    assert line == (f"Schedule-Free AdamW beat your AdamW by {margin:.3g} val_accuracy in the race; exported it; "
                    "--keep-optimizer keeps yours")
    assert [r.getMessage() for r in caplog.records] == [line]
    saved = json.loads((tmp_path / "schedule.json").read_text())
    assert saved["optimizer"]["class_name"] == "ScheduleFreeAdamW"
    assert isinstance(lrsearch.load_schedule(tmp_path / "schedule.json").build_optimizer(), ScheduleFreeAdamW)
    # the final fit trains the twin too, and its schedule rebuilds it
    from lrsearch.study.final_fit import final_fit
    from lrsearch.study.results import ATTR

    fit = final_fit(build, train, val, best=tuned.best, space=tuned.study.user_attrs[ATTR]["space"], epochs=3,
                    out_dir=tmp_path, seed=0)
    assert fit.schedule.optimizer == "ScheduleFreeAdamW" and len(fit.history) == 3
    assert isinstance(lrsearch.load_schedule(tmp_path / "final_schedule.json").build_optimizer(), ScheduleFreeAdamW)


@pytest.mark.slow
def test_the_portfolio_races_by_default_and_keep_optimizer_keeps_yours(tmp_path):
    from lrsearch.run.auto import auto

    # 24 epochs of 10 steps, a 40-step range test (4): 20 left, two trials of 10 fit: a final
    # fit of 15 and a race of five 1-epoch trials: three one-cycles, the twin and a WSD
    common = dict(budget=24, range_steps=40, min_lr=1e-4, max_lr=10.0, pruner=None, verbose=0, report=False,
                  sweeps=False)
    raced = auto(str(CLI_MODEL), out_dir=tmp_path / "p", study_name="p", **common)
    opening = raced.tune.trials.sort_values("number")["family"].tolist()[:5]
    assert raced.budget.study_plan.rungs == (Rung(5, 1),)
    assert opening == ["one_cycle", "one_cycle", "one_cycle", "schedule_free", "wsd"]
    # keep_optimizer: no twin; the WSD schedule (of your SGD) stays, beside four one-cycles
    kept = auto(str(CLI_MODEL), out_dir=tmp_path / "k", study_name="k", keep_optimizer=True, **common)
    assert "schedule_free" not in set(kept.tune.trials["family"])
    assert kept.tune.trials.sort_values("number")["family"].tolist()[:5] == ["one_cycle"] * 4 + ["wsd"]
    saved = json.loads((tmp_path / "k" / "schedule.json").read_text())
    assert saved["optimizer"]["class_name"] == "SGD"
    final = json.loads((tmp_path / "k" / "final_schedule.json").read_text())
    assert final["optimizer"]["class_name"] == "SGD"
