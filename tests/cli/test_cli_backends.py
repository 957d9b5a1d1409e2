"""`lrsearch auto MODEL_FILE` in a fresh process, as a user runs it, on the backend the
tests run on: CI runs this file under KERAS_BACKEND=tensorflow, jax and torch."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import lrsearch
from tests.support import CLI_MODEL, ROOT

MODEL = CLI_MODEL


def _model_file():
    spec = importlib.util.spec_from_file_location("cli_model", MODEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.backends
@pytest.mark.slow
def test_auto_on_a_model_file_writes_a_schedule_that_loads_back(tmp_path):
    backend = keras.backend.backend()
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-m", "lrsearch", "auto", str(MODEL), "--epochs", "2", "--trials", "2",
         "--steps", "40", "--min-lr", "1e-4", "--families", "one_cycle", "--pruner", "none",
         "--out", str(out), "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"{backend}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr

    trials = pd.read_csv(out / "trials.csv")
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    spec = lrsearch.load_schedule(out / "schedule.json")
    winner = trials.loc[trials["value"].idxmin()]
    assert spec.provenance["trial"] == int(winner["number"])
    assert spec.provenance["value"] == pytest.approx(winner["value"])
    assert spec.epochs == 2 and spec.steps_per_epoch == 10  # 320 samples in batches of 32
    bounds = spec.provenance["bounds"]
    assert 1e-4 <= bounds["base_lr"] < bounds["max_lr"] <= 10.0

    # the one-cycle the file holds, evaluated by this backend: PyTorch's OneCycleLR values
    config = spec.to_dict()["schedule"]["config"]
    peak, div, final_div, total = config["max_lr"], config["div_factor"], config["final_div_factor"], 20
    assert config["total_steps"] == total and bounds["base_lr"] <= peak <= bounds["max_lr"]
    rates = np.asarray(spec.build_schedule()(np.arange(total)), np.float64)
    end = config["pct_start"] * total - 1  # PyTorch's last step of the rise, a float
    rise = math.floor(end)
    pct = rise / end
    if config["anneal_strategy"] == "cos":
        at_rise = peak + (peak / div - peak) / 2 * (math.cos(math.pi * pct) + 1)
    else:
        at_rise = peak / div + (peak - peak / div) * pct
    np.testing.assert_allclose(rates[[0, rise, total - 1]], [peak / div, at_rise, peak / div / final_div],
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(rates, spec.table()["lr"], rtol=1e-5)

    # and it trains here: the rebuilt optimizer follows the schedule step by step
    model_file = _model_file()
    (x, y), _ = model_file.load_data()
    model = model_file.build_model()
    optimizer = spec.build_optimizer()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=spec.epochs, shuffle=False, verbose=0)
    assert int(optimizer.iterations) == total and np.isfinite(history.history["loss"]).all()
    assert float(optimizer.learning_rate) == pytest.approx(float(spec.build_schedule()(total)), rel=1e-6)
