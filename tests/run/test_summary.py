"""The end-of-run summary: the schedule in one line, its quality against the first trial,
the files, the next commands; from known tables."""

from __future__ import annotations

import json
import shlex

import pandas as pd
import pytest

import lrsearch
from lrsearch.study.results import TuneResult
from lrsearch.run.summary import describe_schedule, summary_lines


def _one_cycle(provenance: dict) -> lrsearch.ScheduleSpec:
    sched = lrsearch.schedules.OneCycle(max_lr=0.05, total_steps=100)
    return lrsearch.ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(), weight_decay=1e-4,
                                 steps_per_epoch=10, epochs=10, batch_size=32,
                                 provenance={"family": "one_cycle", **provenance})


def _result(best: lrsearch.ScheduleSpec | None, states=("COMPLETE", "PRUNED", "COMPLETE"),
            values=(0.3, None, 0.21)) -> TuneResult:
    trials = pd.DataFrame({"number": range(len(states)), "state": list(states), "value": list(values)})
    history = pd.DataFrame(
        [
            {"trial": 0, "epoch": 1, "val_loss": 0.5, "val_accuracy": 0.8, "accuracy": 0.7},
            {"trial": 0, "epoch": 2, "val_loss": 0.3, "val_accuracy": 0.9, "accuracy": 0.85},
            {"trial": 1, "epoch": 1, "val_loss": 0.9, "val_accuracy": 0.5, "accuracy": 0.5},
            {"trial": 2, "epoch": 1, "val_loss": 0.4, "val_accuracy": 0.85, "accuracy": 0.8},
            {"trial": 2, "epoch": 2, "val_loss": 0.21, "val_accuracy": 0.93, "accuracy": 0.9},
        ]
    )
    return TuneResult(study=None, trials=trials, history=history, best=best, metric="val_loss",
                      direction="minimize")


def test_summary_of_a_run_folder(tmp_path):
    for name in ("schedule.json", "trials.csv", "study.db"):
        (tmp_path / name).write_text("x")
    spec = _one_cycle({"trial": 2, "value": 0.21, "storage": f"sqlite:///{(tmp_path / 'study.db').resolve()}"})
    assert summary_lines(_result(spec), tmp_path) == [
        "schedule: one-cycle, lr 0.002 -> 0.05 -> 2e-07 (peak at 30%, cos), momentum 0.95 -> 0.85 -> 0.95, "
        "weight decay 0.0001, SGD, 10 epochs",
        "val_loss 0.21 (first trial 0.3), val_accuracy 0.93 (first trial 0.9): trial #2, best of 3 "
        "(2 complete, 1 pruned)",
        f"files in {tmp_path}: schedule.json, trials.csv, study.db",
        f"next: lrsearch dashboard --out {tmp_path}",
        f"      lrsearch report {tmp_path}",
        f'      spec = lrsearch.load_schedule("{tmp_path / "schedule.json"}"); '
        "model.compile(optimizer=spec.build_optimizer(), ...); "
        "model.fit(..., batch_size=32, epochs=10, callbacks=[spec.callback()])",
    ]


def test_a_final_fit_is_summed_up_and_is_the_schedule_to_train_with(tmp_path):
    from types import SimpleNamespace

    for name in ("schedule.json", "final_schedule.json", "final_model.keras", "budget.json"):
        (tmp_path / name).write_text("x")
    sched = lrsearch.schedules.OneCycle(max_lr=0.05, total_steps=300)
    spec = lrsearch.ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(), steps_per_epoch=10,
                                 epochs=30, provenance={"family": "one_cycle", "trial": 2})
    history = pd.DataFrame({"epoch": [1, 2], "loss": [0.9, 0.4], "val_loss": [0.5, 0.25],
                            "val_accuracy": [0.8, 0.9412]})
    final = SimpleNamespace(schedule=spec, history=history, epochs=30)
    lines = summary_lines(_result(_one_cycle({"trial": 2, "value": 0.21})), tmp_path, final)
    assert lines[2] == ("final fit: one-cycle, lr 0.002 -> 0.05 -> 2e-07 (peak at 30%, cos), momentum 0.95 -> "
                        "0.85 -> 0.95, no weight decay, SGD, 30 epochs; val_loss 0.25, val_accuracy 0.941 at the end")
    assert lines[3] == (f"files in {tmp_path}: final_model.keras, final_schedule.json, schedule.json, "
                        "budget.json")
    assert lines[-1] == (f'      spec = lrsearch.load_schedule("{tmp_path / "final_schedule.json"}"); '
                         "model.compile(optimizer=spec.build_optimizer(), ...); "
                         "model.fit(..., epochs=30, callbacks=[spec.callback()])")


