"""`lrsearch auto` on a model file that sets `keras.distribution.DataParallel`, in a fresh
process on 2 JAX host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pandas as pd
import pytest

import lrsearch
from lrsearch.rangetest.result import RangeTestResult
from tests.support import ROOT, SUPPORT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")

MODEL = SUPPORT / "dp_cli_model.py"


def _auto(out, *flags):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    return subprocess.run([sys.executable, "-m", "lrsearch", "auto", str(MODEL), "--out", str(out), "-q", *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_auto_runs_on_the_mesh_and_writes_a_schedule(tmp_path):
    """320 samples in global batches of 32 on 2 devices: the range test records that it
    split each batch over 2 devices, both trials complete, and the schedule spans the 10
    global batches of an epoch."""
    out = tmp_path / "run"
    proc = _auto(out, "--epochs", "2", "--trials", "2", "--steps", "40", "--min-lr", "1e-4",
                 "--families", "one_cycle", "--pruner", "none", "--no-sweeps")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    curve = RangeTestResult.load(out / "range_test.csv")
    assert (curve.meta["replicas"], curve.meta["batch_size"], len(curve.frame)) == (2, 32, 40)
    assert pd.read_csv(out / "trials.csv")["state"].tolist() == ["COMPLETE", "COMPLETE"]
    spec = lrsearch.load_schedule(out / "schedule.json")
    assert (spec.steps_per_epoch, spec.epochs, spec.schedule.total_steps) == (10, 2, 20)


def test_a_batch_the_devices_cannot_split_ends_in_one_line(tmp_path):
    proc = _auto(tmp_path / "run", "--batch-size", "15", "--trials", "1", "--epochs", "1")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "lrsearch: error: the first batch of training data of 15 samples does not split evenly over the 2 "
        "devices of the keras.distribution; use a batch size (and data sizes) that are a multiple of 2")
