"""Schedules: values from the published definitions, invariants, serialization."""

from __future__ import annotations

import itertools
import json
import math

import keras
import numpy as np
import pytest

from lrsearch.core.errors import ConfigError
from lrsearch.schedules import (
    CyclicLR,
    CyclicMomentum,
    LinearWarmup,
    OneCycle,
    OneCycleMomentum,
    RampSustainDecay,
    WarmupCosine,
    WarmupStableDecay,
    scale_lr,
)
from tests.support import reference

pytestmark = pytest.mark.backends  # pure schedule arithmetic: the same values on every backend


def values(schedule, steps):
    return np.asarray(schedule(np.asarray(steps)), dtype=np.float64)


# --------------------------------------------------------------------------- references
# Scalar re-statements of PyTorch's `OneCycleLR.get_lr` and `CyclicLR.get_lr` (torch 2.x
# source, one step at a time, Python floats), kept deliberately close to the original.
def torch_one_cycle(step, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                    div_factor=25.0, final_div_factor=1e4, three_phase=False,
                    base_momentum=0.85, max_momentum=0.95):
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    if three_phase:
        phases = [
            dict(end_step=float(pct_start * total_steps) - 1, start_lr=initial_lr, end_lr=max_lr,
                 start_m=max_momentum, end_m=base_momentum),
            dict(end_step=float(2 * pct_start * total_steps) - 2, start_lr=max_lr, end_lr=initial_lr,
                 start_m=base_momentum, end_m=max_momentum),
            dict(end_step=total_steps - 1, start_lr=initial_lr, end_lr=min_lr,
                 start_m=max_momentum, end_m=max_momentum),
        ]
    else:
        phases = [
            dict(end_step=float(pct_start * total_steps) - 1, start_lr=initial_lr, end_lr=max_lr,
                 start_m=max_momentum, end_m=base_momentum),
            dict(end_step=total_steps - 1, start_lr=max_lr, end_lr=min_lr,
                 start_m=base_momentum, end_m=max_momentum),
        ]

    def cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def lin(start, end, pct):
        return (end - start) * pct + start

    fn = cos if anneal_strategy == "cos" else lin
    start_step = 0
    for i, phase in enumerate(phases):
        end_step = phase["end_step"]
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return fn(phase["start_lr"], phase["end_lr"], pct), fn(phase["start_m"], phase["end_m"], pct)
        start_step = phase["end_step"]
    raise AssertionError("unreachable")


def torch_cyclic(step, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, base_momentum=0.8, max_momentum=0.9):
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    total_size = up + down
    step_ratio = up / total_size
    if mode == "triangular":
        scale_fn, scale_mode = (lambda x: 1.0), "cycle"
    elif mode == "triangular2":
        scale_fn, scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
    else:
        scale_fn, scale_mode = (lambda x: gamma ** x), "iterations"
    cycle = math.floor(1 + step / total_size)
    x = 1.0 + step / total_size - cycle
    scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
    arg = cycle if scale_mode == "cycle" else step
    lr = base_lr + (max_lr - base_lr) * scale_factor * scale_fn(arg)
    momentum = max_momentum - (max_momentum - base_momentum) * scale_factor * scale_fn(arg)
    return lr, momentum


# --------------------------------------------------------------------------- one-cycle
def test_one_cycle_published_values():
    s = OneCycle(max_lr=1.0, total_steps=100)
    v = values(s, [0, 29, 99, 100, 250])
    np.testing.assert_allclose(v[0], 0.04, rtol=1e-6)  # max_lr / div_factor
    np.testing.assert_allclose(v[1], 1.0, rtol=1e-6)  # peak at pct_start * total - 1
    np.testing.assert_allclose(v[2:], 0.04 / 1e4, rtol=1e-5)  # final value, then it holds
    m = values(s.momentum_schedule(), [0, 29, 99, 500])
    np.testing.assert_allclose(m, [0.95, 0.85, 0.95, 0.95], rtol=1e-6)


def test_one_cycle_linear_three_phase_by_hand():
    s = OneCycle(1.0, 100, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
                 final_div_factor=100.0, three_phase=True)
    # phases end at 24, 48, 99: 0.1 -> 1 -> 0.1 -> 0.001
    assert s.end_steps == (24.0, 48.0, 99.0)
    v = values(s, [0, 12, 24, 36, 48, 99, 120])
    np.testing.assert_allclose(v, [0.1, 0.55, 1.0, 0.55, 0.1, 0.001, 0.001], rtol=1e-5)
    m = values(s.momentum_schedule(), [0, 12, 24, 36, 48, 70, 99])
    np.testing.assert_allclose(m, [0.95, 0.90, 0.85, 0.90, 0.95, 0.95, 0.95], rtol=1e-6)


