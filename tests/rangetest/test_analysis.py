"""Curve analysis: smoothing and bounds on synthetic curves whose shape is known."""

from __future__ import annotations

import numpy as np
import pytest

from lrsearch.rangetest.analysis import MIN_POINTS, LRSuggestion, suggest
from lrsearch.rangetest.curve import smooth_loss, trim_curve
from lrsearch.core.errors import ConfigError, CurveError
from tests.support import DATA


def _piecewise(x):
    """Loss in log10(lr): flat 3.0 below -4, falls 1 per decade to -1, flat to 0, then up."""
    y = np.where(x < -4, 3.0, 3.0 - (x + 4))
    y = np.where(x > -1, 0.0, y)
    return y + np.where(x > 0, 10 * x**2, 0.0) + 1.0


def _logistic(x, center=-2.5, rise=-0.3):
    return 0.3 + 2 / (1 + np.exp(3 * (x - center))) + np.exp(3 * (x - rise))


# ---------------------------------------------------------------- smoothing


def test_smooth_loss_matches_the_recurrence_by_hand():
    loss = np.array([2.0, 1.0, 4.0, 3.0])
    beta = 0.9
    avg, expected = 0.0, []
    for i, v in enumerate(loss):
        avg = beta * avg + (1 - beta) * v
        expected.append(avg / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(smooth_loss(loss, beta), expected, rtol=1e-12)
    # first value is the first loss (debiased), a constant stays constant
    assert smooth_loss(loss, beta)[0] == pytest.approx(2.0)
    np.testing.assert_allclose(smooth_loss(np.full(50, 1.7), 0.98), 1.7, rtol=1e-12)
    np.testing.assert_array_equal(smooth_loss(loss, 0.0), loss)


def test_smooth_loss_refuses_a_bad_factor():
    with pytest.raises(ConfigError, match="smooth"):
        smooth_loss([1.0, 2.0], 1.0)


def test_trim_cuts_at_nan_and_divergence_and_sorts():
    lr = np.geomspace(1e-4, 1, 20)
    loss = np.linspace(2, 1, 20)
    loss[12] = np.nan
    tl, tloss = trim_curve(lr[::-1], loss[::-1])  # reversed order is sorted back
    np.testing.assert_array_equal(tloss, loss[:12])
    assert tl.size == 12 and np.all(np.diff(tl) > 0)
    # divergence: the average of 1,1,...,1,100 exceeds 4 x min at the spike
    loss2 = np.ones(20)
    loss2[10:] = 100.0
    tl2, _ = trim_curve(lr, loss2, smooth=0.5)
    assert tl2.size == 11


# ---------------------------------------------------------------- bounds


def test_bounds_on_a_piecewise_curve_land_on_its_corners():
    # falls at a constant slope from 1e-4 to 1e-1: both bounds are where the slope changes
    lr = np.geomspace(1e-6, 10.0, 301)
    s = suggest(lr, _piecewise(np.log10(lr)))
    assert s.warnings == ()
    assert 10**-4.3 < s.base_lr < 10**-3.7
    assert s.min_loss_lr / 3.2 < s.max_lr <= s.min_loss_lr / 3  # one grid step: 5.5%
    assert 1e-4 <= s.steepest_lr <= 1e-1
    assert 1e-1 * 0.8 <= s.min_loss_lr <= 1.0  # the flat bottom, before the rise
    assert s.base_lr < s.valley_lr < s.min_loss_lr


def test_bounds_on_a_logistic_descent_bracket_its_center():
    lr = np.geomspace(1e-6, 10.0, 200)
    x = np.log10(lr)
    s = suggest(lr, _logistic(x))
    fine = np.linspace(-6, 1, 100001)
    true_min = 10 ** fine[np.argmin(_logistic(fine))]
    assert s.steepest_lr == pytest.approx(10**-2.5, rel=0.15)
    assert s.min_loss_lr == pytest.approx(true_min, rel=0.15)
    assert s.base_lr < 10**-2.5 < s.max_lr <= s.min_loss_lr
    # the logistic's slope is 20% of its peak 1.46 decades from the center
    assert np.log10(s.base_lr) == pytest.approx(-2.5 - 0.88, abs=0.15)


def test_linear_and_exponential_spacing_read_the_same_curve():
    f = _logistic
    exp_lr = np.geomspace(1e-6, 10.0, 400)
    lin_lr = np.linspace(1e-6, 10.0, 4000)  # linear spacing: few points at small rates
    a, b = suggest(exp_lr, f(np.log10(exp_lr))), suggest(lin_lr, f(np.log10(lin_lr)))
    # linear sweeps hold few points at the low end (20 below the minimum at 0.05 here),
    # so the minimum read from them is coarse; max_lr is a third of it on both, within
    # one step of the log grid (400 points: 4%; the linear curve, cut where it
    # diverges, keeps 34 points over 7 decades: 63%)
    assert b.min_loss_lr == pytest.approx(a.min_loss_lr, rel=0.5)
    assert a.min_loss_lr == pytest.approx(0.0509, rel=0.1)  # the logistic's true minimum
    assert a.min_loss_lr / 3 / 1.05 < a.max_lr <= a.min_loss_lr / 3
    assert b.min_loss_lr / 3 / 1.65 < b.max_lr <= b.min_loss_lr / 3


def test_nan_tail_is_ignored():
    lr = np.geomspace(1e-6, 10.0, 200)
    loss = _logistic(np.log10(lr))
    cut = np.flatnonzero(lr > 0.3)[0]
    tail = loss.copy()
    tail[cut:] = np.nan
    assert suggest(lr, tail) == suggest(lr[:cut], loss[:cut])


def test_moderate_noise_keeps_the_bounds_around_the_descent():
    rng = np.random.default_rng(0)
    lr = np.geomspace(1e-6, 10.0, 300)
    s = suggest(lr, _logistic(np.log10(lr)) + rng.normal(0, 0.05, lr.size))
    assert s.warnings == ()
    assert 10**-4 < s.base_lr < 10**-2.5 < s.max_lr < 10**-0.8


def test_invariant_on_random_curves():
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(MIN_POINTS, 400))
        lr = np.sort(rng.uniform(1e-5, 1.0, n)) if seed % 2 else np.geomspace(1e-5, 1.0, n)
        loss = np.abs(rng.normal(1.0, 0.5, n).cumsum()) + 0.1
        s = suggest(lr, loss, diverge=0)
        assert lr.min() <= s.base_lr < s.max_lr <= lr.max(), seed
        for v in (s.steepest_lr, s.valley_lr, s.min_loss_lr):
            assert lr.min() <= v <= lr.max(), seed


