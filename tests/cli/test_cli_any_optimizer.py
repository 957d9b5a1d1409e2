"""`lrsearch auto` on a model file compiled with an optimizer lrsearch has no class of its
own for (Nadam), in a fresh process: it exits 0 and its schedule.json rebuilds Nadam."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import pandas as pd
import pytest
from tests.support import CLI_MODEL, ROOT

import lrsearch


@pytest.mark.slow
def test_auto_on_a_nadam_model_file_writes_a_schedule_that_rebuilds_nadam(tmp_path):
    model_file = tmp_path / "nadam_model.py"
    source = CLI_MODEL.read_text()
    assert "keras.optimizers.SGD(0.1, momentum=0.9)" in source
    model_file.write_text(source.replace("keras.optimizers.SGD(0.1, momentum=0.9)",
                                         "keras.optimizers.Nadam(0.01, beta_1=0.85, beta_2=0.99)"))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, "-m", "lrsearch", "auto", str(model_file), "--epochs", "1", "--trials", "2",
         "--steps", "30", "--min-lr", "1e-4", "--families", "one_cycle", "--pruner", "none",
         "--out", str(out), "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert pd.read_csv(out / "trials.csv")["state"].tolist() == ["COMPLETE", "COMPLETE"]
    spec = lrsearch.load_schedule(out / "schedule.json")
    assert spec.to_dict()["optimizer"]["class_name"] == "Nadam" and spec.momentum == 0.85
    optimizer = spec.build_optimizer()
    assert type(optimizer) is keras.optimizers.Nadam and (optimizer.beta_1, optimizer.beta_2) == (0.85, 0.99)
