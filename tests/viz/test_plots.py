"""What the plots draw, computed without pixels: curves, marks, limits, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lrsearch.rangetest.result import RangeTestResult
from lrsearch.viz.plots import (
    figure_to_base64,
    plot_range_test,
    range_test_plot_data,
    save_figure,
    schedule_plot_data,
    sweep_plot_data,
)
from lrsearch.schedules import CyclicLR
from lrsearch.export.spec import ScheduleSpec
from lrsearch.rangetest.sweeps import SweepResult


def curve(smooth: list[float], lr: list[float] | None = None, **meta) -> RangeTestResult:
    lr = lr or [10.0 ** (k - 4) for k in range(len(smooth))]
    frame = pd.DataFrame({"step": range(len(smooth)), "lr": lr, "loss": smooth, "smooth_loss": smooth})
    return RangeTestResult(frame=frame, meta=meta)


def test_range_test_data_of_a_curve_too_short_to_read():
    d = range_test_plot_data(curve([3.0, 2.0, 1.0, 2.0, 5.0], optimizer="SGD", batch_size=32, stopped="diverged"))
    np.testing.assert_array_equal(d.lr, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert d.marks == () and d.bounds is None and d.val_loss is None
    # from 0.1 * (3 - 1) below the minimum 1 to 2 * 0.2 above the curve's start 3
    assert d.ylim == pytest.approx((0.8, 3.4))
    assert d.title == "LR range test (SGD, batch 32): stopped, diverged"
    assert len(d.warnings) == 1 and d.warnings[0].startswith("only 5 usable points")


def test_range_test_data_marks_the_suggestion_on_the_smoothed_curve():
    lr = np.logspace(-5, 0, 101)
    x = np.log10(lr)
    smooth = 2.0 - 1.5 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -1, 20 * (x + 1) ** 2, 0.0)
    result = curve(list(smooth), list(lr), optimizer="Adam")
    s = result.suggestion
    d = range_test_plot_data(result)
    assert d.bounds == (s.base_lr, s.max_lr)
    assert [m.lr for m in d.marks] == [s.steepest_lr, s.valley_lr, s.min_loss_lr]
    assert [m.label for m in d.marks] == [f"steepest {s.steepest_lr:.2g}", f"valley {s.valley_lr:.2g}",
                                          f"min loss {s.min_loss_lr:.2g}"]
    for m in d.marks:  # each mark sits on the smoothed curve
        assert m.loss == pytest.approx(np.interp(np.log10(m.lr), x, smooth))
    assert d.title == "LR range test (Adam)"
    lo = smooth.min()
    assert d.ylim[0] < lo < smooth[0] < d.ylim[1]


def test_sweep_data_flags_the_best_value_and_each_minimum():
    sweep = SweepResult("momentum", {0.9: curve([3.0, 1.0, 4.0]), 0.8: curve([3.0, 2.0, 1.5, 6.0])})
    d = sweep_plot_data(sweep)
    assert [(c.label, c.best) for c in d.curves] == [("momentum=0.9", True), ("momentum=0.8", False)]
    assert [(c.minimum.lr, c.minimum.loss) for c in d.curves] == [(1e-3, 1.0), (1e-2, 1.5)]
    assert d.title == "momentum sweep: best 0.9, candidates 0.9, 0.8"
    # lowest minimum 1, highest start 3: 0.2 below and 0.4 above
    assert d.ylim == pytest.approx((0.8, 3.4))


def test_schedule_data_of_a_constant_rate():
    d = schedule_plot_data(ScheduleSpec(0.1, steps_per_epoch=5, epochs=4))
    np.testing.assert_array_equal(d.step, np.arange(20))
    np.testing.assert_allclose(d.lr, np.full(20, 0.1))
    assert d.momentum is None  # a constant momentum is not drawn
    np.testing.assert_array_equal(d.epoch_lines, [5, 10, 15])
    assert d.xlabel == "step (5 per epoch; lines mark epochs)" and d.title == "constant 0.1 with SGD"


def test_schedule_data_of_a_cycle_with_its_momentum():
    clr = CyclicLR(0.01, 0.1, step_size_up=5)
    d = schedule_plot_data(ScheduleSpec(clr, momentum=clr.momentum_schedule(), steps_per_epoch=10, epochs=2))
    # up from 0.01 to 0.1 in 5 steps and back; momentum the other way, 0.9 to 0.8
    np.testing.assert_allclose(d.lr[:11], [0.01, 0.028, 0.046, 0.064, 0.082, 0.1, 0.082, 0.064, 0.046, 0.028, 0.01],
                               rtol=1e-5)
    np.testing.assert_allclose(d.momentum[[0, 5, 10]], [0.9, 0.8, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(d.epoch_lines, [10])
    assert d.title == "CyclicLR with SGD" and d.momentum_name == "momentum"


def test_epoch_lines_are_thinned_to_about_fifty():
    d = schedule_plot_data(ScheduleSpec(0.1, steps_per_epoch=1, epochs=500))
    # 499 boundaries, every 499 // 50 = 9th drawn: 9, 18, ..., 495
    np.testing.assert_array_equal(d.epoch_lines, np.arange(9, 500, 9))


def test_figures_are_written_and_released(tmp_path):
    fig = plot_range_test(curve([3.0, 2.0, 1.0, 2.0, 5.0]))
    path = save_figure(fig, tmp_path / "sub" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    encoded = figure_to_base64(plot_range_test(curve([3.0, 2.0, 1.0, 2.0, 5.0])))
    import base64

    assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"


def test_range_test_warnings_are_drawn_whole_inside_the_axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lrsearch.viz.plots import plot_range_test

    lr = np.geomspace(1e-6, 10.0, 120)  # still falling at the largest rate: one long warning
    loss = 2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lr) + 2)))
    result = RangeTestResult(frame=pd.DataFrame({"step": np.arange(120), "lr": lr, "loss": loss,
                                                 "smooth_loss": loss}), meta={})
    (warning,) = result.suggestion.warnings
    fig = plot_range_test(result)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    (text,) = fig.axes[0].texts
    assert " ".join(text.get_text().split()) == f"! {warning}" and len(warning) > 100
    drawn, axes = text.get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
    assert axes.x0 <= drawn.x0 and drawn.x1 <= axes.x1 and axes.y0 <= drawn.y0 and drawn.y1 <= axes.y1
