"""Schedule halving: rungs of complete schedules, compressed to each rung's length."""

from __future__ import annotations

import json

import optuna
import pytest
from tests.support.study_workload import SUGGESTION, build_model, digits

from lrsearch.core.errors import ConfigError
from lrsearch.study.halving import RungSpace
from lrsearch.study.options import StudyOptions
from lrsearch.study.results import RUNG, SPEC
from lrsearch.study.space import SearchSpace
from lrsearch.export.spec import ScheduleSpec
from lrsearch.study.tune import tune

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(epochs: int, **kw) -> SearchSpace:
    return SearchSpace(base_lr=0.003, max_lr=0.3, steps_per_epoch=8, epochs=epochs, **kw)


def test_a_rung_compresses_every_family_to_its_steps():
    full = _space(8, families=("one_cycle", "cyclic", "wsd"))
    rung = RungSpace(**{**full.__dict__, "epochs": 2, "full_epochs": 8})
    # the rung draws the full run's parameters (clr_gamma's range is the full run's)
    assert [p.__dict__ for p in rung.params()] == [p.__dict__ for p in full.params()]
    oc = {**full.suggested_params(), "family": "one_cycle"}
    assert rung.build(oc).learning_rate.total_steps == 16
    assert full.build(oc).learning_rate.total_steps == 64
    wsd = {"family": "wsd", "wsd_max_lr": 0.1, "wsd_warmup_fraction": 0.1, "wsd_decay_fraction": 0.25,
           "wsd_decay_shape": "linear", "momentum_max": 0.9, "momentum_span": 0.05}
    cfg = rung.build(wsd).learning_rate.get_config()
    assert (cfg["total_steps"], cfg["warmup_steps"]) == (16, 2)
    # a cyclical schedule keeps its cycles: 4 epochs up of 8 -> 1 epoch up of 2; the
    # amplitude left at the end is the same, so gamma per step is gamma ** 4
    clr = {"family": "cyclic", "clr_base_lr": 0.01, "clr_max_lr": 0.1, "clr_mode": "exp_range",
           "clr_step_epochs": 4, "clr_gamma": 0.99, "momentum_max": 0.9, "momentum_span": 0.05}
    long_cfg, short = full.build(clr).learning_rate.get_config(), rung.build(clr)
    short_cfg = short.learning_rate.get_config()
    assert (long_cfg["step_size_up"], short_cfg["step_size_up"]) == (32, 8)
    assert short_cfg["gamma"] == pytest.approx(0.99**4)
    assert short.momentum is not None and short.momentum.get_config()["step_size_up"] == 8


def test_halving_needs_the_optuna_backend_and_a_factor_of_two_or_more():
    with pytest.raises(ConfigError, match="optuna backend only"):
        StudyOptions(fidelity="schedule-halving", backend="keras-tuner")
    with pytest.raises(ConfigError, match="Argument `eta` must be an integer >= 2. Received: eta=1"):
        StudyOptions(eta=1)
    with pytest.raises(ConfigError, match="Argument `fidelity` must be one of"):
        StudyOptions(fidelity="hyperband")


def test_eight_trials_halve_to_two_complete_schedules(tmp_path):
    # 8 trials of 4 epochs, eta 2: 8 schedules of 1 epoch, 4 of 2, 2 of 4
    train, val = digits(256, 128)  # 8 steps per epoch in batches of 32
    result = tune(build_model, train, validation_data=val, suggestion=SUGGESTION, epochs=4, trials=8,
                  fidelity="schedule-halving", eta=2, seed=1, study_name="h", out_dir=tmp_path / "h")
    trials = result.trials
    assert (trials["state"] == "COMPLETE").all()
    assert trials["rung"].tolist() == [0] * 8 + [1] * 4 + [2] * 2
    assert trials["epochs_run"].tolist() == [1] * 8 + [2] * 4 + [4] * 2
    frozen = {t.number: t for t in result.study.get_trials()}
    for number, rung in zip(trials["number"], trials["rung"]):
        t = frozen[number]
        epochs = [1, 2, 4][rung]
        spec = t.user_attrs[SPEC]
        assert (spec["epochs"], spec["steps_per_epoch"]) == (epochs, 8)
        if t.params["family"] != "cyclic":  # one-cycle spans exactly the rung
            assert ScheduleSpec.from_dict(spec).schedule.total_steps == 8 * epochs
        assert t.user_attrs[RUNG]["top"] == (rung == 2)
    # each rung promotes the best half of the one below, with the same parameters
    for rung, size in ((1, 4), (2, 2)):
        below = trials[trials["rung"] == rung - 1].sort_values("value")
        promoted = [frozen[n] for n in trials.loc[trials["rung"] == rung, "number"]]
        parents = [t.user_attrs["promoted_from"] for t in promoted]
        assert sorted(parents) == sorted(below["number"].head(size))
        assert all(t.params == frozen[p].params for t, p in zip(promoted, parents))
    # the first trial is the suggested schedule; the best is a full-length one
    assert frozen[0].params["oc_max_lr"] == pytest.approx(SUGGESTION.max_lr)
    top = trials[trials["rung"] == 2]
    assert result.best.provenance["trial"] == int(top.loc[top["value"].idxmin(), "number"])
    assert result.best.epochs == 4
    saved = json.loads((tmp_path / "h" / "schedule.json").read_text())
    assert saved["epochs"] == 4