# ---------------------------------------------------------------- warnings and errors


def test_flat_curve_warns():
    rng = np.random.default_rng(1)
    lr = np.geomspace(1e-6, 10.0, 200)
    s = suggest(lr, 2.3 + rng.normal(0, 0.002, lr.size))
    assert any("flat" in w for w in s.warnings)
    assert "flat" in s.problems or "no_descent" in s.problems


def test_rising_curve_warns_and_points_below_min_lr():
    lr = np.geomspace(1e-2, 10.0, 100)
    s = suggest(lr, 1.0 + lr)
    assert any("does not fall" in w and "lower min_lr" in w for w in s.warnings)
    assert s.problems[0] == "no_descent"
    assert s.base_lr == pytest.approx(1e-2)


def test_heavy_noise_warns():
    rng = np.random.default_rng(2)
    lr = np.geomspace(1e-6, 10.0, 200)
    s = suggest(lr, _logistic(np.log10(lr)) + rng.normal(0, 1.0, lr.size))
    assert any("noisy" in w for w in s.warnings) and "noisy" in s.problems


def test_single_wild_batches_do_not_make_a_curve_noisy():
    """Noise is the typical batch's scatter (median absolute deviation), not a standard
    deviation that a few spikes set: three batches 4 above a clean descent of 2 leave the
    curve clean, and its bounds where they were (the running median ignores the spikes)."""
    lr = np.geomspace(1e-6, 10.0, 200)
    clean = _logistic(np.log10(lr)) + np.random.default_rng(3).normal(0, 0.02, lr.size)
    spiked = clean.copy()
    spiked[[60, 100, 120]] += 4.0
    assert np.std(spiked - clean) > 0.2 * 2  # what a standard deviation would have called noisy
    s, t = suggest(lr, clean), suggest(lr, spiked)
    assert "noisy" not in t.problems and t.problems == s.problems
    assert (t.base_lr, t.max_lr) == (s.base_lr, s.max_lr)


