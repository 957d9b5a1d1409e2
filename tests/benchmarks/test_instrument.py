"""The instrument's setups (scripts/instrument.py) and its command (scripts/bench_instrument.py).

The setups are what the brief of an instrument asks for: at least ten, 5,000 validation
samples each, >= 200 steps an epoch on at least half, at least four in the check half,
the model families named, and labels that follow the rule each task states. The slow
test runs the command in a fresh process on one setup, then again on what it cached.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from scripts import instrument, split
from tests.support import ROOT

NEW = instrument.SETUPS


def test_ten_or_more_setups_with_5000_validation_samples_and_long_epochs_on_half():
    assert len(NEW) >= 10
    long_epochs = 0
    for s in NEW:
        xtr, ytr, xva, yva = s.data()
        assert len(xva) == len(yva) >= 5000, s.name
        assert len(xtr) == len(ytr) and set(np.unique(yva)) <= set(range(s.classes))
        long_epochs += math.ceil(len(xtr) / s.batch) >= 200
    assert long_epochs >= len(NEW) / 2
    assert sum(s.half == "check" for s in NEW) >= 4
    assert sum(s.long for s in NEW) >= 4  # the long budget (12 trial lengths) runs on these


def test_the_model_families_are_all_there(tmp_path):
    layers = {}
    for s in NEW:
        if "finetune" in s.name:
            continue  # needs the pretrained bodies (the slow test trains them)
        layers[s.name] = {type(layer).__name__ for layer in s.model(tmp_path).layers}
    flat = set().union(*layers.values())
    assert {"BatchNormalization", "Add", "GRU", "LSTM", "MultiHeadAttention", "LayerNormalization",
            "Conv1D"} <= flat
    attn = next(s for s in NEW if "MultiHeadAttention" in layers.get(s.name, ()))
    assert attn.optimizer == "adamw-wd2" and attn.batch >= 128
    rnn = [s for s in NEW if layers.get(s.name, set()) & {"GRU", "LSTM"}]
    assert rnn and all(s.batch >= 64 for s in rnn)
    assert {s.name for s in NEW if "finetune" in s.name} == {"i-finetune-mlp-sgd", "i-finetune-cnn-adam"}


def test_sequence_labels_follow_their_rules():
    x, y, _, _ = instrument.token_count.__wrapped__(300)
    assert np.array_equal(y, np.minimum((x.argmax(-1) == 0).sum(1), 9))
    x, y, _, _ = instrument.token_mode.__wrapped__(300)
    counts = np.stack([(x == t).sum(1) for t in range(8)], 1)
    assert np.array_equal(y, counts.argmax(1)) and (counts.max(1) >= 4).all()  # a planted token 3 more
    x, y, _, _ = instrument.leading_channel.__wrapped__(300)
    w = np.linspace(0.5, 1.5, 20)[None, :, None]
    assert np.array_equal(y, (x * w).sum(1).argmax(1))


def test_the_pretraining_part_and_the_finetuning_part_share_no_class():
    _, ytr_lo, _, _ = instrument.blobs(31, 8000, 10, 40, 0.8, 0.03, tuple(range(5)))
    _, ytr_hi, _, yva_hi = instrument.blobs(31, 8000, 10, 40, 0.8, 0.03, tuple(range(5, 10)))
    assert set(ytr_lo) == set(ytr_hi) == set(yva_hi) == set(range(5))  # both relabelled from 0
    assert len(yva_hi) == 5000


@pytest.mark.slow
def test_the_command_runs_then_resumes_from_its_cache(tmp_path):
    """Two arms on one setup, two seeds, in a fresh process; a second run trains nothing
    and prints the same table; a fit run adds no row to the check ledger."""
    before = split.LEDGER.read_text()
    cmd = [sys.executable, "-m", "scripts.bench_instrument", "--setups", "i-mlp-rmsprop", "--arms",
           "auto,default", "--seeds", "2", "--budgets", "4", "--cache", str(tmp_path), "--out",
           str(tmp_path / "t.md")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1200)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "4 runs, 4 not cached" in first.stderr
    table = [line for line in first.stdout.splitlines() if line.startswith("| default | 2 |")]
    # two seeds: the paired difference and its interval, no verdict (that takes five)
    assert len(table) == 1 and re.search(r"\| [+-]\d\.\d{4} \[-?\d\.\d{4}, -?\d\.\d{4}\] \| n/a \|$", table[0])
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert second.returncode == 0 and "4 runs, 0 not cached" in second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("| ")] == [
        line for line in first.stdout.splitlines() if line.startswith("| ")]
    assert (tmp_path / "t.md").read_text().strip() == second.stdout.strip()
    assert split.LEDGER.read_text() == before
