"""The stages of `auto` on their own: the sweeps' window, a seeded range test."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from lrsearch.rangetest.result import RangeTestResult
from lrsearch.run.auto import resolve_source
from lrsearch.run.stages import range_test_stage, sweep_window
from lrsearch.study.options import StudyOptions


def test_sweeps_test_the_window_the_first_curve_spoke_about():
    """Sweeping every value over the whole first range spends most batches on decades
    where all curves are flat: here 97 steps per sweep test instead of 161."""
    lr = np.geomspace(1e-6, 10.0, 161)
    x = np.log10(lr)
    loss = 0.3 + 2 / (1 + np.exp(3 * (x + 2.5))) + np.exp(3 * (x + 0.3))
    frame = pd.DataFrame({"step": np.arange(161), "lr": lr, "loss": loss, "smooth_loss": loss})
    result = RangeTestResult(frame=frame, meta={"min_lr": 1e-6, "max_lr": 10.0, "steps": 161})
    s = result.suggestion
    w = sweep_window(result)
    assert w["min_lr"] == pytest.approx(s.base_lr / 10) and w["max_lr"] == pytest.approx(s.min_loss_lr * 10)
    # the first test's density: 160 intervals over 7 decades
    assert w["steps"] == int(np.ceil(160 / 7 * np.log10(w["max_lr"] / w["min_lr"]))) + 1
    assert w["steps"] < 0.65 * 161
    assert sweep_window(result, mode="linear") == {"min_lr": 1e-6, "max_lr": 10.0, "steps": 161}


def _dropout_model():
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def test_same_seed_gives_the_same_range_test(tmp_path):
    """`seed` seeds the weights' initialization and dropout too: same seed, same curve."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    data = ((x[:256], y[:256]), (x[256:320], y[256:320]))

    def run(seed, name):
        options = StudyOptions.from_kwargs(None, seed=seed, range_steps=30, min_lr=1e-4, max_lr=10.0,
                                           out_dir=tmp_path / name)
        source, out = resolve_source(_dropout_model, data, seed=seed), tmp_path / name
        out.mkdir()
        keras.utils.set_random_seed(123)  # whatever ran before must not matter
        keras.Sequential([keras.layers.Dense(3)]).build((None, 4))
        return range_test_stage(source, out, options, reuse=False, verbose=0)

    first, second, other = run(7, "a"), run(7, "b"), run(8, "c")
    assert len(first.frame) == 30
    np.testing.assert_array_equal(first.frame["loss"].to_numpy(), second.frame["loss"].to_numpy())
    assert first.suggestion.base_lr == second.suggestion.base_lr
    assert first.suggestion.max_lr == second.suggestion.max_lr
    assert pd.read_csv(tmp_path / "a" / "range_test.csv")["loss"].equals(
        pd.read_csv(tmp_path / "b" / "range_test.csv")["loss"])
    assert other.frame["loss"].iloc[0] != first.frame["loss"].iloc[0]