def test_batch_noise_is_the_standard_deviation_of_gaussian_scatter():
    from lrsearch.rangetest.analysis import batch_noise

    r = np.random.default_rng(0).normal(0.0, 0.3, 20000)
    assert batch_noise(r) == pytest.approx(0.3, rel=0.02)
    assert batch_noise(np.array([0.0, 0.0, 0.0, 0.0, 9.0])) == 0.0
    assert batch_noise(np.array([])) == 0.0


def test_still_falling_at_the_top_warns():
    lr = np.geomspace(1e-6, 1e-2, 200)
    s = suggest(lr, _logistic(np.log10(lr)))
    assert any("larger max_lr" in w for w in s.warnings) and "still_falling" in s.problems
    assert s.max_lr <= 1e-2


def test_immediate_divergence_raises_curve_error():
    lr = np.geomspace(1e-6, 10.0, 100)
    loss = np.full(100, np.nan)
    loss[:4] = [2.0, 2.1, 2.5, 9.0]
    with pytest.raises(CurveError, match="lower min_lr"):
        suggest(lr, loss)


def test_malformed_input_raises_curve_error():
    with pytest.raises(CurveError, match="equal length"):
        suggest([1e-3, 1e-2], [1.0])
    with pytest.raises(CurveError, match="> 0"):
        suggest(np.linspace(0, 1, 20), np.ones(20))


# ---------------------------------------------------------------- the dataclass


def test_suggestion_round_trips_and_keeps_its_invariant():
    s = LRSuggestion(1e-4, 1e-2, 1e-3, 2e-3, 5e-2, warnings=["noisy"])
    assert s.warnings == ("noisy",)
    assert LRSuggestion.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="base_lr < max_lr"):
        LRSuggestion(1e-2, 1e-3, 1e-3, 1e-3, 1e-3)
    with pytest.raises(ConfigError, match="missing"):
        LRSuggestion.from_dict({"base_lr": 1e-4})
    with pytest.raises(ConfigError, match="unknown curve problem"):
        LRSuggestion(1e-4, 1e-2, 1e-3, 2e-3, 5e-2, problems=["wobbly"])


def test_problems_name_each_warning_and_old_dicts_have_none():
    rng = np.random.default_rng(2)
    lr = np.geomspace(1e-6, 1e-2, 200)
    s = suggest(lr, _logistic(np.log10(lr)) + rng.normal(0, 1.0, lr.size))
    assert len(s.problems) == len(s.warnings) and set(s.problems) >= {"noisy", "still_falling"}
    old = {k: v for k, v in s.to_dict().items() if k != "problems"}
    assert LRSuggestion.from_dict(old).problems == () and LRSuggestion.from_dict(s.to_dict()) == s


def test_suggest_logs_nothing(caplog):
    lr = np.geomspace(1e-6, 10.0, 200)
    with caplog.at_level("DEBUG"):
        s = suggest(lr, 2.3 + np.random.default_rng(1).normal(0, 0.002, lr.size))
    assert s.warnings and not caplog.records



def test_a_curve_that_ends_in_its_divergence_is_read_without_the_blowup():
    """The range test stops at the first point whose moving average passes 4x its minimum;
    the lagging average lets several exploding losses in before that. Read naively, the
    filters' fit at the cut edge dips below the data, the minimum lands on the last rates
    and the curve is reported as still falling at the top of the range."""
    lr = np.geomspace(1e-6, 10.0, 300)
    x = np.log10(lr)
    loss = 0.3 + 2 / (1 + np.exp(3 * (x + 2.5))) + np.exp(12 * (x + 0.5))
    stop = int(np.flatnonzero(smooth_loss(loss) > 4 * np.minimum.accumulate(smooth_loss(loss)))[0])
    lr, loss = lr[: stop + 1], loss[: stop + 1]
    assert loss[-1] > 10 * loss.min()  # the blow-up is in the curve
    s = suggest(lr, loss)
    fine = np.linspace(-6, 1, 100001)
    true_min = 10 ** fine[np.argmin(0.3 + 2 / (1 + np.exp(3 * (fine + 2.5))) + np.exp(12 * (fine + 0.5)))]
    assert s.min_loss_lr == pytest.approx(true_min, rel=0.2)
    assert not any("still falling" in w for w in s.warnings)
    assert s.steepest_lr == pytest.approx(10**-2.5, rel=0.15)
    assert s.base_lr < 10**-2.5 < s.max_lr <= s.min_loss_lr


