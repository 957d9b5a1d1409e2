"""What a user sees: live bars in a terminal (a pseudo-terminal here), none through a pipe
or with -q, and the run's summary at the end, checked against the run's own files."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pandas as pd
import pytest
from tests.support import CLI_MODEL, ROOT

MODEL = CLI_MODEL


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _in_terminal(*argv: str) -> tuple[int, str, str]:
    """Run `python -m lrsearch ARGV` with stderr on a 160x40 pseudo-terminal; returns
    (exit status, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", *map(str, argv)], cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out = proc.stdout.read().decode()
    proc.wait(timeout=600)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def _expected_summary(out: Path) -> tuple[str, str]:
    """The start of the schedule and quality lines, rebuilt from the run's files."""
    spec = json.loads((out / "schedule.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    history = pd.read_csv(out / "history.csv")
    best = int(spec["provenance"]["trial"])
    assert spec["provenance"]["value"] == pytest.approx(trials.loc[trials["number"] == best, "value"].iloc[0])
    family, c = spec["provenance"]["family"], spec["schedule"]["config"]
    if family == "one_cycle":
        rates = f"one-cycle, lr {c['max_lr'] / c['div_factor']:.3g} -> {c['max_lr']:.3g} -> "
    else:
        rates = f"cyclic ({c['mode']}), lr {c['base_lr']:.3g} <-> {c['max_lr']:.3g}, "
    acc = history[history["trial"] == best].sort_values("epoch")["val_accuracy"].iloc[-1]
    quality = f"val_loss {spec['provenance']['value']:.3g}"
    if best != 0:
        first = trials.loc[trials["number"] == 0, "value"].iloc[0]
        quality += f" (first trial {first:.3g})"
    quality += f", val_accuracy {acc:.3g}"
    return rates, quality


@pytest.mark.slow
def test_auto_in_a_terminal_shows_bars_and_ends_with_the_summary(tmp_path):
    out = tmp_path / "run"
    code, stdout, screen = _in_terminal("auto", MODEL, "--steps", "40", "--epochs", "2", "--trials", "2",
                                        "--no-sweeps", "--out", out)
    assert code == 0, screen
    assert stdout.splitlines()[-1] == str(out / "report.html")  # results on stdout, as without a terminal
    # the range test's bar, then the study's: trial n of N, epoch, the metric, the best so far
    assert "range test: 100%" in screen and "40/40 steps" in screen and "lr=" in screen
    assert "trial 1/2, epoch 1/2, val_loss=" in screen and "trial 2/2, epoch 2/2" in screen
    assert "study: 100%" in screen and "2/2 trials" in screen and "best=" in screen
    # the summary comes last, after the bars
    rates, quality = _expected_summary(out)
    lines = screen.rstrip("\n").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("schedule: "))
    schedule, measured, files, dashboard, load = lines[start:start + 5]
    assert schedule.startswith(f"schedule: {rates}")
    assert schedule.endswith(", SGD, 2 epochs")
    assert measured.startswith(quality) and measured.endswith("best of 2 (2 complete)")
    assert files == (f"files in {out}: schedule.json, report.html, trials.csv, history.csv, range_test.csv, "
                     "range_test.png, study.db")
    assert dashboard == f"next: lrsearch dashboard --out {out}"
    assert load.startswith(f'      spec = lrsearch.load_schedule("{out / "schedule.json"}")')
    assert lines[start + 5:] == []
    # the evidence is attached to the study, for `lrsearch dashboard --out`
    import optuna

    from lrsearch.run.artifacts import attached

    study = optuna.load_study(study_name="cli_model", storage=f"sqlite:///{out / 'study.db'}")
    assert sorted(m["filename"] for m in attached(study)) == ["range_test.csv", "range_test.png", "schedule.json"]


@pytest.mark.slow
def test_no_bars_through_a_pipe_or_with_q(tmp_path):
    args = ["tune", MODEL, "--bounds", "0.05", "0.5", "--epochs", "1", "--trials", "1"]
    piped = subprocess.run([sys.executable, "-m", "lrsearch", *map(str, args), "--out", tmp_path / "a"],
                           cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "%|" not in piped.stderr
    assert any(line.startswith("schedule: ") for line in piped.stderr.splitlines())  # the summary still comes
    code, _, screen = _in_terminal(*args, "--out", tmp_path / "b", "-q")
    assert code == 0
    assert screen == ""
