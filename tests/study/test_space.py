"""The search space: inside the bounds, conditional parameters, both backends, schedules."""

from __future__ import annotations

import math
import random

import optuna
import pytest

from lrsearch.core.errors import ConfigError
from lrsearch.study.sampling import KerasTunerSampler, OptunaSampler
from lrsearch.study.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

BASE, TOP = 1e-3, 0.3


def _space(**kw):
    kw.setdefault("steps_per_epoch", 10)
    kw.setdefault("epochs", 5)
    return SearchSpace(base_lr=BASE, max_lr=TOP, **kw)


def _optuna_points(space, n=300, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(space.sample(OptunaSampler(trial)))
        study.tell(trial, 0.0)
    return points


def _keras_tuner_points(space, n=300, seed=0):
    """Random points the way KerasTuner's random oracle draws them: every active
    registered parameter gets a random value, then the space is sampled again."""
    import keras_tuner

    registered = keras_tuner.HyperParameters()
    first = space.sample(KerasTunerSampler(registered))
    points = [first]
    rng = random.Random(seed)
    for _ in range(n):
        hp = keras_tuner.HyperParameters()
        hp.merge(registered.space)
        for p in hp.space:
            if hp.is_active(p):
                hp.values[p.name] = p.random_sample(rng.randint(0, 10**9))
        points.append(space.sample(KerasTunerSampler(hp)))
    return points


def _check_point(space, p):
    assert p["family"] in space.families
    if p["family"] == "one_cycle":
        assert BASE <= p["oc_max_lr"] <= TOP
        assert 0.1 <= p["oc_pct_start"] <= 0.5
        assert 5 <= p["oc_div_factor"] <= 100
        assert 10 <= p["oc_final_div_factor"] <= 1e4
        assert p["oc_anneal_strategy"] in ("cos", "linear")
        assert not any(k.startswith("clr_") for k in p)
    else:
        mid = math.sqrt(BASE * TOP)
        assert BASE <= p["clr_base_lr"] <= mid + 1e-12
        assert mid - 1e-12 <= p["clr_max_lr"] <= TOP
        assert 2 <= p["clr_step_epochs"] <= 8 and isinstance(p["clr_step_epochs"], int)
        assert ("clr_gamma" in p) == (p["clr_mode"] == "exp_range")
        if "clr_gamma" in p:
            total = space.total_steps
            # amplitude left at the end of training between 1% and 50%
            assert 0.01 - 1e-9 <= p["clr_gamma"] ** total <= 0.5 + 1e-9
        assert not any(k.startswith("oc_") for k in p)


@pytest.mark.parametrize("points", [_optuna_points, _keras_tuner_points], ids=["optuna", "kt"])
def test_samples_stay_inside_the_bounds_and_respect_conditions(points):
    space = _space()
    drawn = points(space)
    for p in drawn:
        _check_point(space, p)
        assert 0.85 <= p["momentum_max"] <= 0.99 and 0 <= p["momentum_span"] <= 0.1
        assert "weight_decay" not in p and "label_smoothing" not in p
    families = {p["family"] for p in drawn}
    modes = {p.get("clr_mode") for p in drawn} - {None}
    assert families == {"one_cycle", "cyclic"}
    assert modes == {"triangular", "triangular2", "exp_range"}
    # log-uniform peak: about half the one-cycle peaks lie below the geometric midpoint
    peaks = [p["oc_max_lr"] for p in drawn if p["family"] == "one_cycle"]
    below = sum(x < math.sqrt(BASE * TOP) for x in peaks) / len(peaks)
    assert 0.35 < below < 0.65


def test_candidates_and_label_smoothing_come_from_the_evidence():
    space = _space(
        families=("cyclic",),
        momentum_candidates=(0.9, 0.95, 0.9),
        weight_decay_candidates=[1e-4, 0.0],
        label_smoothing=True,
    )
    assert space.momentum_candidates == (0.9, 0.95)
    drawn = _optuna_points(space, n=60)
    assert {p["momentum_max"] for p in drawn} == {0.9, 0.95}
    assert {p["weight_decay"] for p in drawn} == {0.0, 1e-4}
    assert all(0 <= p["label_smoothing"] <= 0.2 for p in drawn)
    assert {p["family"] for p in drawn} == {"cyclic"}


def test_no_momentum_parameters_for_an_optimizer_without_momentum():
    space = _space(momentum=False)
    names = [p.name for p in space.params()]
    assert "momentum_max" not in names and "momentum_span" not in names


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"base_lr": 0.1, "max_lr": 0.1}, "base_lr < max_lr"),
        ({"base_lr": -1.0, "max_lr": 0.1}, "base_lr < max_lr"),
        ({"base_lr": 1e-3, "max_lr": float("nan")}, "finite"),
        ({"families": ("one_cycle", "step")}, "unknown family 'step'"),
        ({"families": ()}, "at least one"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be >= 1"),
        ({"momentum_candidates": (1.2,)}, "momentum candidates"),
        ({"weight_decay_candidates": (-1e-4,)}, "weight decay candidates"),
    ],
)
def test_bad_spaces_are_refused_with_one_line(kw, needle):
    args = {"base_lr": BASE, "max_lr": TOP, "steps_per_epoch": 10, "epochs": 5, **kw}
    with pytest.raises(ConfigError, match=needle) as info:
        SearchSpace(**args)
    assert "\n" not in str(info.value)