def test_max_lr_keeps_a_margin_below_the_loss_minimum():
    """max_lr = min_loss_lr / margin: 3 for SGD with momentum or an unknown optimizer,
    1.5 for adaptive ones. The minimum is read from the curve smoothed twice as wide, so
    on a descent that runs into a sharp rise it lies at or before the corner, never past."""
    lr = np.geomspace(1e-6, 10.0, 300)
    x = np.log10(lr)
    loss = 2.3 - 2.0 * np.clip((x + 4) / 3.5, 0, 1) + 50 * np.clip(x + 0.5, 0, None) ** 2
    s = suggest(lr, loss)
    wide = suggest(lr, loss, margin=1.0)
    adam = suggest(lr, loss, optimizer="AdamW")
    assert 10**-1 < s.min_loss_lr <= 10**-0.5  # the corner at 10**-0.5, smoothed
    assert s == suggest(lr, loss, optimizer="SGD")
    step = 10 ** (7 / 299)  # one grid step
    assert wide.max_lr == s.min_loss_lr
    assert s.min_loss_lr / (3 * step) < s.max_lr <= s.min_loss_lr / 3
    assert s.min_loss_lr / (1.5 * step) < adam.max_lr <= s.min_loss_lr / 1.5
    # Schedule-Free SGD has no heavy ball: the adaptive margin, as Schedule-Free AdamW
    for name in ("ScheduleFreeSGD", "ScheduleFreeAdamW", "SGDScheduleFree"):
        assert suggest(lr, loss, optimizer=name).max_lr == adam.max_lr
    assert s.base_lr == wide.base_lr == adam.base_lr
    with pytest.raises(ConfigError, match="margin=0.5"):
        suggest(lr, loss, margin=0.5)


def test_a_noisy_floor_that_climbs_steeply_is_read_at_its_low_stretch():
    """A recorded LSTM + RMSprop curve (160 steps from 1e-6 to 10): the loss falls from
    1.08 to about 0.6 between 3e-3 and 3e-2, then turns noisy and climbs to 30 at the top
    without tripping the divergence rule. The wide fit used to undershoot that climb near
    2.2 (a loss of 1.6-2.5 there) and call the curve "no descent". The minimum must lie
    in the stretch where a 15-batch running median of the raw losses is within 10% of
    its lowest value, read here independently of the rule."""
    from pathlib import Path

    import pandas as pd
    from scipy import ndimage

    curve = pd.read_csv(DATA / "lstm_rmsprop_range_test.csv")
    s = suggest(curve["lr"], curve["loss"], optimizer="RMSprop")
    assert s.problems == ()
    med = ndimage.median_filter(curve["loss"].to_numpy(), size=15, mode="nearest")
    low = curve["lr"].to_numpy()[med <= 1.1 * med.min()]
    assert low.min() <= s.min_loss_lr <= low.max()
    assert 0.01 < low.min() and low.max() < 0.1  # the stretch itself, as described
    assert s.max_lr == pytest.approx(s.min_loss_lr / 1.5, rel=0.05)  # the adaptive margin
    assert s.base_lr < s.steepest_lr < s.max_lr


@pytest.mark.parametrize("args,kwargs,message", [
    (("abc", "def"), {}, "Argument `lr` must be a sequence of numbers. Received: lr='abc'"),
    (([1e-3, "x"], [1.0, 2.0]), {}, "Argument `lr` must be a sequence of numbers. Received: lr=[0.001, 'x']"),
    (([1e-3, 1e-2], None), {}, "Argument `loss` must be a sequence of numbers"),
    (([1e-3], [1.0]), {"window": "wide"}, "Argument `window` must be a number. Received: window='wide'"),
    (([1e-3], [1.0]), {"margin": "3"}, "Argument `margin` must be a number. Received: margin='3'"),
])
def test_suggest_refuses_arguments_of_the_wrong_type_in_keras_shape(args, kwargs, message):
    import lrsearch

    with pytest.raises(ConfigError) as info:
        lrsearch.suggest(*args, **kwargs)
    assert str(info.value).startswith(message)
