"""Momentum / weight-decay sweeps: values applied (checked against SGD by hand), ranking, files."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from lrsearch.core.errors import ConfigError
from lrsearch.rangetest.finder import lr_sweep
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.rangetest.sweeps import SweepResult, sweep

D = 3


def _data(n=48):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, D)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5]) + 1.5 + rng.normal(0, 0.1, n)
    return x, y.astype("float32")[:, None]


def _by_hand(x, y, lrs, w0, b0, momentum=0.0, wd=0.0, bs=16):
    """Keras' SGD: decoupled decay of the kernel only, then m = mu*m - lr*g; w += m."""
    w, b = w0.astype(np.float64).copy(), float(b0)
    mw, mb = np.zeros_like(w), 0.0
    losses = []
    for i, lr in enumerate(lrs):
        s = slice((i * bs) % len(x), (i * bs) % len(x) + bs)
        xb, yb = x[s].astype(np.float64), y[s, 0].astype(np.float64)
        r = xb @ w + b - yb
        losses.append(np.mean(r**2))
        gw, gb = 2 * r @ xb / bs, 2 * r.mean()
        w = w - lr * wd * w
        mw, mb = momentum * mw - lr * gw, momentum * mb - lr * gb
        w, b = w + mw, b + mb
    return np.array(losses)


def _build(optimizer=None, init="glorot_uniform"):
    def build():
        model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1, kernel_initializer=init)])
        model.compile(optimizer=optimizer() if optimizer else keras.optimizers.SGD(0.01), loss="mse")
        return model

    return build


@pytest.mark.backends
@pytest.mark.parametrize(
    "param,values", [("momentum", (0.9, 0.0)), ("weight_decay", (0.5, 0.0))]
)
def test_each_value_is_applied_as_sgd_by_hand(param, values):
    x, y = _data()
    lrs = lr_sweep(1e-3, 0.3, 9)
    build = _build(init=keras.initializers.Constant(0.3))
    s = sweep(build, (x, y), param=param, values=values, min_lr=1e-3, max_lr=0.3, steps=9,
              batch_size=16)
    assert list(s.frame.columns) == ["value", "step", "lr", "loss", "smooth_loss"]
    np.testing.assert_array_equal(s.frame["lr"], np.tile(lrs, 2))
    for v in values:
        kw = {"momentum": v} if param == "momentum" else {"wd": v}
        expected = _by_hand(x, y, lrs, np.full(D, 0.3), 0.0, **kw)
        np.testing.assert_allclose(s.results[v].frame["loss"], expected, rtol=1e-5)
    a, b = (s.results[v].frame["loss"].to_numpy() for v in values)
    assert not np.allclose(a[2:], b[2:])  # the value changed the trajectory


@pytest.mark.backends
def test_every_value_starts_from_the_same_random_weights():
    x, y = _data()
    s = sweep(_build(), (x, y), values=(0.9, 0.5, 0.0), min_lr=1e-3, max_lr=0.1, steps=4,
              batch_size=16)
    first = s.frame.groupby("value", sort=False)["loss"].first()
    assert first.nunique() == 1


@pytest.mark.backends
def test_every_value_draws_the_same_dropout_masks():
    # on PyTorch an unseeded Dropout draws from torch's global generator, not a variable
    def build():
        model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        return model

    x, y = _data()
    s = sweep(build, (x, y), values=(0.9, 0.0), min_lr=1e-3, max_lr=0.1, steps=3, batch_size=16)
    a, b = (s.results[v].frame["loss"].to_numpy() for v in (0.9, 0.0))
    assert a[0] == b[0]  # same weights, batch and mask: the same first loss


def test_ranking_best_and_candidates_from_known_curves():
    lr = lr_sweep(1e-4, 1.0, 50)

    def result(low, diverged_at=None):
        n = 50 if diverged_at is None else diverged_at + 1
        loss = np.linspace(2.0, low, n)
        stopped = "completed" if diverged_at is None else "diverged"
        frame = pd.DataFrame({"step": np.arange(len(loss)), "lr": lr[: len(loss)], "loss": loss,
                              "smooth_loss": loss})
        return RangeTestResult(frame, {"stopped": stopped})

    s = SweepResult(
        "momentum",
        {0.99: result(1.5), 0.95: result(1.0, diverged_at=40), 0.9: result(1.0), 0.8: result(0.98)},
    )
    r = s.ranking
    assert list(r["value"]) == [0.8, 0.9, 0.99, 0.95]  # 0.95 diverged inside the range: last
    assert list(r["rank"]) == [1, 2, 3, 4]
    assert list(r["usable"]) == [True, True, True, False]
    assert r.set_index("value").loc[0.95, "diverge_lr"] == pytest.approx(lr[40])
    assert np.isinf(r.set_index("value").loc[0.9, "diverge_lr"])
    assert s.best == 0.8
    assert s.candidates == (0.8, 0.9)  # within 5% of 0.98; 0.95 (1.0) is ranked last
    far = SweepResult("momentum", {0.9: result(0.5), 0.8: result(1.5), 0.7: result(1.9)})
    assert far.candidates == (0.9, 0.8)  # always at least two
    wide = SweepResult("momentum", {0.9: result(1.0, diverged_at=45), 0.8: result(0.9, diverged_at=30),
                                    0.7: result(0.9, diverged_at=40)})
    # over a range where every value diverges, none is set below another: ties by later divergence
    assert list(wide.ranking["value"]) == [0.7, 0.8, 0.9] and wide.best == 0.7
    assert wide.curve_warnings() == []