def test_one_cycle_matches_pytorch_step_for_step():
    grid = itertools.product([7, 100, 1000], [0.1, 0.3, 0.45], ["cos", "linear"], [False, True])
    for total_steps, pct_start, anneal_strategy, three_phase in grid:
        kwargs = dict(pct_start=pct_start, anneal_strategy=anneal_strategy, div_factor=20.0,
                      final_div_factor=50.0, three_phase=three_phase, base_momentum=0.8, max_momentum=0.97)
        s = OneCycle(0.5, total_steps, **kwargs)
        steps = np.arange(total_steps)
        ref = np.array([torch_one_cycle(int(t), 0.5, total_steps, **kwargs) for t in steps])
        case = f"total_steps={total_steps}, {kwargs}"
        np.testing.assert_allclose(values(s, steps), ref[:, 0], rtol=2e-5, atol=1e-7, err_msg=case)
        np.testing.assert_allclose(values(s.momentum_schedule(), steps), ref[:, 1], rtol=1e-5, err_msg=case)


def test_one_cycle_from_epochs_is_pytorchs_epochs_form():
    s = OneCycle.from_epochs(1.0, epochs=4, steps_per_epoch=25, pct_start=0.25)
    assert s.total_steps == 100 and s.pct_start == 0.25
    np.testing.assert_allclose(values(s, [0, 24, 99]), [0.04, 1.0, 4e-6], rtol=1e-5)
    with pytest.raises(ConfigError, match="steps_per_epoch=0"):
        OneCycle.from_epochs(1.0, epochs=4, steps_per_epoch=0)


def test_one_cycle_momentum_off():
    assert OneCycle(0.1, 10, cycle_momentum=False).momentum_schedule() is None
    assert CyclicLR(0.01, 0.1, cycle_momentum=False).momentum_schedule() is None


# --------------------------------------------------------------------------- cyclical
def test_cyclic_by_hand():
    tri = CyclicLR(0.1, 1.0, step_size_up=10)
    np.testing.assert_allclose(values(tri, [0, 5, 10, 15, 20, 25]), [0.1, 0.55, 1.0, 0.55, 0.1, 0.55], rtol=1e-6)
    tri2 = CyclicLR(0.1, 1.0, step_size_up=10, mode="triangular2")
    np.testing.assert_allclose(values(tri2, [10, 30, 50]), [1.0, 0.55, 0.325], rtol=1e-6)
    exp = CyclicLR(0.1, 1.0, step_size_up=10, mode="exp_range", gamma=0.9)
    np.testing.assert_allclose(values(exp, [5]), [0.1 + 0.9 * 0.5 * 0.9**5], rtol=1e-6)
    asym = CyclicLR(0.1, 1.0, step_size_up=2, step_size_down=6)
    np.testing.assert_allclose(values(asym, [1, 2, 5, 8]), [0.55, 1.0, 0.55, 0.1], rtol=1e-6)
    m = tri.momentum_schedule()
    np.testing.assert_allclose(values(m, [0, 5, 10, 20]), [0.9, 0.85, 0.8, 0.9], rtol=1e-6)


def test_cyclic_matches_pytorch_step_for_step():
    for kwargs in [
        dict(step_size_up=7),
        dict(step_size_up=5, step_size_down=11),
        dict(step_size_up=6, mode="triangular2"),
        dict(step_size_up=4, step_size_down=9, mode="exp_range", gamma=0.97),
        dict(step_size_up=2000),  # PyTorch's default
    ]:
        s = CyclicLR(0.01, 0.2, **kwargs)
        steps = np.arange(120)
        ref = np.array([torch_cyclic(int(t), 0.01, 0.2, **kwargs) for t in steps])
        np.testing.assert_allclose(values(s, steps), ref[:, 0], rtol=1e-5, atol=1e-8, err_msg=str(kwargs))
        np.testing.assert_allclose(values(s.momentum_schedule(), steps), ref[:, 1], rtol=1e-6, err_msg=str(kwargs))