def test_dict_round_trip():
    space = _space(momentum_candidates=(0.9,), weight_decay_candidates=(1e-4,))
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_one_cycle_built_from_parameters_ends_when_training_ends():
    space = _space(steps_per_epoch=8, epochs=5)  # 40 steps
    params = {
        "family": "one_cycle",
        "oc_max_lr": 0.2,
        "oc_pct_start": 0.25,
        "oc_div_factor": 20.0,
        "oc_final_div_factor": 100.0,
        "oc_anneal_strategy": "linear",
        "momentum_max": 0.95,
        "momentum_span": 0.1,
    }
    setup = space.build(params)
    lr = setup.learning_rate
    assert lr.get_config()["total_steps"] == 40
    assert float(lr(0)) == pytest.approx(0.2 / 20, rel=1e-5)  # start = peak / div
    assert float(lr(9)) == pytest.approx(0.2, rel=1e-5)  # PyTorch peak at pct_start * total - 1
    assert float(lr(39)) == pytest.approx(0.2 / 20 / 100, rel=1e-4)  # end of the last step
    mom = setup.momentum
    assert float(mom(0)) == pytest.approx(0.95, rel=1e-5)
    assert float(mom(9)) == pytest.approx(0.85, rel=1e-5)
    assert setup.weight_decay is None and setup.label_smoothing is None


def test_cyclic_built_from_parameters_uses_epochs_of_steps():
    space = _space(steps_per_epoch=10, epochs=20)
    params = {
        "family": "cyclic",
        "clr_base_lr": 0.01,
        "clr_max_lr": 0.1,
        "clr_mode": "triangular2",
        "clr_step_epochs": 3,
        "weight_decay": 1e-4,
    }
    setup = space.build(params)
    lr = setup.learning_rate
    assert lr.get_config()["step_size_up"] == 30
    assert float(lr(0)) == pytest.approx(0.01, rel=1e-5)
    assert float(lr(30)) == pytest.approx(0.1, rel=1e-5)
    assert float(lr(60)) == pytest.approx(0.01, rel=1e-5)
    assert float(lr(90)) == pytest.approx(0.01 + 0.09 / 2, rel=1e-5)  # triangular2 halves the 2nd cycle
    assert setup.momentum is None  # no momentum parameters sampled: the optimizer's own
    assert setup.weight_decay == 1e-4


def test_build_refuses_incomplete_parameters():
    with pytest.raises(ConfigError, match="oc_pct_start"):
        _space().build({"family": "one_cycle", "oc_max_lr": 0.1})


def test_wsd_and_schedule_free_samples_stay_in_their_ranges():
    space = _space(families=("wsd", "schedule_free"))
    drawn = _optuna_points(space, n=200)
    assert {p["family"] for p in drawn} == {"wsd", "schedule_free"}
    for p in drawn:
        if p["family"] == "wsd":
            assert BASE <= p["wsd_max_lr"] <= TOP
            assert 0 <= p["wsd_warmup_fraction"] <= 0.1 and 0.1 <= p["wsd_decay_fraction"] <= 0.5
            assert p["wsd_decay_shape"] in ("linear", "cosine", "1-sqrt")
            assert not any(k.startswith("sf_") for k in p)
        else:
            assert BASE <= p["sf_lr"] <= TOP and 0 <= p["sf_warmup_fraction"] <= 0.1
            assert p["sf_beta"] in (0.9, 0.95, 0.98)
            assert not any(k.startswith("wsd_") for k in p)
        space.build(p)  # every sampled point builds
    assert _space().families == ("one_cycle", "cyclic")  # the default is unchanged
    # the Schedule-Free rate reaches up to peak_max_lr, as one-cycle's peak
    wide = _space(families=("schedule_free",), peak_max_lr=0.9)
    rates = [p["sf_lr"] for p in _optuna_points(wide, n=100)]
    assert BASE <= min(rates) and max(rates) <= 0.9 and max(rates) > TOP


