"""Studies of the WSD and Schedule-Free families, end to end on the digits MLP: the
trial's exported schedule, the rates it records, and a Schedule-Free trial judged at x."""

from __future__ import annotations

import math

import keras
import numpy as np
import optuna
import pytest
from tests.support.study_workload import SUGGESTION, build_model, digits

from lrsearch import optimizers as lr_optimizers
from lrsearch import schedules
from lrsearch.core.errors import ConfigError
from lrsearch.study.results import SPEC
from lrsearch.optimizers import ScheduleFreeSGD
from lrsearch.export.spec import ScheduleSpec
from lrsearch.study.tune import tune

optuna.logging.set_verbosity(optuna.logging.WARNING)

STEPS = 8  # 256 samples in batches of 32
TOP = SUGGESTION.max_lr


def _tune(tmp_path, families, name="f", **kw):
    train, val = digits(256, 128)
    kw.setdefault("trials", 2)
    return tune(kw.pop("build", build_model), train, validation_data=val, suggestion=SUGGESTION,
                epochs=2, pruner="none", seed=kw.pop("seed", 3), families=families,
                study_name=name, out_dir=tmp_path / name, **kw)


def _specs(result):
    return [ScheduleSpec.from_dict(t.user_attrs[SPEC]) for t in result.study.trials]