def torch_scheduler_values(make_scheduler, steps: int) -> np.ndarray:
    """Rate and momentum of PyTorch's own scheduler over `steps` steps: an SGD on one
    parameter, `optimizer.step()` then `scheduler.step()` per batch, as a training loop
    calls them; row t is what step t trains with."""
    torch = reference("torch")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    rows = []
    for _ in range(steps):
        group = optimizer.param_groups[0]
        rows.append((group["lr"], group["momentum"]))
        optimizer.step()
        scheduler.step()
    return np.array(rows, dtype=np.float64)


@pytest.mark.references
def test_one_cycle_matches_torchs_own_one_cycle_lr():
    grid = itertools.product([7, 100], [0.1, 0.3, 0.45], ["cos", "linear"], [False, True])
    for total_steps, pct_start, anneal_strategy, three_phase in grid:
        kwargs = dict(pct_start=pct_start, anneal_strategy=anneal_strategy, div_factor=20.0,
                      final_div_factor=50.0, three_phase=three_phase, base_momentum=0.8, max_momentum=0.97)
        ref = torch_scheduler_values(lambda sched, opt: sched.OneCycleLR(opt, 0.5, total_steps=total_steps, **kwargs),
                                     total_steps)
        s = OneCycle(0.5, total_steps, **kwargs)
        steps = np.arange(total_steps)
        case = f"total_steps={total_steps}, {kwargs}"
        np.testing.assert_allclose(values(s, steps), ref[:, 0], rtol=2e-5, atol=1e-7, err_msg=case)
        np.testing.assert_allclose(values(s.momentum_schedule(), steps), ref[:, 1], rtol=1e-5, err_msg=case)


@pytest.mark.references
def test_cyclic_matches_torchs_own_cyclic_lr():
    for kwargs in [
        dict(step_size_up=7),
        dict(step_size_up=5, step_size_down=11),
        dict(step_size_up=6, mode="triangular2"),
        dict(step_size_up=4, step_size_down=9, mode="exp_range", gamma=0.97),
    ]:
        ref = torch_scheduler_values(
            lambda sched, opt: sched.CyclicLR(opt, 0.01, 0.2, base_momentum=0.8, max_momentum=0.9, **kwargs), 120)
        s = CyclicLR(0.01, 0.2, **kwargs)
        steps = np.arange(120)
        np.testing.assert_allclose(values(s, steps), ref[:, 0], rtol=1e-5, atol=1e-8, err_msg=str(kwargs))
        np.testing.assert_allclose(values(s.momentum_schedule(), steps), ref[:, 1], rtol=1e-6, err_msg=str(kwargs))


