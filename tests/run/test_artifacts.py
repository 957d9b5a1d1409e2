"""The run's evidence as Optuna artifacts of its study, served by `lrsearch dashboard`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna

from lrsearch.run.artifacts import EVIDENCE, attach_evidence, attached
from tests.support import ROOT

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _run_folder(folder: Path) -> optuna.study.Study:
    (folder / "range_test.csv").write_text("step,lr,loss,smooth_loss\n0,0.001,2.3,2.3\n1,0.01,2.1,2.2\n")
    (folder / "range_test.png").write_bytes(PNG)
    (folder / "schedule.json").write_text(json.dumps({"format": "lrsearch.schedule", "version": 1}))
    study = optuna.create_study(study_name="art", storage=f"sqlite:///{folder / 'study.db'}")
    study.add_trial(optuna.trial.create_trial(
        params={"lr": 0.1}, distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1)}, value=0.5))
    return study


def test_evidence_is_attached_once_and_a_changed_file_again(tmp_path):
    study = _run_folder(tmp_path)
    assert attach_evidence(study, tmp_path) == ["range_test.csv", "range_test.png", "schedule.json"]
    metas = sorted(attached(study), key=lambda m: m["filename"])
    assert [(m["filename"], m["mimetype"]) for m in metas] == [
        ("range_test.csv", "text/csv"), ("range_test.png", "image/png"), ("schedule.json", "application/json")]
    # Optuna's own listing sees them too (what optuna-dashboard reads)
    assert {m.filename for m in optuna.artifacts.get_all_artifact_meta(study)} == set(EVIDENCE) & {
        "range_test.csv", "range_test.png", "schedule.json"}
    stored = tmp_path / "artifacts" / metas[1]["artifact_id"]
    assert stored.read_bytes() == PNG
    assert attach_evidence(study, tmp_path) == []  # unchanged: nothing new
    (tmp_path / "schedule.json").write_text(json.dumps({"format": "lrsearch.schedule", "version": 1, "x": 2}))
    assert attach_evidence(study, tmp_path) == ["schedule.json"]
    assert [m["filename"] for m in attached(study)].count("schedule.json") == 2


def test_a_folder_without_evidence_attaches_nothing(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert attach_evidence(study, tmp_path) == []
    assert not (tmp_path / "artifacts").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read(), response.headers.get("Content-Type", "")


def test_dashboard_serves_the_attached_files(tmp_path):
    study = _run_folder(tmp_path)
    attach_evidence(study, tmp_path)
    metas = {m["filename"]: m["artifact_id"] for m in attached(study)}
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", "--out", str(tmp_path), "--port",
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the dashboard did not answer within 90 s"
            try:
                png, png_type = _get(f"{base}/artifacts/{study._study_id}/{metas['range_test.png']}")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert png == PNG and png_type == "image/png"
        curve, curve_type = _get(f"{base}/artifacts/{study._study_id}/{metas['range_test.csv']}")
        assert curve == (tmp_path / "range_test.csv").read_bytes() and curve_type.startswith("text/csv")
        schedule, _ = _get(f"{base}/artifacts/{study._study_id}/{metas['schedule.json']}")
        assert json.loads(schedule) == {"format": "lrsearch.schedule", "version": 1}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
