"""fastai's suggestion rules (`valley`, `steep`, `minimum`) on a range-test curve.

The benchmark compares lrsearch with the rules fastai users get from `Learner.lr_find`.
Those rules are fastai's own functions when fastai can be imported: by this interpreter,
or by another one named with `--fastai-python` / `LRSEARCH_BENCH_FASTAI_PYTHON` (fastai
needs PyTorch, which lrsearch does not: a separate environment keeps both out of the
project's dependencies). The curve handed to them is recorded as fastai's `lr_find`
records it: the debiased moving average (0.98) of the batch losses (its `Recorder`
keeps `smooth_loss`), `[num_it // 10 : -5]`, cut at the first NaN. When fastai cannot
be imported anywhere, the three functions below, transcribed from
`fastai/callback/schedule.py`, stand in; `source()` says which ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from lrsearch.rangetest.curve import smooth_loss

NUM_IT = 100
"""fastai's `lr_find(num_it=100)`."""
MIN_LR, MAX_LR = 1e-7, 10.0
"""Its range. fastai's rate at step i is start * (end/start) ** (i / num_it), ending at 8.3
on its last step; the benchmark's test ends at 10 (1% higher a decade), the curve its
tables were measured on."""

# run by the interpreter that has fastai: reads {"lrs", "losses", "num_it"} on stdin,
# prints the three suggestions and fastai's version
_CALL = """
import json, sys, torch, fastai
from fastai.callback.schedule import valley, steep, minimum
d = json.load(sys.stdin)
lrs, losses = torch.tensor(d["lrs"]), torch.tensor(d["losses"])
out = {f.__name__: float(f(lrs, losses, d["num_it"])[0]) for f in (valley, steep, minimum)}
out["version"] = f"fastai {fastai.__version__}, torch {torch.__version__.split('+')[0]}"
print(json.dumps(out))
"""

_source: list[str] = []


def python() -> str:
    """The interpreter that runs fastai's functions."""
    return os.environ.get("LRSEARCH_BENCH_FASTAI_PYTHON") or sys.executable


def source() -> str:
    """Which implementation produced the last suggestions."""
    return _source[-1] if _source else "not run"


def recorded(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fastai's recorded curve: debiased EMA 0.98, `[num_it // 10 : -5]`, cut at NaN."""
    sm = smooth_loss(np.asarray(losses, dtype=np.float64), 0.98)
    lrs, sm = np.asarray(lrs, dtype=np.float64)[NUM_IT // 10: -5], sm[NUM_IT // 10: -5]
    bad = np.flatnonzero(~np.isfinite(sm))
    if bad.size:
        lrs, sm = lrs[: bad[0]], sm[: bad[0]]
    return lrs, sm


def suggestions(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
    """`{"valley", "steep", "minimum"}` on a raw range-test curve (per-batch losses)."""
    rl, rs = recorded(lrs, losses)
    payload = json.dumps({"lrs": rl.tolist(), "losses": rs.tolist(), "num_it": NUM_IT})
    try:
        proc = subprocess.run([python(), "-c", _CALL], input=payload, capture_output=True,
                              text=True, timeout=600, check=True)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        _source.append(f"fastai's own functions ({out.pop('version')}, run by {python()})")
        return out
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        _source.append("the transcription in scripts/references/fastai_anchor.py (fastai not importable)")
        return {"valley": valley(rl, rs), "steep": steep(rl, rs), "minimum": minimum(rl, rs)}


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's `valley`: 1.5 thirds into the longest decreasing subsequence."""
    n = len(losses)
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's `steep`: the steepest fall of the loss in log(lr)."""
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[int(np.argmin(grads))])


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's `minimum`: a tenth of the rate at the lowest recorded loss."""
    return float(lrs[int(np.argmin(losses))]) / 10
