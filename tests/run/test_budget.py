"""Budgets: the planning arithmetic with known numbers, and a budgeted `auto` that keeps to it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from lrsearch.study.budget import (
    Budget,
    Rung,
    Spend,
    epochs_for_seconds,
    halving_cost,
    halving_rungs,
    overridden,
    plan_budget,
)
from lrsearch.core.errors import ConfigError
from tests.support import CLI_MODEL

SWEEPS = {"momentum": 3, "weight_decay": 3}


def test_budget_reads_epochs_and_seconds():
    assert Budget.parse(48) == Budget(48.0, "epochs") == Budget.parse("48")
    assert Budget.parse("600s") == Budget(600.0, "seconds") == Budget.parse("600 seconds")
    assert str(Budget.parse("2.5")) == "2.5 epochs" and str(Budget.parse("90s")) == "90 s"
    for bad in ("ten", "-3", "0", "5h"):
        with pytest.raises(ConfigError, match="budget"):
            Budget.parse(bad)


def test_digits_budget_of_48_epochs():
    # 45 steps an epoch (the digits study): the 160-step range test costs 160/45 = 3.56
    # epochs; six sweep tests of 68 steps (9.07 epochs) exceed a tenth of the budget
    # (4.8 epochs = 216 steps), so each is shortened to 216 // 6 = 36 steps
    plan = plan_budget(48, 45, epochs=6, range_steps=160, sweep_values=SWEEPS, sweep_steps=68)
    assert plan.range_epochs == pytest.approx(3.5556, abs=1e-4)
    assert plan.sweeps == (("momentum", 3), ("weight_decay", 3)) and plan.sweep_steps == 36
    assert plan.sweep_epochs == pytest.approx(4.8)
    # 48 - 3.56 - 4.8 = 39.64 epochs: 6 trials of 6 epochs
    assert (plan.trials, plan.epochs, plan.study_epochs) == (6, 6, 36)
    assert plan.total == pytest.approx(44.3556, abs=1e-4) and plan.total <= 48
    assert "shortened from 68 to 36 steps" in plan.describe()


def test_sweeps_are_dropped_before_they_are_shortened_below_30_steps():
    # cap 0.1 * 30 = 3 epochs = 135 steps: six tests of 22 steps are too short; the
    # momentum sweep alone gets three tests of 45 steps
    plan = plan_budget(30, 45, epochs=6, range_steps=160, sweep_values=SWEEPS, sweep_steps=68)
    assert plan.sweeps == (("momentum", 3),) and plan.sweep_steps == 45
    assert "weight-decay sweep skipped" in plan.describe()
    # a budget of 12: no sweep fits, and 12 - 3.56 = 8.44 epochs hold 4 trials of 2 epochs
    small = plan_budget(12, 45, epochs=6, range_steps=160, sweep_values=SWEEPS, sweep_steps=68)
    assert small.sweeps == () and (small.trials, small.epochs) == (4, 2)
    assert "trials shortened from 6 to 2 epochs" in small.describe()


def test_large_epochs_make_evidence_cheap():
    # 450 steps an epoch: range test 0.36 epochs, all six sweep tests 0.91 epochs
    plan = plan_budget(480, 450, epochs=10, range_steps=160, sweep_values=SWEEPS, sweep_steps=68)
    assert plan.sweep_steps == 68 and plan.sweep_epochs == pytest.approx(408 / 450)
    assert (plan.trials, plan.epochs) == (47, 10)


def test_spent_and_the_final_fit_come_off_the_top():
    plan = plan_budget(48, 45, epochs=6, spent=160 / 45, final_epochs=20)
    # 48 - 3.56 - 20 = 24.4 epochs: 4 trials of 6
    assert (plan.trials, plan.epochs, plan.final_epochs) == (4, 6, 20)
    with pytest.raises(ConfigError, match=r"does not cover the final fit \(20\), the range test \(3.56\)"):
        plan_budget(24, 45, epochs=6, range_steps=160, final_epochs=20)


def test_a_short_budget_races_short_trials_then_trains_the_winner():
    # 20 epochs of 43 steps, trials of 5 asked: after the 160-step range test (3.72 epochs)
    # 16.28 epochs hold three trials of 5, fewer than four: 0.75 x 16.28 = 12.21 -> a final
    # fit of 12; the 4.28 left race four 1-epoch trials (too few to halve); no sweeps
    plan = plan_budget(20, 43, epochs=5, range_steps=160, sweep_values=SWEEPS, sweep_steps=60,
                       final_epochs=None)
    assert plan.race and plan.sweeps == () and (plan.trials, plan.epochs, plan.final_epochs) == (4, 1, 12)
    assert plan.total == pytest.approx(160 / 43 + 16)
    assert "a race of 4 trials x 1 epochs (4), final fit 12" in plan.describe()
    assert "fewer than 4 trials of 5 epochs fit" in plan.describe()
    # 30 epochs of 45, trials of 10: 26.44 left -> final 19, 7.44 -> a bracket of 5 x 1, 2 x 2
    # costs 9 and one of 4 x 1, 2 x 2 costs 8: seven 1-epoch trials, one rung
    plan = plan_budget(30, 45, epochs=10, range_steps=160, final_epochs=None)
    assert (plan.trials, plan.epochs, plan.final_epochs, plan.rungs) == (7, 1, 19, (Rung(7, 1),))
    # 40 epochs of 10, a 40-step test, trials of 10: 36 left -> final 27, 9 -> 5 x 1 then the best 2 x 2
    plan = plan_budget(40, 10, epochs=10, range_steps=40, final_epochs=None)
    assert (plan.trials, plan.epochs, plan.final_epochs, plan.rungs) == (5, 2, 27, (Rung(5, 1), Rung(2, 2)))
    assert "a race of 5 x 1, 2 x 2 epochs (9), final fit 27" in plan.describe()
    # 6 epochs: 2.44 left -> final 1, one trial of 1
    plan = plan_budget(6, 45, epochs=10, range_steps=160, final_epochs=None)
    assert (plan.trials, plan.epochs, plan.final_epochs) == (1, 1, 1) and plan.total <= 6
    # room for four trials: the plan of final_epochs=0, no race
    kwargs = dict(epochs=6, range_steps=160, sweep_values=SWEEPS, sweep_steps=68)
    assert plan_budget(48, 45, final_epochs=None, **kwargs) == plan_budget(48, 45, **kwargs)


def test_halving_rungs_and_their_cost():
    assert halving_rungs(8, 8, 2) == (Rung(8, 2), Rung(4, 4), Rung(2, 8))
    assert halving_rungs(9, 9, 3) == (Rung(9, 3), Rung(3, 9))
    assert halving_rungs(20, 10, 2) == (Rung(20, 1), Rung(10, 3), Rung(5, 5), Rung(2, 10))
    assert halving_rungs(8, 2, 2) == (Rung(8, 1), Rung(4, 2))  # no rung shorter than an epoch
    assert halving_rungs(1, 5, 2) == (Rung(1, 5),)
    assert halving_cost(halving_rungs(8, 6, 2)) == 8 * 2 + 4 * 3 + 2 * 6 == 40
    with pytest.raises(ConfigError, match="Argument `eta` must be an integer >= 2"):
        halving_rungs(8, 8, 1)


def test_halving_plan_takes_the_largest_bracket_that_fits():
    # 48 - 3.56 (range test) = 44.44 epochs: 9 first-rung trials (9 x 2, 4 x 3, 2 x 6 =
    # 42 epochs); 10 would cost 20 + 15 + 12 = 47
    plan = plan_budget(48, 45, epochs=6, range_steps=160, halving_eta=2)
    assert plan.trials == 9 and plan.rungs == (Rung(9, 2), Rung(4, 3), Rung(2, 6))
    assert plan.study_epochs == 42


def test_spend_adds_batches_and_epochs():
    spend = Spend(45, range_steps=160, sweep_steps=216, trial_epochs=33, final_epochs=6)
    assert spend.evidence_epochs == pytest.approx(376 / 45)
    assert spend.total == pytest.approx(376 / 45 + 39)
    assert json.loads(json.dumps(spend.to_dict()))["trial_epochs"] == 33


def _fake_study(epochs_per_trial: int):
    """A resumable study whose trials are all pruned after `epochs_per_trial` epochs."""
    import pandas as pd

    asked, runs = [], []

    def call(options):
        asked.append((options.trials, options.epochs, options.timeout, options.opening))
        runs.extend([epochs_per_trial] * options.trials)
        return SimpleNamespace(trials=pd.DataFrame({"epochs_run": runs}))

    return call, asked


def test_pruned_trials_leave_room_that_more_trials_fill():
    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    books = BudgetedRun(48, steps_per_epoch=45, options=StudyOptions(epochs=6), sweep_values={})
    assert books.start().startswith("budget 48 epochs of 45 steps: range test 160 steps (3.56), 7 trials x 6")
    books.charge_range_test(160, seconds=2.0)
    call, asked = _fake_study(3)  # every trial pruned at half its 6 epochs
    books.run_study(call)
    # 44.44 epochs: 7 trials (21 epochs), then 3 (30), 2 (36), 1 (39); 5.44 left < 6
    assert [a[0] for a in asked] == [7, 3, 2, 1] and {a[1] for a in asked} == {6}
    report = books.finish()
    assert report.spent.trial_epochs == 39 and report.spent.total == pytest.approx(160 / 45 + 39)


def test_a_short_budget_is_decided_once_and_opens_with_the_race():
    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    books = BudgetedRun(20, steps_per_epoch=43, options=StudyOptions(epochs=5), sweep_values=SWEEPS)
    assert "a race of 4 trials x 1 epochs (4), final fit 12" in books.start()
    books.charge_range_test(160, seconds=1.0)
    assert books.plan_sweeps(60).sweeps == ()  # skipped: the budget goes to the final fit
    call, asked = _fake_study(1)
    books.run_study(call)
    # 20 - 3.72 - 12 = 4.28: four 1-epoch trials, the first three the designed race
    assert asked == [(4, 1, None, 3)] and books.final_epochs == 12
    report = books.finish(books.final_epochs)
    assert report.study_plan.race and report.spent.total == pytest.approx(160 / 43 + 16)
    # asked for explicitly (0: none), the final fit is not the planner's
    books = BudgetedRun(20, steps_per_epoch=43, options=StudyOptions(epochs=5), sweep_values={}, final_epochs=0)
    assert "trials shortened from 5 to 4 epochs" in books.start() and books.final_epochs == 0
    with pytest.raises(ConfigError, match=r"Argument `opening` must be an integer >= 1. Received: opening=0"):
        StudyOptions(opening=0)


def test_a_budget_in_seconds_is_planned_at_the_range_tests_speed():
    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    assert epochs_for_seconds(90, 0.01, 45) == pytest.approx(200)
    books = BudgetedRun("90s", steps_per_epoch=45, options=StudyOptions(epochs=10), sweep_values={})
    assert "planned at the speed it measures" in books.start()
    books.charge_range_test(160, seconds=1.6)  # 0.01 s a step: 90 s buy 200 epochs
    assert books.epochs_budget == pytest.approx(200)
    call, asked = _fake_study(10)
    books.run_study(call)
    trials, epochs, timeout, _ = asked[0]
    assert (trials, epochs) == (19, 10) and 0 < timeout <= 90  # no trial starts after the deadline


def test_asked_trials_and_epochs_the_plan_replaces_are_told(caplog):
    from lrsearch.run.auto import asked_for
    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    # 40 epochs of 10 steps: the 160-step range test costs 16, and the 24 left hold 2 trials
    # of the 10 epochs asked, fewer than four: 4 trials of 6
    plan = plan_budget(40, 10, epochs=10, range_steps=160)
    assert (plan.trials, plan.epochs) == (4, 6)
    told = overridden(plan, {"trials": 2, "epochs": 10})
    assert told == "4 trials x 6 epochs (24) instead of the trials=2, epochs=10 asked"
    assert overridden(plan, {"trials": 4}) is None and overridden(plan, {"epochs": 6}) is None
    assert overridden(plan, {}) is None
    # asked: the keywords given, or options away from their defaults (10 epochs, 20 trials)
    assert asked_for(StudyOptions(trials=2), {}) == {"trials": 2}
    assert asked_for(StudyOptions(), {"epochs": 10}) == {"epochs": 10}
    assert asked_for(StudyOptions(), {"seed": 0}) == {}

    options = StudyOptions(trials=2, epochs=10)
    books = BudgetedRun(40, steps_per_epoch=10, options=options, sweep_values={}, final_epochs=0,
                        asked=asked_for(options, {"trials": 2, "epochs": 10}))
    books.start()
    books.charge_range_test(160, seconds=1.0)
    call, asked = _fake_study(6)
    with caplog.at_level("INFO", logger="lrsearch.run.budgeted"):
        books.run_study(call)
    assert asked == [(4, 6, None, 1)]
    told = [(r.levelname, r.getMessage()) for r in caplog.records if "instead of" in r.getMessage()]
    assert told == [("WARNING", "budget 40 epochs: 4 trials x 6 epochs (24) instead of the trials=2, epochs=10 asked")]
    # nothing asked (the defaults): nothing told
    caplog.clear()
    books = BudgetedRun(40, steps_per_epoch=10, options=StudyOptions(), sweep_values={}, final_epochs=0)
    books.start()
    books.charge_range_test(160, seconds=1.0)
    with caplog.at_level("INFO", logger="lrsearch.run.budgeted"):
        books.run_study(_fake_study(6)[0])
    assert not [r for r in caplog.records if "instead of" in r.getMessage()]


MODEL = CLI_MODEL  # 320 samples: 10 steps an epoch


def test_budgeted_auto_keeps_to_its_budget_and_saves_the_final_model(tmp_path, caplog):
    import keras

    from lrsearch.run.auto import auto

    out = tmp_path / "run"
    # 14 epochs: final fit 2, range test 40 steps = 4; the sweeps (4 tests of >= 30 steps)
    # exceed 1.4 epochs and are skipped; 8 epochs are left: 4 trials of 2, the 2 epochs asked
    caplog.set_level("INFO", logger="lrsearch.run.budgeted")
    result = auto(str(MODEL), out_dir=out, study_name="b", budget=14, final_epochs=2, epochs=2,
                  range_steps=40, min_lr=1e-4, max_lr=10.0, pruner=None, verbose=0, report=False,
                  momentum_values=(0.9, 0.8), weight_decay_values=(0.0, 1e-3))
    books = result.budget
    assert books.planned.sweeps == () and (books.planned.trials, books.planned.epochs) == (4, 2)
    spent = books.spent
    assert (spent.range_steps, spent.sweep_steps, spent.trial_epochs, spent.final_epochs) == (40, 0, 8, 2)
    assert spent.total == pytest.approx(14.0)
    assert result.tune.trials["epochs_run"].tolist() == [2, 2, 2, 2]
    assert not [r for r in caplog.records if "instead of" in r.getMessage()]  # as asked: nothing to tell
    assert not (out / "sweep_momentum.csv").exists()
    assert json.loads((out / "budget.json").read_text())["spent"]["total"] == pytest.approx(14.0)
    # the final fit: the winner's schedule over 2 epochs, saved and loadable
    final = json.loads((out / "final_schedule.json").read_text())
    assert final["epochs"] == 2 and final["provenance"]["trial"] == result.schedule.provenance["trial"]
    assert len(result.final.history) == 2
    assert keras.saving.load_model(out / "final_model.keras").count_params() == 650
    # a rerun charges the trials already run: nothing is left to spend
    with pytest.raises(ConfigError, match="does not cover 8.00 epochs spent"):
        auto(str(MODEL), out_dir=out, study_name="b", budget=14, final_epochs=2, epochs=2, range_steps=40,
             min_lr=1e-4, max_lr=10.0, pruner=None, verbose=0, report=False)


def test_a_short_budget_races_the_opening_and_trains_the_winner(tmp_path, caplog):
    from lrsearch.run.auto import auto

    out = tmp_path / "run"
    # 14 epochs of 10 steps, trials of 4 asked: the 40-step range test costs 4, and 10 epochs
    # hold 2 trials of 4: a race of 3 one-epoch trials, then a final fit of 7 (0.75 x 10)
    with caplog.at_level("INFO", logger="lrsearch.run.budgeted"):
        result = auto(str(MODEL), out_dir=out, study_name="r", budget=14, epochs=4, range_steps=40, min_lr=1e-4,
                      max_lr=10.0, pruner=None, verbose=0, report=False, momentum_values=(0.9, 0.8))
    told = [r.getMessage() for r in caplog.records if "instead of" in r.getMessage()]
    assert told == ["budget 14 epochs: a race of 3 trials x 1 epochs (3) instead of the epochs=4 asked"]
    plan, spent = result.budget.study_plan, result.budget.spent
    assert plan.race and (plan.trials, plan.epochs, plan.final_epochs) == (3, 1, 7)
    # a winner at the bracket's edge is probed past it, each probe an epoch of the final fit's
    probes = spent.trial_epochs - 3
    assert 0 <= probes <= 2 and spent.final_epochs == 7 - probes and len(result.tune.trials) == 3 + probes
    assert spent.sweep_steps == 0 and spent.total == pytest.approx(14.0) and not (out / "sweep_momentum.csv").exists()
    # the race opens on both sides of max_lr: a decade below it, at it, up to the loss minimum
    s = result.suggestion
    peaks = result.tune.trials.sort_values("number")["params_oc_max_lr"].tolist()
    assert peaks[:3] == pytest.approx([max(s.max_lr / 10, s.base_lr), s.max_lr,
                                       max(s.min_loss_lr, s.max_lr * 10**0.5)], rel=1e-6)
    # the final fit: the winner's one-cycle stretched over its epochs of 10 steps, same peak
    best = result.tune.best.provenance["params"]["oc_max_lr"]
    final = json.loads((out / "final_schedule.json").read_text())
    n = 7 - probes
    assert final["epochs"] == n and final["provenance"]["trial"] == result.tune.best.provenance["trial"]
    sched = result.final.schedule.schedule
    assert max(float(sched(s)) for s in range(n * 10)) == pytest.approx(best, rel=1e-5)
    assert len(result.final.history) == n


def test_command_line_budget_errors_are_one_line(capsys, tmp_path):
    from lrsearch.cli.main import main

    code = main(["auto", str(MODEL), "--budget", "ten", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "argument --budget: cannot read budget 'ten': give epochs (e.g. 48) or seconds (e.g. 600s)" in err
    code = main(["auto", str(MODEL), "--final-epochs", "-1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "argument --final-epochs: must be at least 0, got -1" in err
    # 10 steps an epoch: a 170-step range test alone is 17 epochs
    code = main(["auto", str(MODEL), "--budget", "12", "--out", str(tmp_path), "--no-sweeps", "--steps", "170"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and err == ("lrsearch: error: a budget of 12 epochs does not cover the range test (17.00) "
                                 "and one epoch of training: raise the budget")
    # no steps given: the self-extending test may take a quarter, here 0.25 x 1.5 x 10 = 3 steps
    code = main(["auto", str(MODEL), "--budget", "1.5", "--out", str(tmp_path), "--no-sweeps"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and err == ("lrsearch: error: a budget of 1.5 epochs leaves the range test 3 steps (25% of "
                                 "it) and it needs 20: raise the budget or give its steps (--steps)")
    assert not (tmp_path / "range_test.csv").exists()


def test_the_spend_states_the_budget_in_the_unit_given():
    from lrsearch.study.budget import Budget, Spend

    spend = Spend(steps_per_epoch=10, range_steps=20, trial_epochs=3, seconds=21.2)
    assert spend.describe(Budget.parse("20s")).endswith("; 21 s of a 20 s budget")
    assert spend.describe(Budget.parse("48")).endswith("; 21 s (a budget of 48 epochs)")
    assert spend.describe(48).endswith("; 21 s (a budget of 48 epochs)")
    assert spend.describe().endswith("; 21 s")
    # far past the budget (one trial of a 3 s budget took 5 s): the overrun is said, in the same numbers
    late = Spend(steps_per_epoch=10, range_steps=160, trial_epochs=1, seconds=5.2)
    assert late.describe(Budget.parse("3s")) == (
        "spent 17.00 epochs: range test 160 steps, sweeps 0 steps (16.00 epochs of evidence), trials 1; 5 s of a "
        "3 s budget, over by 2 s (a study runs one trial at least)")


def test_a_seconds_budget_the_range_test_used_up_is_refused_in_its_unit():
    """The 1 s budget bought 6.52 epochs at the range test's speed; the test itself spent 16:
    the refusal names both, and no range test still to run (none is)."""
    from lrsearch.study.budget import plan_budget

    with pytest.raises(ConfigError) as caught:
        plan_budget(6.52, 10, epochs=10, spent=16.0, final_epochs=None,
                    told="1 s (6.52 epochs at the range test's speed)")
    assert str(caught.value) == ("a budget of 1 s (6.52 epochs at the range test's speed) does not cover 16.00 "
                                 "epochs spent and one epoch of training: raise the budget")


def test_a_seconds_budget_trains_the_final_fit_only_as_long_as_the_time_left(caplog):
    """10 s, 5.5 s gone, trials ran 2 epochs in 2 s: 4.5 s left buy 4 epochs of the 24 planned."""
    import time
    from types import SimpleNamespace

    import pandas as pd

    from lrsearch.run.budgeted import BudgetedRun
    from lrsearch.study.options import StudyOptions

    books = BudgetedRun("10s", steps_per_epoch=10, options=StudyOptions(), sweep_values={}, final_epochs=24)
    books.began = time.monotonic() - 5.5
    ran = SimpleNamespace(trials=pd.DataFrame({"epochs_run": [1, 1], "duration_s": [1.2, 0.8]}))
    with caplog.at_level("INFO", logger="lrsearch.run.budgeted"):
        assert books.final_epochs_in_time(ran) == 4
    (said,) = caplog.messages  # the seconds left as the clock read them: 4.5 less the time the call took
    assert said.startswith("budget 10 s: 4.") and said.endswith(
        " s left at 1 s per trial epoch: the final fit trains 4 epochs, not 24")
    books.began = time.monotonic() - 11
    assert books.final_epochs_in_time(ran) == 0
    epochs = BudgetedRun("48", steps_per_epoch=10, options=StudyOptions(), sweep_values={}, final_epochs=24)
    assert epochs.final_epochs_in_time(ran) == 24  # a budget in epochs keeps its plan