# --------------------------------------------------------------------------- others
def test_ramp_sustain_decay_formula():
    args = dict(start_lr=1e-5, max_lr=4e-4, min_lr=1e-5, rampup_epochs=5, sustain_epochs=2, exp_decay=0.8)
    s = RampSustainDecay(**args, steps_per_epoch=3)

    def article(epoch):  # the fine-tuning articles' lrfn(epoch)
        if epoch < 5:
            return (4e-4 - 1e-5) / 5 * epoch + 1e-5
        if epoch < 7:
            return 4e-4
        return (4e-4 - 1e-5) * 0.8 ** (epoch - 7) + 1e-5

    steps = np.arange(60)
    np.testing.assert_allclose(values(s, steps), [article(t // 3) for t in steps], rtol=1e-5)
    np.testing.assert_allclose(values(s, [0, 2, 3, 15, 21, 24]),
                               [1e-5, 1e-5, 8.8e-5, 4e-4, 4e-4, 0.8 * 3.9e-4 + 1e-5], rtol=1e-5)


def test_warmup_cosine_by_hand():
    s = WarmupCosine(base_lr=1.0, total_steps=10, warmup_lr=0.2, warmup_steps=2, hold_steps=2)
    # decay over 6 steps: 0.5 * (1 + cos(pi * k / 6))
    expected = [0.2, 0.6, 1.0, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 6)), 0.75, 0.5, 0.25,
                0.5 * (1 - math.cos(math.pi / 6)), 0.0, 0.0]
    np.testing.assert_allclose(values(s, np.arange(12)), expected, rtol=1e-5, atol=1e-7)


def test_warmup_stable_decay_by_hand():
    # linear warmup 0.2 -> 1.0 over 4 steps, stable, 1-sqrt decay over steps 15..19 to 0.1 at 20
    s = WarmupStableDecay(1.0, 20, warmup_steps=4, warmup_lr=0.2, decay_steps=5, min_lr=0.1)
    assert (s.decay_start, s.decay_length) == (15, 5)
    at = {0: 0.2, 1: 0.4, 3: 0.8, 4: 1.0, 9: 1.0, 14: 1.0, 15: 1.0,
          16: 0.1 + 0.9 * (1 - math.sqrt(0.2)), 17: 0.1 + 0.9 * (1 - math.sqrt(0.4)),
          19: 0.1 + 0.9 * (1 - math.sqrt(0.8)), 20: 0.1, 21: 0.1, 1000: 0.1}
    np.testing.assert_allclose(values(s, list(at)), list(at.values()), rtol=1e-6)
    # cosine warmup from 0 over 4 steps, cosine decay over round(0.25 * 20) = 5 steps
    s = WarmupStableDecay(1.0, 20, warmup_steps=4, warmup_shape="cosine", decay_fraction=0.25,
                          decay_shape="cosine")
    at = {0: 0.0, 1: 0.5 * (1 - math.cos(math.pi / 4)), 2: 0.5, 3: 0.5 * (1 - math.cos(3 * math.pi / 4)),
          4: 1.0, 15: 1.0, 16: 0.5 * (1 + math.cos(math.pi * 0.2)), 18: 0.5 * (1 + math.cos(math.pi * 0.6)),
          19: 0.5 * (1 + math.cos(math.pi * 0.8)), 20: 0.0, 25: 0.0}
    np.testing.assert_allclose(values(s, list(at)), list(at.values()), rtol=1e-6, atol=1e-7)
    # no warmup, linear decay over round(0.1 * 30) = 3 steps
    s = WarmupStableDecay(2.0, 30, decay_fraction=0.1, decay_shape="linear", min_lr=0.5)
    at = {0: 2.0, 26: 2.0, 27: 2.0, 28: 1.5, 29: 1.0, 30: 0.5, 31: 0.5}
    np.testing.assert_allclose(values(s, list(at)), list(at.values()), rtol=1e-6)
    # the whole run is the decay: warmup over 2 steps, then straight into it
    s = WarmupStableDecay(1.0, 6, warmup_steps=2, decay_steps=4, decay_shape="linear")
    np.testing.assert_allclose(values(s, np.arange(8)), [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0], atol=1e-7)


def test_warmup_stable_decay_in_a_compiled_function(compiled):
    s = WarmupStableDecay(0.5, 100, warmup_steps=10, decay_steps=20)
    fn = compiled(lambda step: s(step))
    for step, expected in ((0, 0.0), (5, 0.25), (50, 0.5), (85, 0.5 * (1 - math.sqrt(0.25))), (100, 0.0)):
        np.testing.assert_allclose(float(fn(step)), expected, rtol=1e-6, atol=1e-7)


def test_linear_warmup_in_front_of_a_schedule_and_a_constant():
    const = LinearWarmup(0.1, warmup_steps=10)
    np.testing.assert_allclose(values(const, [0, 5, 10, 99]), [0.0, 0.05, 0.1, 0.1], rtol=1e-6)
    inner = OneCycle(1.0, 100)
    s = LinearWarmup(inner, warmup_steps=4, warmup_lr=0.0)
    np.testing.assert_allclose(values(s, [0, 2]), [0.0, 0.02], rtol=1e-5)
    np.testing.assert_allclose(values(s, np.arange(4, 110)), values(inner, np.arange(0, 106)), rtol=1e-6)
    keras_inner = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    s = LinearWarmup(keras_inner, warmup_steps=5, warmup_lr=0.05)
    np.testing.assert_allclose(values(s, [0, 1, 5, 15]), [0.05, 0.06, 0.1, 0.1 * 0.5], rtol=1e-5)


def test_scale_lr():
    assert scale_lr(0.1, 512) == pytest.approx(0.2)
    assert scale_lr(0.1, 64, base_batch_size=128) == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="batch_size"):
        scale_lr(0.1, 0)