def test_the_first_trial_winning_and_a_pruned_first_trial(tmp_path):
    won = _result(_one_cycle({"trial": 0, "value": 0.3}), states=("COMPLETE", "PRUNED"), values=(0.3, None))
    assert summary_lines(won, tmp_path)[1] == (
        "val_loss 0.3, val_accuracy 0.9: the first trial (the suggested schedule), best of 2 (1 complete, 1 pruned)"
    )
    pruned = _result(_one_cycle({"trial": 2, "value": 0.21}), states=("PRUNED", "PRUNED", "COMPLETE"),
                     values=(None, None, 0.21))
    assert summary_lines(pruned, tmp_path)[1] == (
        "val_loss 0.21 (first trial pruned), val_accuracy 0.93 (first trial pruned): trial #2, best of 3 "
        "(2 pruned, 1 complete)"
    )


def test_other_storages_and_no_winner(tmp_path):
    url = "postgresql://lrsearch:***@db.example:5432/studies"
    (tmp_path / "report.html").write_text("x")
    lines = summary_lines(_result(_one_cycle({"trial": 2, "value": 0.21, "storage": url})), tmp_path)
    assert lines[-2:] == [
        f"next: lrsearch dashboard --storage {shlex.quote(url)}",
        f'      spec = lrsearch.load_schedule("{tmp_path / "schedule.json"}"); '
        "model.compile(optimizer=spec.build_optimizer(), ...); "
        "model.fit(..., batch_size=32, epochs=10, callbacks=[spec.callback()])",
    ]
    keras_tuner = summary_lines(_result(_one_cycle({"trial": 2, "value": 0.21, "storage": str(tmp_path / "kt")})),
                                tmp_path)
    assert not any("dashboard" in line for line in keras_tuner)
    nothing = summary_lines(_result(None, states=("FAIL",), values=(None,)), tmp_path)
    assert nothing[0] == (f"no trial completed, so no schedule was chosen; see {tmp_path / 'trials.csv'} "
                          "and run more trials")


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: lrsearch.ScheduleSpec(lrsearch.schedules.CyclicLR(0.01, 0.1, step_size_up=30, mode="triangular2"),
                                       optimizer="SGD", momentum=0.9, steps_per_epoch=10, epochs=12,
                                       provenance={"family": "cyclic"}),
         "cyclic (triangular2), lr 0.01 <-> 0.1, half cycle 3 epochs, momentum 0.9, no weight decay, SGD, 12 epochs"),
        (lambda: lrsearch.ScheduleSpec(0.003, optimizer="ScheduleFreeAdamW", momentum=0.9,
                                       optimizer_config={"warmup_steps": 20}, steps_per_epoch=10, epochs=5,
                                       provenance={"family": "schedule_free"}),
         "schedule-free, lr 0.003 (warmup 20 steps), beta_1 0.9, no weight decay, ScheduleFreeAdamW, 5 epochs"),
        (lambda: lrsearch.ScheduleSpec(lrsearch.schedules.WarmupStableDecay(max_lr=0.1, total_steps=100,
                                                                            warmup_steps=10, decay_shape="cosine"),
                                       optimizer="Adam", weight_decay=0.01, steps_per_epoch=10, epochs=10,
                                       provenance={"family": "wsd"}),
         "warmup-stable-decay, lr 0.1 (warmup 10%, cosine decay over the last 20% to 0), weight decay 0.01, Adam, "
         "10 epochs"),
    ],
)
def test_describe_schedule(make, expected):
    assert describe_schedule(make()) == expected


def test_paths_with_spaces_are_quoted_in_the_next_commands(tmp_path):
    out = tmp_path / "my runs" / "it's"
    out.mkdir(parents=True)
    for name in ("schedule.json", "study.db"):
        (out / name).write_text("x")
    spec = _one_cycle({"trial": 2, "value": 0.21, "storage": f"sqlite:///{(out / 'study.db').resolve()}"})
    lines = summary_lines(_result(spec), out)
    quoted = shlex.quote(str(out))
    assert quoted != str(out)
    assert f"next: lrsearch dashboard --out {quoted}" in lines
    assert f"      lrsearch report {quoted}" in lines
    assert shlex.split(lines[lines.index(f"      lrsearch report {quoted}")])[-1] == str(out)
    (load,) = [line for line in lines if "load_schedule" in line]
    assert f"load_schedule({json.dumps(str(out / 'schedule.json'))})" in load
