"""SIGKILL `lrsearch auto` at a stage, rerun the same command: it completes, and nothing
half-made is reused (each piece reused is the very file recorded whole in evidence.json)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrsearch.run import evidence
from lrsearch.rangetest.result import RangeTestResult
from tests.support import CLI_MODEL, ROOT

MODEL = CLI_MODEL


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "lrsearch", "auto", str(MODEL), "--out", str(out), "--steps", "40",
            "--min-lr", "1e-4", "--trials", "2", "--epochs", "1", "--pruner", "none"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _kill_at(out: Path, stage: str, delay: float) -> list[str]:
    """Run auto, SIGKILL it `delay` seconds after a stderr line starting with `stage`;
    returns the lines it wrote."""
    proc = subprocess.Popen(_command(out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=_env(), cwd=ROOT)
    lines: list[str] = []
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:
            lines.append(line.rstrip())
            if line.startswith(stage):
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "auto never reached " + stage
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert any(line.startswith(stage) for line in lines), "\n".join(lines)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage,delay,reused,redone",
    [
        ("range test: ", 0.3, (), ("range test", "momentum sweep", "weight-decay sweep")),
        ("momentum sweep over", 0.5, ("range test",), ("momentum sweep", "weight-decay sweep")),
        ("study 'cli_model'", 2.0, ("range test", "momentum sweep", "weight-decay sweep"), ()),
    ],
    ids=["range-test", "sweep", "trial"],
)
def test_killed_auto_reruns_to_completion(tmp_path, stage, delay, reused, redone):
    out = tmp_path / "run"
    _kill_at(out, stage, delay)
    proc = subprocess.run(_command(out), capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    for what in reused:
        assert f"reusing the {what} in" in err
    for what in redone:
        assert f"reusing the {what} in" not in err
    # every piece of evidence left is whole and recorded as made by this command
    for name in ("range_test.csv", "sweep_momentum.csv", "sweep_weight_decay.csv"):
        assert (out / name).exists()
        entry = evidence._read(out)[name]
        assert all(evidence.file_digest(out / f) == d for f, d in entry["files"].items())
    curve = RangeTestResult.load(out / "range_test.csv")
    assert len(curve.frame) == curve.meta["recorded"] and curve.stopped in ("completed", "diverged", "nan")
    assert (out / "trials.csv").exists() and (out / "report.html").exists()
    assert not list(out.glob(".*.tmp"))
