"""Every command in a fresh process, on the files an earlier command wrote.

One small `lrsearch auto` run (module-scoped) writes a run folder; each test then runs
one command on it with `python -m lrsearch` in a new interpreter, as a user would, so
nothing an earlier import left in memory can hide an import cycle or a missing
registration. Each asserts exit status 0 and a value known before the command ran.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.support import CLI_MODEL, ROOT

pytestmark = pytest.mark.slow

SMALL = ["--trials", "3", "--epochs", "2", "--steps", "60"]
PNG = b"\x89PNG\r\n\x1a\n"

SCHEDULE_FREE_MODEL = '''
import keras
from sklearn.datasets import load_digits

import lrsearch.optimizers


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:320], y[:320]), (x[320:480], y[320:480])


def build_model():
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=lrsearch.optimizers.ScheduleFreeAdamW(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''


def lrsearch_cli(*argv: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m lrsearch ARGV` in a new interpreter; fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "lrsearch", *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"lrsearch {' '.join(map(str, argv))} exited {done.returncode}: {done.stderr[-3000:]}"
    return done


def stdout_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fresh") / "digits"
    done = lrsearch_cli("auto", CLI_MODEL, "--out", out, *SMALL, "--final-epochs", "3")
    assert str(out / "report.html") in stdout_lines(done) and str(out / "final_schedule.json") in stdout_lines(done)
    return out


def _document(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("lrsearch_version")
    return doc


def test_auto_wrote_every_file_and_a_schedule_sized_at_its_batch(run_dir):
    for name in ("range_test.csv", "range_test.meta.json", "sweep_momentum.csv", "sweep_weight_decay.csv",
                 "trials.csv", "history.csv", "study.db", "schedule.json", "report.html"):
        assert (run_dir / name).is_file(), name
    doc = json.loads((run_dir / "schedule.json").read_text())
    # cli_model.py: 320 samples at the default batch 32 are 10 steps an epoch
    assert (doc["version"], doc["batch_size"], doc["steps_per_epoch"], doc["epochs"]) == (2, 32, 10, 2)
    final = json.loads((run_dir / "final_schedule.json").read_text())
    assert (final["batch_size"], final["steps_per_epoch"], final["epochs"]) == (32, 10, 3)
    assert len(pd.read_csv(run_dir / "trials.csv")) == 3


def test_report(run_dir):
    (run_dir / "report.html").unlink()
    done = lrsearch_cli("report", run_dir)
    assert stdout_lines(done) == [str(run_dir / "report.html")]
    page = (run_dir / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "cli_model" in page


@pytest.mark.parametrize("name", ["range_test.csv", "sweep_momentum.csv", "sweep_weight_decay.csv", "schedule.json",
                                  "final_schedule.json"])
def test_plot_of_every_file_kind(run_dir, tmp_path, name):
    image = tmp_path / f"{Path(name).stem}.png"
    done = lrsearch_cli("plot", run_dir / name, "-o", image)
    assert stdout_lines(done) == [str(image)]
    data = image.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


def test_plot_writes_beside_the_file_by_default(run_dir):
    done = lrsearch_cli("plot", run_dir / "schedule.json")
    assert stdout_lines(done) == [str(run_dir / "schedule.png")]
    assert (run_dir / "schedule.png").read_bytes().startswith(PNG)


def test_suggest_reads_the_bounds_the_range_test_recorded(run_dir):
    recorded = json.loads((run_dir / "range_test.meta.json").read_text())["suggestion"]
    printed = json.loads(lrsearch_cli("suggest", run_dir / "range_test.csv").stdout)
    assert printed["max_lr"] == recorded["max_lr"] and printed["base_lr"] == recorded["base_lr"]


def test_export_from_the_run_folder_and_by_its_older_name(run_dir, tmp_path):
    expected = _document(run_dir / "schedule.json")
    target = tmp_path / "exported.json"
    done = lrsearch_cli("export", "--from", run_dir, "-o", target)
    assert stdout_lines(done) == [str(target)]
    exported = _document(target)
    assert exported["schedule"]["config"]["max_lr"] == expected["schedule"]["config"]["max_lr"]  # the peak
    assert exported == expected
    (run_dir / "schedule.json").unlink()
    done = lrsearch_cli("export", "--out", run_dir)  # the older name; writes into the run folder
    assert stdout_lines(done) == [str(run_dir / "schedule.json")]
    assert _document(run_dir / "schedule.json") == expected


def test_tune_resumes_the_study(run_dir, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(run_dir, copy)
    lrsearch_cli("tune", CLI_MODEL, "--out", copy, "--range-test", copy / "range_test.csv",
                 "--trials", "1", "--epochs", "2")
    trials = pd.read_csv(copy / "trials.csv")
    assert sorted(trials["number"]) == [0, 1, 2, 3]  # the 3 of auto, then one more
    assert json.loads((copy / "schedule.json").read_text())["batch_size"] == 32


def test_range_test_runs_the_steps_asked_for(tmp_path):
    done = lrsearch_cli("range-test", CLI_MODEL, "--out", tmp_path, "--steps", "40", "--min-lr", "1e-4")
    printed = json.loads(done.stdout)
    meta = json.loads((tmp_path / "range_test.meta.json").read_text())
    assert (meta["steps"], meta["min_lr"], meta["batch_size"]) == (40, 1e-4, 32)
    assert printed["max_lr"] == meta["suggestion"]["max_lr"]
    assert len(pd.read_csv(tmp_path / "range_test.csv")) == meta["recorded"]
    assert (tmp_path / "range_test.png").read_bytes().startswith(PNG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_run(run_dir):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", "--out", str(run_dir), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status, body = time.monotonic() + 90, None, ""
        while status != 200:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the dashboard did not answer within 90 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    status, body = response.status, response.read().decode()
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        assert [s["study_name"] for s in json.loads(body)["study_summaries"]] == ["cli_model"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_schedule_free_model_end_to_end(tmp_path):
    model_file = tmp_path / "schedule_free_model.py"
    model_file.write_text(SCHEDULE_FREE_MODEL)
    out = tmp_path / "sf"
    lrsearch_cli("auto", model_file, "--out", out, "--trials", "2", "--epochs", "2", "--steps", "60", "--no-sweeps")
    doc = _document(out / "schedule.json")
    assert (doc["optimizer"]["class_name"], doc["batch_size"], doc["steps_per_epoch"]) == ("ScheduleFreeAdamW", 32, 10)
    target = tmp_path / "exported.json"
    lrsearch_cli("export", "--from", out, "-o", target)
    assert _document(target) == doc
    image = tmp_path / "sf.png"
    lrsearch_cli("plot", target, "-o", image)
    assert image.read_bytes().startswith(PNG)
    lrsearch_cli("report", out)
    assert "ScheduleFreeAdamW" in (out / "report.html").read_text()
