"""fastai's rules as the suggestion benchmark runs them (scripts/references/fastai_anchor.py).

The benchmark compares lrsearch with fastai's valley, steep and minimum; these pin the
fallback transcription on curves whose answers are worked out by hand, fastai's
recording of the curve, and the fallback when no interpreter with fastai is at hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.references import fastai_anchor

LRS = 10.0 ** np.arange(-6, 1)  # 1e-6 ... 1
# falls (steepest from 1e-5 to 1e-4), lowest at 1e-2, rises again
LOSSES = np.array([5.0, 4.5, 3.0, 2.5, 2.2, 2.5, 3.0])


def test_minimum_is_a_tenth_of_the_rate_at_the_lowest_loss():
    assert fastai_anchor.minimum(LRS, LOSSES) == pytest.approx(1e-3)


def test_steep_is_the_start_of_the_steepest_fall_in_log_rate():
    assert fastai_anchor.steep(LRS, LOSSES) == pytest.approx(1e-5)


def test_valley_keeps_fastais_index_arithmetic():
    # longest decreasing run: indices 0-4 (5 points); fastai's start is 4 - 5 = -1,
    # sections = 5 / 3, index = -1 + 1 + 0 = 0
    assert fastai_anchor.valley(LRS, LOSSES) == pytest.approx(1e-6)


def test_recorded_curve_drops_the_ends_and_stops_at_nan():
    loss = np.ones(100)
    loss[50] = np.nan
    lrs, sm = fastai_anchor.recorded(np.geomspace(1e-7, 10.0, 100), loss)
    assert len(lrs) == len(sm) == 40  # steps 10..49: the first 10 dropped, cut at the NaN
    np.testing.assert_allclose(sm, 1.0)  # the debiased average of a constant is that constant
    assert lrs[0] == pytest.approx(1e-7 * 10 ** (8 * 10 / 99))


def test_without_fastai_the_transcription_answers_and_says_so(monkeypatch):
    monkeypatch.setenv("LRSEARCH_BENCH_FASTAI_PYTHON", str(Path(sys.executable).with_name("no-such-python")))
    lrs = np.geomspace(1e-7, 10.0, 100)
    x = np.log10(lrs)
    loss = 0.3 + 2 / (1 + np.exp(3 * (x + 2.5))) + np.exp(3 * (x + 0.3))
    out = fastai_anchor.suggestions(lrs, loss)
    assert "transcription" in fastai_anchor.source()
    rl, rs = fastai_anchor.recorded(lrs, loss)
    assert out == {"valley": fastai_anchor.valley(rl, rs), "steep": fastai_anchor.steep(rl, rs),
                   "minimum": fastai_anchor.minimum(rl, rs)}
    # the loss itself is lowest near lr 0.05; the moving average fastai records lags by
    # several points, so its lowest point, and `minimum` (a tenth of it), sit to the right
    assert 0.05 / 10 < out["minimum"] < 1.0 / 10
