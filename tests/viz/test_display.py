"""Notebook display: the HTML tables carry the known values, blanks for missing ones,
and an inline PNG wherever there is a curve."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.study.results import TuneResult
from lrsearch.schedules import OneCycle
from lrsearch.export.spec import ScheduleSpec
from lrsearch.rangetest.sweeps import SweepResult
from lrsearch.viz.tables import Html, cell, frame_table, pairs_table

PNG = re.compile(r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)'")


def _curve(scale=1.0):
    lr = np.logspace(-5, 0, 101)
    x = np.log10(lr)
    smooth = scale * (2.0 - 1.5 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -1, 20 * (x + 1) ** 2, 0.0))
    frame = pd.DataFrame({"step": range(101), "lr": lr, "loss": smooth, "smooth_loss": smooth})
    return RangeTestResult(frame=frame, meta={"optimizer": "Adam", "min_lr": 1e-5, "max_lr": 1.0,
                                              "batch_size": 32, "stopped": "completed"})


def _png(html):
    found = PNG.findall(html)
    assert len(found) == 1
    assert base64.b64decode(found[0])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("value, text", [(None, ""), (float("nan"), ""), (float("inf"), ""),
                                         (np.float32(0.012345), "0.01235"), (np.int64(7), "7"),
                                         (3, "3"), ("a<b", "a&lt;b"), (True, "True")])
def test_cell(value, text):
    assert cell(value) == text


@pytest.mark.parametrize("value, text", [(pd.NA, ""), (pd.NaT, ""), (np.nan, ""),
                                         (pd.Timestamp("2026-12-04 01:13:32.480373"), "2026-12-04 01:13:32"),
                                         (Html("<code>x</code>"), "<code>x</code>"), (123456.7, "1.235e+05")])
def test_cell_blanks_pandas_missing_values_and_keeps_times_to_the_second(value, text):
    assert cell(value) == text


def test_one_table_kit_for_pairs_and_frames():
    pairs = pairs_table([("peak", 0.0123456), ("epochs", 7)], cls="summary")
    assert pairs == ('<table class="summary"><tbody><tr><th>peak</th><td>0.01235</td></tr>'
                     "<tr><th>epochs</th><td>7</td></tr></tbody></table>")
    frame = pd.DataFrame({"number": [0, 1, 2], "value": [0.5, np.nan, 0.25]})
    page = frame_table(frame, max_rows=2, highlight=0, cell_style="padding:1px")
    assert page.count("<tr") == 3 and page.count('class="best"') == 1
    assert '<th style="padding:1px">value</th>' in page and '<td style="padding:1px"></td>' in page
    assert page.endswith('<p style="font-size:11px">1 more rows</p>') and ">0.25<" not in page


def test_suggestion_html_shows_its_rates_and_warnings():
    s = LRSuggestion(1e-4, 0.0321, 1e-3, 2e-3, 0.05, warnings=("the loss is flat",),
                     problems=("flat",))
    html = s._repr_html_()
    assert '<td style="text-align:left;padding:1px 8px">0.0321</td>' in html
    assert ">0.0001<" in html and ">0.05<" in html
    assert "the loss is flat" in html and "<img" not in html


def test_range_test_html_has_the_suggestion_and_the_curve():
    result = _curve()
    html = result._repr_html_()
    s = result.suggestion
    assert f">{s.max_lr:.4g}<" in html and f">{s.base_lr:.4g}<" in html
    assert ">101<" in html and ">completed<" in html and ">Adam<" in html
    assert ">nan<" not in html
    _png(html)


def test_range_test_html_of_a_curve_too_short_still_shows_a_table():
    frame = pd.DataFrame({"step": [0, 1], "lr": [1e-3, 1e-2], "loss": [1.0, 2.0],
                          "smooth_loss": [1.0, 2.0]})
    html = RangeTestResult(frame=frame, meta={})._repr_html_()
    assert ">2<" in html and ">nan<" not in html


def test_sweep_html_ranks_the_values_with_blank_missing_cells():
    sweep = SweepResult("momentum", {0.9: _curve(), 0.8: _curve(1.2)})
    html = sweep._repr_html_()
    assert "SweepResult" in html and ">0.9<" in html and ">momentum<" in html
    ranking = sweep.ranking
    assert f">{ranking['min_smooth_loss'].iloc[0]:.4g}<" in html
    assert ">nan<" not in html and ">inf<" not in html  # diverge_lr is inf: ran to the end
    _png(html)


def test_schedule_html_shows_the_schedule_provenance_and_plot():
    sched = OneCycle(0.05, total_steps=40)
    spec = ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(), weight_decay=5e-4,
                        steps_per_epoch=10, epochs=4,
                        provenance={"bounds": {"base_lr": 0.001, "max_lr": 0.05}, "trial": 3})
    html = spec._repr_html_()
    assert "OneCycle(max_lr=0.05, total_steps=40" in html
    assert ">bounds.base_lr<" in html and ">0.001<" in html and ">trial<" in html
    assert ">SGD<" in html and ">0.0005<" in html and ">40<" in html
    _png(html)


def test_tune_html_lists_trials_best_first_with_blanks():
    sched = OneCycle(0.05, total_steps=20)
    best = ScheduleSpec(sched, optimizer="Adam", steps_per_epoch=10, epochs=2,
                        provenance={"trial": 1, "metric": "val_loss", "value": 0.2345})
    trials = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "COMPLETE", "PRUNED"],
                           "value": [0.5, 0.2345, np.nan], "family": ["one_cycle"] * 3,
                           "params_max_lr": [0.01, 0.05, np.nan], "duration_s": [1.0, 2.0, 3.0]})
    result = TuneResult(study=None, trials=trials, history=pd.DataFrame(), best=best)
    html = result._repr_html_()
    assert ">0.2345<" in html and ">val_loss (minimize)<" in html
    table = html.split("trials, best first")[1]
    assert table.index(">0.2345<") < table.index(">0.5<")  # best first
    assert ">nan<" not in html and '<td style="text-align:left;padding:1px 8px"></td>' in html
    assert "duration_s" not in html
    _png(html)
    empty = TuneResult(study=None, trials=trials.iloc[:0], history=pd.DataFrame(), best=None)
    assert "<img" not in empty._repr_html_()


def test_one_cycle_fit_html_shows_the_last_epoch_the_schedule_and_the_curve():
    import keras

    from lrsearch.run.quick import OneCycleFit

    history = keras.callbacks.History()
    history.history = {"loss": [0.9, 0.4321], "val_accuracy": [0.5, 0.875]}
    sched = OneCycle(0.05, total_steps=20)
    run = OneCycleFit(history, ScheduleSpec(sched, optimizer="SGD", steps_per_epoch=10, epochs=2),
                      _curve())
    html = run._repr_html_()
    assert ">epochs run<" in html and ">2<" in html
    assert ">0.4321<" in html and ">0.875<" in html and ">0.9<" not in html
    assert html.count("<img") == 2  # the schedule and the range-test curve