def test_wsd_built_from_parameters():
    space = _space(steps_per_epoch=10, epochs=10)  # 100 steps
    setup = space.build({"family": "wsd", "wsd_max_lr": 0.2, "wsd_warmup_fraction": 0.05,
                         "wsd_decay_fraction": 0.2, "wsd_decay_shape": "1-sqrt",
                         "momentum_max": 0.93, "momentum_span": 0.05})
    lr = setup.learning_rate
    assert (lr.warmup_steps, lr.decay_start, lr.total_steps) == (5, 80, 100)
    assert float(lr(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(lr(5)) == pytest.approx(0.2, rel=1e-6) and float(lr(80)) == pytest.approx(0.2, rel=1e-6)
    assert float(lr(85)) == pytest.approx(0.2 * (1 - math.sqrt(0.25)), rel=1e-6)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-9)
    assert setup.momentum == 0.93 and setup.optimizer is None
    without = {k: v for k, v in setup.params.items() if not k.startswith("momentum")}
    assert space.build(without).momentum is None  # no momentum sampled: the optimizer's own


def test_schedule_free_built_from_parameters_makes_its_optimizer():
    import keras

    from lrsearch.optimizers import ScheduleFreeAdamW, ScheduleFreeSGD, as_schedule_free
    from lrsearch.export.spec import ScheduleSpec

    space = _space(steps_per_epoch=10, epochs=6, weight_decay_candidates=(0.01,))  # 60 steps
    setup = space.build({"family": "schedule_free", "sf_lr": 0.004, "sf_warmup_fraction": 0.1, "sf_beta": 0.95,
                         "momentum_max": 0.9, "momentum_span": 0.0, "weight_decay": 0.01})
    assert (setup.learning_rate, setup.momentum, setup.weight_decay) == (0.004, 0.95, 0.01)
    assert setup.optimizer == "schedule_free" and dict(setup.optimizer_config) == {"warmup_steps": 6}
    for user, cls in ((keras.optimizers.Adam(), ScheduleFreeAdamW), (keras.optimizers.SGD(momentum=0.9), ScheduleFreeSGD)):
        opt = as_schedule_free(user, learning_rate=setup.learning_rate, momentum=setup.momentum,
                               weight_decay=setup.weight_decay, **setup.optimizer_config)
        assert type(opt) is cls and opt.warmup_steps == 6 and opt.weight_decay == 0.01
        table = ScheduleSpec(setup.learning_rate, optimizer=opt, steps_per_epoch=10, epochs=6).table()
        assert table["lr"].iloc[0] == pytest.approx(0.004 / 6) and table["lr"].iloc[5:].eq(0.004).all()
        assert set(table["momentum"]) == {0.95}


# ---------------------------------------------------------------- from a suggestion


def _suggestion(problems=()):
    from lrsearch.rangetest.analysis import LRSuggestion

    return LRSuggestion(base_lr=1e-3, max_lr=0.03, steepest_lr=0.01, valley_lr=0.005,
                        min_loss_lr=0.2, problems=problems,
                        warnings=tuple("w" for _ in problems))


def test_from_suggestion_searches_one_cycle_peaks_up_to_the_loss_minimum():
    space = SearchSpace.from_suggestion(_suggestion(), steps_per_epoch=10, epochs=4)
    params = {p.name: p for p in space.params()}
    assert (params["oc_max_lr"].low, params["oc_max_lr"].high) == (1e-3, 0.2)
    assert (params["clr_base_lr"].low, params["clr_max_lr"].high) == (1e-3, 0.03)  # CLR as before
    falling = SearchSpace.from_suggestion(_suggestion(("still_falling",)), steps_per_epoch=10, epochs=4)
    assert {p.name: p for p in falling.params()}["oc_max_lr"].high == pytest.approx(0.6)
    assert SearchSpace.from_dict(space.to_dict()) == space
    with pytest.raises(ConfigError, match="peak_max_lr"):
        _space(peak_max_lr=0.1)  # below max_lr = 0.3


def test_suggested_params_are_the_suggested_one_cycle_inside_the_space():
    space = SearchSpace.from_suggestion(_suggestion(), steps_per_epoch=10, epochs=4,
                                        weight_decay_candidates=(1e-4, 1e-2))
    p = space.suggested_params()
    assert p == {"family": "one_cycle", "oc_max_lr": 0.03, "oc_pct_start": 0.3, "oc_div_factor": 25.0,
                 "oc_final_div_factor": 1e4, "oc_anneal_strategy": "cos", "momentum_max": 0.95,
                 "momentum_span": 0.1, "weight_decay": 1e-4}
    for param in space.params():
        if param.name in p and param.kind != "categorical":
            assert param.low <= p[param.name] <= param.high
    sched = space.build(p).learning_rate
    assert float(sched(11)) == pytest.approx(0.03)  # the peak: step 0.3 * 40 - 1
    cyclic = _space(families=("cyclic",), momentum=False).suggested_params()
    assert cyclic == {"family": "cyclic", "clr_base_lr": BASE, "clr_max_lr": TOP,
                      "clr_mode": "triangular", "clr_step_epochs": 2}


def test_the_opening_lowers_the_suggested_peak_by_half_decades_down_to_its_bound():
    space = SearchSpace(base_lr=0.002, max_lr=0.02, steps_per_epoch=10, epochs=4)
    first = space.suggested_params()
    opening = space.opening_params(5)  # 0.02, 0.02 / 10 ** 0.5, 0.002; then base_lr again: stop
    assert [o["oc_max_lr"] for o in opening] == pytest.approx([0.02, 0.0063246, 0.002], rel=1e-4)
    assert all({k: v for k, v in o.items() if k != "oc_max_lr"} == {k: v for k, v in first.items()
                                                                    if k != "oc_max_lr"} for o in opening)
    assert space.opening_params(1) == [first] and len(space.opening_params(2)) == 2
    # CLR's peak is bounded below by the geometric middle of the bounds: sqrt(0.002 * 0.02)
    cyclic = SearchSpace(base_lr=0.002, max_lr=0.02, steps_per_epoch=10, epochs=4, families=("cyclic",))
    assert [o["clr_max_lr"] for o in cyclic.opening_params(3)] == pytest.approx([0.02, 0.0063246], rel=1e-4)


@pytest.mark.parametrize(
    "families,expected",
    [
        (("wsd",), {"family": "wsd", "wsd_max_lr": TOP, "wsd_warmup_fraction": 0.0,
                    "wsd_decay_fraction": 0.2, "wsd_decay_shape": "1-sqrt"}),
        (("schedule_free",), {"family": "schedule_free", "sf_lr": TOP, "sf_warmup_fraction": 0.05,
                              "sf_beta": 0.9}),
        (("schedule_free", "wsd"), {"family": "schedule_free", "sf_lr": TOP,
                                    "sf_warmup_fraction": 0.05, "sf_beta": 0.9}),
        (("wsd", "cyclic"), {"family": "cyclic", "clr_base_lr": BASE, "clr_max_lr": TOP,
                             "clr_mode": "triangular", "clr_step_epochs": 2}),
    ],
)
def test_suggested_params_without_one_cycle_are_a_point_of_a_searched_family(families, expected):
    space = _space(families=families, momentum=False)
    p = space.suggested_params()
    assert p == expected
    params = {q.name: q for q in space.params()}
    for name, value in p.items():  # every value is a value of the space, active in it
        param = params[name]
        assert param.active(p)
        if param.kind == "categorical":
            assert value in param.choices
        else:
            assert param.low <= value <= param.high
    setup = space.build(p)  # 5 epochs of 10 steps
    if p["family"] == "wsd":  # stable at max_lr, 1-sqrt decay over the last 10 steps
        assert [float(setup.learning_rate(s)) for s in (0, 39, 40, 45, 50)] == pytest.approx(
            [TOP, TOP, TOP, TOP * (1 - math.sqrt(0.5)), 0.0])
    elif p["family"] == "schedule_free":
        assert (setup.learning_rate, setup.momentum, setup.optimizer_config) == (
            TOP, 0.9, {"warmup_steps": 2})  # round(0.05 * 50) = 2 (banker's rounding of 2.5)