class _AtTheEnd(keras.callbacks.Callback):
    """Evaluates each trial's model on the validation data when `fit` returns (at x for
    a Schedule-Free optimizer), and once more with the optimizer moved back to y."""

    def __init__(self, val):
        super().__init__()
        self.val, self.at_x, self.at_y = val, [], []

    def on_train_end(self, logs=None):
        x, y = self.val
        self.at_x.append(self.model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
        optimizer = self.model.optimizer
        if isinstance(optimizer, ScheduleFreeSGD):
            assert optimizer.train()  # the variables held x: fit had finalized them
            self.at_y.append(self.model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
            optimizer.eval()


def _wsd(step, p, total=2 * STEPS):
    """The WSD rate at `step`, from its definition (no warmup or a linear one, floor 0)."""
    warmup = round(p["wsd_warmup_fraction"] * total)
    decay = max(1, round(p["wsd_decay_fraction"] * total))
    if step < warmup:
        return p["wsd_max_lr"] * step / warmup
    start = total - decay
    if step < start:
        return p["wsd_max_lr"]
    q = min((step - start) / decay, 1.0)
    shape = {"linear": 1 - q, "cosine": (1 + math.cos(math.pi * q)) / 2, "1-sqrt": 1 - math.sqrt(q)}
    return p["wsd_max_lr"] * shape[p["wsd_decay_shape"]]


@pytest.mark.slow
def test_a_wsd_study_exports_its_schedule_and_records_its_rates(tmp_path):
    result = _tune(tmp_path, ("wsd",))
    trials, history = result.trials, result.history
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert trials["family"].tolist() == ["wsd", "wsd"]
    first, second = _specs(result)
    # the first trial is the suggested point: stable at max_lr, 1-sqrt decay over the
    # last round(0.2 * 16) = 3 steps, momentum held at 0.95
    assert isinstance(first.schedule, schedules.WarmupStableDecay) and first.optimizer == "SGD"
    sched = first.build_schedule()
    expected = [TOP, TOP, TOP, TOP * (1 - math.sqrt(1 / 3)), TOP * (1 - math.sqrt(2 / 3)), 0.0]
    assert [float(sched(s)) for s in (0, 12, 13, 14, 15, 16)] == pytest.approx(expected, rel=1e-6)
    optimizer = first.build_optimizer()
    assert isinstance(optimizer, lr_optimizers.SGD) and first.momentum == 0.95
    # the second, sampled, follows its own parameters step for step
    params = result.study.trials[1].params
    assert SUGGESTION.base_lr <= params["wsd_max_lr"] <= TOP
    sched = second.build_schedule()
    for step in range(2 * STEPS + 1):
        assert float(sched(step)) == pytest.approx(_wsd(step, params), rel=1e-5, abs=1e-9)
    # each epoch's recorded rate is the schedule's at that step count
    for trial, spec in enumerate((first, second)):
        rows = history[history["trial"] == trial]
        assert rows["lr"].tolist() == pytest.approx(
            [float(spec.build_schedule()(e * STEPS)) for e in (1, 2)], rel=1e-5, abs=1e-9)
        assert rows["momentum"].tolist() == pytest.approx([spec.momentum] * 2)


@pytest.mark.slow
def test_a_schedule_free_study_trains_schedule_free_and_reports_at_x(tmp_path):
    train, val = digits(256, 128)
    probe = _AtTheEnd(val)
    result = _tune(tmp_path, ("schedule_free",), callbacks=[probe])
    trials, history = result.trials, result.history
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    first, second = _specs(result)
    # the suggested point: ScheduleFreeSGD (the model's optimizer is SGD) at max_lr,
    # beta 0.9, a warmup of round(0.05 * 16) = 1 step
    assert (first.optimizer, first.schedule, first.momentum) == ("ScheduleFreeSGD", TOP, 0.9)
    assert first.optimizer_config["warmup_steps"] == 1
    params = result.study.trials[1].params
    warmup = round(params["sf_warmup_fraction"] * 2 * STEPS)
    optimizer = second.build_optimizer()
    assert isinstance(optimizer, ScheduleFreeSGD)
    assert (optimizer.warmup_steps, optimizer.momentum) == (warmup, params["sf_beta"])
    assert float(optimizer.learning_rate) == pytest.approx(params["sf_lr"])
    rate = [params["sf_lr"] * min((k + 1) / warmup, 1.0) if warmup else params["sf_lr"]
            for k in range(2 * STEPS)]
    np.testing.assert_allclose(second.table()["lr"], rate, rtol=1e-6)
    # the recorded rate is the next update's, warmup included
    for trial, spec in enumerate((first, second)):
        rows = history[history["trial"] == trial]
        w = spec.optimizer_config["warmup_steps"]
        assert rows["lr"].tolist() == pytest.approx(
            [spec.schedule * (min((e * STEPS + 1) / w, 1.0) if w else 1.0) for e in (1, 2)])
        assert rows["momentum"].tolist() == pytest.approx([spec.momentum] * 2)
    # the reported value is the validation loss at the averaged weights x, not at y
    np.testing.assert_allclose(trials["value"], probe.at_x, rtol=1e-5)
    for at_x, at_y in zip(probe.at_x, probe.at_y):
        assert abs(at_x - at_y) > 1e-4


@pytest.mark.slow
def test_a_mixed_study_builds_each_trials_family(tmp_path):
    families = ("one_cycle", "wsd", "schedule_free")
    result = _tune(tmp_path, families, trials=4, seed=0)
    trials = result.trials
    assert (trials["state"] == "COMPLETE").all()
    assert trials["family"].iloc[0] == "one_cycle"  # the suggested point comes first
    assert set(trials["family"]) == set(families)  # seed 0 draws each family
    kinds = {"one_cycle": ("SGD", schedules.OneCycle), "wsd": ("SGD", schedules.WarmupStableDecay),
             "schedule_free": ("ScheduleFreeSGD", float)}
    for family, spec, trial in zip(trials["family"], _specs(result), result.study.trials):
        name, kind = kinds[family]
        assert spec.optimizer == name and isinstance(spec.schedule, kind)
        if family == "wsd":
            assert float(spec.build_schedule()(2 * STEPS)) == pytest.approx(0.0, abs=1e-9)
        elif family == "one_cycle":
            assert float(spec.build_schedule()(0)) == pytest.approx(
                trial.params["oc_max_lr"] / trial.params["oc_div_factor"], rel=1e-5)
        else:
            assert spec.schedule == pytest.approx(trial.params["sf_lr"])


def test_families_are_checked_against_every_family(tmp_path):
    with pytest.raises(ConfigError, match="unknown family 'wsdx': use one of one_cycle, cyclic, wsd, schedule_free"):
        _tune(tmp_path, ("wsd", "wsdx"))
