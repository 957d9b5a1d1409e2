"""The command line's normal paths, Ctrl-C during a study, and the dashboard."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import keras
import numpy as np
import optuna
import pandas as pd
import pytest

import lrsearch
from lrsearch.cli.main import main
from lrsearch.rangetest.result import RangeTestResult
from tests.support import CLI_MODEL, ROOT

MODEL = CLI_MODEL


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_range_test_then_suggest_then_plot(capsys, tmp_path):
    code, out, err = run(capsys, "range-test", MODEL, "--steps", "30", "--min-lr", "1e-4", "--max-lr", "10",
                         "--out", tmp_path, "-q")
    assert code == 0, err
    printed = json.loads(out)
    saved = RangeTestResult.load(tmp_path / "range_test.csv")
    assert len(saved.frame) <= 30 and saved.frame["lr"].iloc[0] == pytest.approx(1e-4)
    assert printed == json.loads(json.dumps(saved.suggestion.to_dict()))
    assert (tmp_path / "range_test.png").read_bytes().startswith(b"\x89PNG")

    # the optimizer recorded beside the curve sets the margin, as in the range test itself
    code, out, _ = run(capsys, "suggest", tmp_path / "range_test.csv")
    lr, loss = saved.frame["lr"].to_numpy(), saved.frame["loss"].to_numpy()
    recorded = lrsearch.suggest(lr, loss, optimizer=saved.meta["optimizer"])
    assert code == 0 and json.loads(out) == printed == json.loads(json.dumps(recorded.to_dict()))
    code, out, _ = run(capsys, "suggest", tmp_path / "range_test.csv", "--optimizer", "Adam")
    adam = lrsearch.suggest(lr, loss, optimizer="Adam")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(adam.to_dict()))

    code, out, _ = run(capsys, "plot", tmp_path / "range_test.csv", "-o", tmp_path / "curve.png")
    assert code == 0 and out.strip() == str(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_tune_keras_model_then_export_report_plot(capsys, tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    np.savez(tmp_path / "digits.npz", x_train=x[:300], y_train=y[:300], x_val=x[300:400], y_val=y[300:400])
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "pre.keras")
    run_dir = tmp_path / "run"

    code, out, err = run(capsys, "tune", tmp_path / "pre.keras", "--data", tmp_path / "digits.npz",
                         "--bounds", "0.01", "0.5", "--trials", "2", "--epochs", "1", "--pruner", "none",
                         "--out", run_dir, "--study", "ft", "-q")
    assert code == 0, err
    assert out.split() == [str(run_dir / n) for n in ("trials.csv", "history.csv", "schedule.json")]
    assert len(pd.read_csv(run_dir / "trials.csv")) == 2

    code, out, err = run(capsys, "export", "--out", run_dir, "-o", tmp_path / "exported.json")
    assert code == 0, err
    spec = lrsearch.load_schedule(tmp_path / "exported.json")
    best = optuna.load_study(study_name="ft", storage=f"sqlite:///{run_dir / 'study.db'}").best_trial
    assert spec.provenance["trial"] == best.number and spec.provenance["value"] == pytest.approx(best.value)
    assert spec.provenance["bounds"] == {"base_lr": 0.01, "max_lr": 0.5}

    code, out, _ = run(capsys, "report", run_dir)
    assert code == 0 and out.strip() == str(run_dir / "report.html")
    assert f"<th>best trial</th><td>{best.number}</td>" in (run_dir / "report.html").read_text()

    code, out, _ = run(capsys, "plot", tmp_path / "exported.json")
    assert code == 0 and (tmp_path / "exported.png").read_bytes().startswith(b"\x89PNG")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _complete(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return []
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_the_next_run_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, "-m", "lrsearch", "tune", str(MODEL), "--bounds", "0.01", "0.5",
               "--epochs", "3", "--pruner", "none", "--out", str(tmp_path), "--study", "ctrl-c", "-q"]
    proc = subprocess.Popen([*command, "--trials", "200"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not _complete(storage, "ctrl-c"):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no trial finished within 180 s"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)  # a bound, not a wait: it returns when the process ends
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lrsearch: interrupted: finished trials are kept in sqlite:///")
    assert "(study 'ctrl-c')" in last and last.endswith("run the same command again to resume")
    kept = {t.number: t.params for t in _complete(storage, "ctrl-c")}
    assert kept and (tmp_path / "trials.csv").exists()

    again = subprocess.run([*command, "--trials", "1"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    now = {t.number: t.params for t in _complete(storage, "ctrl-c")}
    assert len(now) == len(kept) + 1
    assert all(now[number] == params for number, params in kept.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dashboard_serves_the_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="dash-study", storage=storage)
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.1},
                                              distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1)},
                                              value=0.5))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", "--storage", storage, "--port", str(port)],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body, page = time.monotonic() + 90, "", ""
        while "dash-study" not in body:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the dashboard did not answer within 90 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    body = response.read().decode()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert "<html" in page.lower()
        assert any(s["study_name"] == "dash-study" for s in json.loads(body)["study_summaries"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