def test_a_value_that_blew_up_or_cannot_be_read_is_never_the_best():
    """The lowest losses belong to curves that diverged, turned NaN or are too short to
    read; the value whose loss held over the whole range is the best, and the demotion is
    told in one line."""
    lr = lr_sweep(1e-3, 1.0, 60)
    x = np.log10(lr)

    def result(loss, stopped):
        frame = pd.DataFrame({"step": np.arange(loss.size), "lr": lr[: loss.size], "loss": loss,
                              "smooth_loss": loss})
        return RangeTestResult(frame, {"stopped": stopped, "diverge": 4.0})

    held = 2.0 - 0.5 * (x + 3)  # falls from 2.0 to 0.5, never diverges
    blew = np.concatenate([2.0 - 0.7 * (x[:50] + 3), [9.0]])  # to 0.26 at lr 0.31, then up
    nan = np.concatenate([2.0 - 0.75 * (x[:45] + 3), [np.nan]])  # to 0.32 at lr 0.17
    short = np.array([2.0, 1.0, 0.2, 0.1, 9.0])  # 4 usable points: nothing to read
    s = SweepResult("momentum", {0.95: result(blew, "diverged"), 0.9: result(held, "completed"),
                                 0.85: result(nan, "nan"), 0.8: result(short, "diverged")})
    r = s.ranking
    assert list(r["value"]) == [0.9, 0.8, 0.95, 0.85]  # the three below by lowest loss
    assert s.best == 0.9 and s.candidates == (0.9, 0.8)
    assert s.curve_warnings()[0] == (
        f"momentum sweep: 0.8 (diverged at lr={lr[4]:.3g}), 0.95 (diverged at lr={lr[50]:.3g}), "
        f"0.85 (NaN at lr={lr[45]:.3g}) ranked last, below every value whose loss held over the whole "
        f"range; best momentum=0.9"
    )
    assert len(s.curve_warnings()) == 1


def test_curve_warnings_are_told_by_the_caller_not_by_the_ranking(caplog):
    """Only what bears on the ranking is told: a loss that does not fall, once for every
    value it concerns; the bounds' own warnings (still falling, noise) are not."""
    lr = lr_sweep(1e-4, 1.0, 50)
    falling = np.linspace(2.0, 1.0, 50)  # still falling at the last step
    rising = 1.0 + lr  # does not fall anywhere

    def result(loss):
        frame = pd.DataFrame({"step": np.arange(50), "lr": lr, "loss": loss, "smooth_loss": loss})
        return RangeTestResult(frame, {"stopped": "completed"})

    s = SweepResult("momentum", {0.9: result(falling), 0.85: result(rising), 0.8: result(rising)})
    assert "still_falling" in s.results[0.9].suggestion.problems
    with caplog.at_level("DEBUG", logger="lrsearch"):
        s.ranking  # noqa: B018
    assert caplog.records == []
    assert s.curve_warnings() == [
        "momentum=0.85, 0.8 curves: the loss does not fall anywhere in the tested range (0.0001 to 1): the "
        "usable rates lie at or below min_lr; rerun with a lower min_lr"
    ]


def test_bad_arguments():
    x, y = _data()
    with pytest.raises(ConfigError, match="param"):
        sweep(_build(), (x, y), param="dropout")
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\)"):
        sweep(_build(), (x, y), values=(0.9, 1.2))
    with pytest.raises(ConfigError, match="repeats"):
        sweep(_build(), (x, y), values=(0.9, 0.9))
    with pytest.raises(ConfigError, match="cannot sweep momentum"):
        sweep(_build(lambda: keras.optimizers.Adagrad()), (x, y), values=(0.9,), steps=5)


@pytest.mark.slow
def test_momentum_sweep_on_digits(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")

    def build():
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
             keras.layers.Dense(10, activation="softmax")]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return model

    s = sweep(build, (x, y), values=(0.95, 0.9, 0.5), min_lr=1e-5, max_lr=10.0, steps=150)
    assert set(s.frame["value"]) == {0.95, 0.9, 0.5}
    assert len(s.frame) == sum(len(r.frame) for r in s.results.values())
    assert s.best in s.candidates and set(s.candidates) <= {0.95, 0.9, 0.5}
    # every curve falls well below its start: the sweep trained real models
    assert (s.ranking["min_smooth_loss"] < 0.75 * np.log(10)).all()  # chance: ln(10)
    path = s.save(tmp_path / "sweep.csv")
    meta = json.loads((tmp_path / "sweep.meta.json").read_text())
    assert meta["param"] == "momentum" and meta["best"] == s.best
    back = SweepResult.load(path)
    pd.testing.assert_frame_equal(back.frame, s.frame)
    pd.testing.assert_frame_equal(back.ranking, s.ranking)
    assert back.candidates == s.candidates


@pytest.mark.slow
def test_the_bundled_example_reads_without_a_warning(tmp_path, caplog):
    """`lrsearch auto studies/digits/model.py` (the README's first command, seed 0 as on
    the command line): its range test and both sweeps warn about nothing, and the one
    sweep value that diverges inside the window is named once, ranked last."""
    from lrsearch.run.auto import auto
    from tests.support import ROOT

    with caplog.at_level("INFO", logger="lrsearch"):
        result = auto(ROOT / "studies" / "digits" / "model.py", out_dir=tmp_path, seed=0, trials=2, epochs=1)
    lines = [r.getMessage() for r in caplog.records]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
    assert [line for line in lines if " curve" in line] == []
    assert result.range_test.suggestion.warnings == ()
    demoted = [line.split(" sweep: ")[0] for line in lines if "ranked last" in line]
    assert len(demoted) == len(set(demoted)) and set(demoted) <= {"momentum", "weight_decay"}  # once a sweep