# --------------------------------------------------------------------------- invariants
# (schedule, step where the warmup ends / peak is reached, peak, last step, final value)
FINITE = {
    "one_cycle": (OneCycle(0.3, 200), 59, 0.3, 199, 0.3 / 25 / 1e4),
    "one_cycle_3": (OneCycle(0.3, 200, three_phase=True, anneal_strategy="linear"), 59, 0.3, 199, 0.3 / 25 / 1e4),
    "ramp": (RampSustainDecay(0.01, 0.3, 0.001, 4, 2, 0.5, steps_per_epoch=5), 20, 0.3, None, 0.001),
    "warmup_cosine": (WarmupCosine(0.3, 200, warmup_lr=0.01, warmup_steps=30), 30, 0.3, 200, 0.0),
    "linear_warmup": (LinearWarmup(WarmupCosine(0.3, 170), 30, 0.01), 30, 0.3, 200, 0.0),
    "wsd": (WarmupStableDecay(0.3, 200, warmup_steps=30, warmup_lr=0.01, min_lr=0.003), 30, 0.3, 200, 0.003),
    "wsd_cos": (WarmupStableDecay(0.3, 200, 30, 0.0, "cosine", 0.5, None, "cosine"), 30, 0.3, 200, 0.0),
}


def test_warmup_rises_peak_is_reached_end_holds():
    for name, (s, peak_step, peak, last, final) in FINITE.items():
        v = values(s, np.arange(0, 600))
        assert np.all(np.diff(v[: peak_step + 1]) >= 0) and v[peak_step] > v[0], f"{name} rises during warmup"
        np.testing.assert_allclose(v.max(), peak, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(v[peak_step], peak, rtol=1e-6, err_msg=name)
        assert np.all(np.diff(v[peak_step:]) <= 1e-9) or name == "one_cycle_3", f"{name} decays after the peak"
        np.testing.assert_allclose(v[-1], final, rtol=1e-4, atol=1e-9, err_msg=name)
        if last is not None:
            np.testing.assert_allclose(v[last:], final, rtol=1e-4, atol=1e-9, err_msg=name)


# --------------------------------------------------------------------------- serialization
ALL = [
    OneCycle(0.2, 300, pct_start=0.4, anneal_strategy="linear", three_phase=True),
    OneCycle(0.2, 300).momentum_schedule(),
    CyclicLR(0.001, 0.1, step_size_up=40, step_size_down=60, mode="exp_range", gamma=0.999),
    CyclicLR(0.001, 0.1, step_size_up=40, mode="triangular2").momentum_schedule(),
    RampSustainDecay(1e-5, 1e-3, 1e-5, 3, 1, 0.7, steps_per_epoch=12),
    WarmupCosine(0.1, 500, warmup_lr=0.001, warmup_steps=50, hold_steps=20),
    LinearWarmup(CyclicLR(0.01, 0.1, step_size_up=10), 25, 0.001),
    LinearWarmup(keras.optimizers.schedules.CosineDecay(0.1, 100), 5),
    LinearWarmup(0.05, 10),
    WarmupStableDecay(0.1, 400, warmup_steps=40, warmup_lr=0.001, warmup_shape="cosine", decay_fraction=0.15,
                      decay_shape="linear", min_lr=0.001),
    WarmupStableDecay(0.1, 400, decay_steps=77),
    LinearWarmup(WarmupStableDecay(0.1, 400), 25),
]


def test_config_round_trip():
    for schedule in ALL:
        config = schedule.get_config()
        clone = type(schedule).from_config(json.loads(json.dumps(config)))
        assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
        serialized = keras.saving.serialize_keras_object(schedule)
        assert serialized["registered_name"] == f"lrsearch>{type(schedule).__name__}"
        restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
        steps = np.arange(0, 700, 7)
        np.testing.assert_array_equal(values(restored, steps), values(schedule, steps), err_msg=repr(schedule))


def test_get_config_is_the_constructor_arguments():
    import inspect

    for schedule in ALL:
        params = list(inspect.signature(type(schedule).__init__).parameters)[1:]
        assert list(schedule.get_config()) == params


def test_schedule_runs_in_a_compiled_function(compiled):
    s = OneCycle(1.0, 100, three_phase=True)
    fn = compiled(lambda step: s(step))
    for step in (0, 29, 57, 99):
        expected = torch_one_cycle(step, 1.0, 100, three_phase=True)[0]
        np.testing.assert_allclose(float(fn(step)), expected, rtol=2e-5)
    cyclic = CyclicLR(0.01, 0.2, step_size_up=7)
    fn = compiled(lambda step: cyclic(step))
    for step in (0, 7, 14, 84, 87):  # 84 = 6 whole cycles: the rate is back at base_lr
        expected = torch_cyclic(step, 0.01, 0.2, step_size_up=7)[0]
        np.testing.assert_allclose(float(fn(step)), expected, rtol=1e-6)


# --------------------------------------------------------------------------- bad arguments
BAD = [
    (lambda: OneCycle(1.0, -3), "Argument `total_steps` must be > 0. Received: total_steps=-3"),
    (lambda: OneCycle(0.0, 10), "Argument `max_lr` must be > 0. Received: max_lr=0.0"),
    (lambda: OneCycle(1.0, 10, pct_start=1.0), "Argument `pct_start` must be in (0, 1). Received: pct_start=1.0"),
    (lambda: OneCycle(1.0, 10, pct_start=0), "Argument `pct_start` must be in (0, 1). Received: pct_start=0"),
    (lambda: OneCycle(1.0, 10, anneal_strategy="cosine"), "Argument `anneal_strategy` must be one of 'cos', 'linear'. Received: anneal_strategy='cosine'"),
    (lambda: OneCycle(1.0, 10, base_momentum=0.99), "Argument `base_momentum` must be <= max_momentum=0.95. Received: base_momentum=0.99"),
    (lambda: OneCycle(1.0, 2.5), "Argument `total_steps` must be a whole number. Received: total_steps=2.5"),
    (lambda: CyclicLR(0.1, 1.0, mode=str.upper), "Argument `mode` must be one of"),
    (lambda: CyclicLR(0.1, 1.0, mode="exp"), "Received: mode='exp'"),
    (lambda: CyclicLR(1.0, 0.1), "Argument `base_lr` must be < max_lr=0.1. Received: base_lr=1.0"),
    (lambda: CyclicLR(0.1, 1.0, step_size_down=0), "Argument `step_size_down` must be > 0. Received: step_size_down=0"),
    (lambda: CyclicLR(0.1, 1.0, gamma=1.5), "Argument `gamma` must be in (0, 1]. Received: gamma=1.5"),
    (lambda: RampSustainDecay(0.0, 1.0, 0.0, rampup_epochs=-1), "Argument `rampup_epochs` must be >= 0. Received: rampup_epochs=-1"),
    (lambda: RampSustainDecay(0.0, 1.0, 0.0, 2, steps_per_epoch=0), "Argument `steps_per_epoch` must be > 0. Received: steps_per_epoch=0"),
    (lambda: WarmupCosine(0.1, 10, warmup_steps=8, hold_steps=2), "Argument `total_steps` must be > warmup_steps + hold_steps = 10. Received: total_steps=10"),
    (lambda: WarmupCosine(0.1, 100, warmup_steps=-5), "Argument `warmup_steps` must be >= 0. Received: warmup_steps=-5"),
    (lambda: LinearWarmup("fast", 10), "Argument `schedule_or_lr` must be a number. Received: schedule_or_lr='fast'"),
    (lambda: OneCycleMomentum(10, max_momentum=1.2), "Argument `max_momentum` must be in [0, 1]. Received: max_momentum=1.2"),
    (lambda: CyclicMomentum(step_size_up=-1), "Argument `step_size_up` must be > 0. Received: step_size_up=-1"),
    (lambda: WarmupStableDecay(0.1, 100, decay_shape="sqrt"), "Argument `decay_shape` must be one of 'linear', 'cosine', '1-sqrt'. Received: decay_shape='sqrt'"),
    (lambda: WarmupStableDecay(0.1, 100, warmup_shape="exp"), "Argument `warmup_shape` must be one of 'linear', 'cosine'. Received: warmup_shape='exp'"),
    (lambda: WarmupStableDecay(0.1, 100, decay_fraction=0), "Argument `decay_fraction` must be in (0, 1]. Received: decay_fraction=0"),
    (lambda: WarmupStableDecay(0.1, 100, decay_steps=0), "Argument `decay_steps` must be > 0. Received: decay_steps=0"),
    (lambda: WarmupStableDecay(0.1, 100, min_lr=0.2), "Argument `min_lr` must be <= max_lr=0.1. Received: min_lr=0.2"),
    (lambda: WarmupStableDecay(0.1, 100, warmup_steps=90, decay_steps=20), "Argument `decay_steps` must be such that the decay (20 steps) fits in total_steps - warmup_steps = 10. Received: decay_steps=20"),
    (lambda: WarmupStableDecay(0.1, 100, warmup_steps=90), "Argument `decay_fraction` must be such that the decay (20 steps) fits in total_steps - warmup_steps = 10. Received: decay_fraction=0.2"),
]


def test_bad_arguments_are_refused_with_the_name_and_value():
    for make, message in BAD:
        with pytest.raises(ConfigError) as info:
            make()
        assert message in str(info.value)
        assert "\n" not in str(info.value)
