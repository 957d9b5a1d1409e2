"""The fine-tuning study from the command line, each command in a fresh process: `tune` on
a model compiled with two parameter groups, then `export`, then the file loaded back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from tests.cli.test_fresh_process import lrsearch_cli
from tests.support import ROOT

pytestmark = pytest.mark.slow

MODEL = ROOT / "studies" / "finetune_groups" / "model.py"

_LOAD = '''
import json, sys
import lrsearch
spec = lrsearch.load_schedule(sys.argv[1])
opt = spec.build_optimizer()
subs = opt.optimizers
print(json.dumps({"class": type(opt).__name__, "ratio": subs[0]._learning_rate.ratio,
                  "backbone": float(subs[0].learning_rate), "head": float(subs[1].learning_rate)}))
'''


def test_tune_export_and_load_a_two_group_model(tmp_path):
    out = tmp_path / "run"
    done = lrsearch_cli("tune", MODEL, "--out", out, "--trials", "2", "--epochs", "1", "--steps", "60")
    assert ".*backbone.* at " in done.stderr  # the summary (on stderr) names the group and its ratio
    meta = json.loads((out / "range_test.meta.json").read_text())
    assert meta["groups"]["ratios"] == [0.1, 1.0] and meta["groups"]["reference"] == 1
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"] and trials["params_group_ratio"].iloc[0] == 0.1
    best = trials.loc[trials["value"].idxmin()]
    target = tmp_path / "exported.json"
    lrsearch_cli("export", "--from", out, "-o", target)
    doc = json.loads(target.read_text())
    assert doc["version"] == 3 and doc["groups"][0]["patterns"] == [".*backbone.*"]
    assert doc["groups"][0]["ratio"] == pytest.approx(best["params_group_ratio"], rel=1e-12)
    loaded = subprocess.run([sys.executable, "-c", _LOAD, str(target)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    built = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert built["class"] == "MultiOptimizer" and built["ratio"] == pytest.approx(best["params_group_ratio"])
    assert built["backbone"] == pytest.approx(built["head"] * built["ratio"], rel=1e-6)
