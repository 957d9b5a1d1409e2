"""Stop `lrsearch auto` at a stage, rerun the same command: it completes, and nothing
half-made is reused (each piece reused is the very file recorded whole in evidence.json).
SIGKILL loses only the step running; SIGTERM keeps what Ctrl-C keeps and says so.

Each signal is sent after an event the test waits for (a line on stderr, a trial running
in the storage), never after a fixed sleep, so the tests hold on a loaded machine."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lrsearch.run import evidence
from lrsearch.rangetest.result import RangeTestResult
from tests.support import CLI_MODEL, ROOT

MODEL = CLI_MODEL
WAIT = 300  # seconds an event may take on a loaded machine


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lrsearch", "auto", str(MODEL), "--out", str(out), "--steps", "40",
            "--min-lr", "1e-4", "--trials", "2", "--epochs", "1", "--pruner", "none", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONFAULTHANDLER": "1"}


class Running:
    """A command whose stderr is read as it comes, so a test can wait for what it says."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=_env(),
                                     cwd=ROOT)
        self.err = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: os.read(self.proc.stderr.fileno(), 4096), b""):
            with self._lock:
                self.err += chunk.decode(errors="replace")

    def said(self, pattern: str) -> bool:
        with self._lock:
            return re.search(pattern, self.err, re.MULTILINE) is not None

    def wait_for(self, event: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not event():
            assert self.proc.poll() is None, f"exited ({self.proc.returncode}) before {what}:\n{self.err}"
            assert time.monotonic() < deadline, f"never got to {what}:\n{self.err}"
            time.sleep(0.02)

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            self.proc.kill()
        self._reader.join(timeout=30)
        return code


def _trial_running(out: Path) -> Callable[[], bool]:
    import optuna

    def running() -> bool:
        if not (out / "study.db").exists():
            return False
        try:
            storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
            return any(t.state == optuna.trial.TrialState.RUNNING
                       for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id))
        except Exception:  # noqa: BLE001 - the study is being created: not yet
            return False

    return running


def _trial_states(out: Path) -> list[str]:
    import optuna

    study = optuna.load_study(study_name="cli_model", storage=f"sqlite:///{out / 'study.db'}")
    return [t.state.name for t in study.trials]


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage,reused,redone",
    [
        ("range-test", (), ("range test", "momentum sweep", "weight-decay sweep")),
        ("sweep", ("range test",), ("momentum sweep", "weight-decay sweep")),
        ("trial", ("range test", "momentum sweep", "weight-decay sweep"), ()),
    ],
)
def test_killed_auto_reruns_to_completion(tmp_path, stage, reused, redone):
    out = tmp_path / "run"
    run = Running(_command(out))
    events = {
        "range-test": lambda: run.said(r"^range test: "),
        "sweep": lambda: run.said(r"^momentum sweep over"),
        "trial": _trial_running(out),
    }
    run.wait_for(events[stage], stage)
    run.stop(signal.SIGKILL)
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


@pytest.mark.slow
def test_sigterm_during_a_trial_fails_it_at_once_and_says_what_is_kept(tmp_path):
    out = tmp_path / "run"
    run = Running(_command(out, "--no-sweeps", "--epochs", "300"))  # a trial long enough to be caught
    run.wait_for(_trial_running(out), "a running trial")
    code = run.stop(signal.SIGTERM)
    assert code == 143, run.err[-4000:]  # a crash at exit shows its Python stack (faulthandler)
    last = run.err.strip().splitlines()[-1]
    assert last == (f"lrsearch: stopped by SIGTERM: finished trials are kept in sqlite:///{(out / 'study.db').resolve()} "
                    "(study 'cli_model'); run the same command again to resume")
    assert _trial_states(out)[-1] == "FAIL"  # not RUNNING until a heartbeat times out
    assert "Traceback" not in run.err


MARKING_MODEL = """
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

MARK = Path(__file__).with_suffix(".mark")  # appears once the range test has taken 100 batches


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, 3, 64)

    def batches():
        for i in range(10**9):
            if i == 100:
                MARK.touch()
            yield x[:8], y[:8]

    spec = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(batches, output_signature=spec), (x, y)


def build_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model
"""


@pytest.mark.slow
def test_sigterm_during_the_range_test_keeps_the_curve_as_ctrl_c_does(tmp_path):
    model = tmp_path / "marking.py"
    model.write_text(MARKING_MODEL)
    out = tmp_path / "rt"
    run = Running([sys.executable, "-m", "lrsearch", "range-test", str(model), "--out", str(out), "--steps",
                   "1000000", "--min-lr", "1e-6", "--max-lr", "1e-5"])
    run.wait_for(model.with_suffix(".mark").exists, "the 100th batch")
    code = run.stop(signal.SIGTERM)
    assert code == 143, run.err[-4000:]  # a crash at exit shows its Python stack (faulthandler)
    curve = RangeTestResult.load(out / "range_test.csv")
    steps = len(curve.frame)
    assert 1 <= steps < 1000000 and curve.stopped == "interrupted"
    assert run.err.strip().splitlines()[-1] == (
        f"lrsearch: stopped by SIGTERM: the curve so far ({steps} steps) is saved in {out / 'range_test.csv'}; "
        "'lrsearch suggest' reads it")


@pytest.mark.slow
def test_sigterm_during_a_sweep_keeps_its_finished_values_and_a_rerun_redoes_it(tmp_path):
    out = tmp_path / "run"
    command = _command(out, "--steps", "3000", "--min-lr", "1e-5", "--max-lr", "1")
    run = Running(command)
    run.wait_for(lambda: run.said(r"^sweep momentum=0\.9$"), "the second momentum value")
    code = run.stop(signal.SIGTERM)
    assert code == 143, run.err[-4000:]  # a crash at exit shows its Python stack (faulthandler)
    last = run.err.strip().splitlines()[-1]
    csv = out / "sweep_momentum.csv"
    match = re.fullmatch(
        rf"lrsearch: stopped by SIGTERM: the range test is kept in {re.escape(str(out))}; the momentum sweep was "
        rf"running; the momentum sweep's finished values \(([0-9., ]+)\) are saved in {re.escape(str(csv))}; "
        r"a rerun redoes the momentum sweep", last)
    assert match, last
    assert ".sweep_result" not in run.err
    from lrsearch.rangetest.sweeps import SweepResult

    kept = SweepResult.load(csv)
    assert [f"{v:g}" for v in kept.results] == match.group(1).split(", ")
    assert match.group(1) in ("0.95", "0.95, 0.9")
    rerun = subprocess.run(command + ["--trials", "1"], capture_output=True, text=True, env=_env(), cwd=ROOT,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "momentum sweep redone: sweep_momentum.csv has no record of what produced it" in rerun.stderr
    assert len(SweepResult.load(csv).results) == 3


@pytest.mark.slow
def test_a_trial_sigterm_failed_runs_again_first_on_a_rerun(tmp_path):
    """SIGTERM fails the running trial; the same command run again starts with its
    parameters (a retry naming it, as Optuna's heartbeat retries a killed trial), once."""
    import optuna

    out = tmp_path / "run"
    command = _command(out, "--no-sweeps", "--epochs", "300")
    run = Running(command)
    run.wait_for(_trial_running(out), "a running trial")
    code = run.stop(signal.SIGTERM)
    assert code == 143, run.err[-4000:]  # a crash at exit shows its Python stack (faulthandler)
    study = optuna.load_study(study_name="cli_model", storage=f"sqlite:///{out / 'study.db'}")
    (failed,) = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed.user_attrs["interrupted"] is True and failed.params

    proc = subprocess.run([*command, "--trials", "1"], capture_output=True, text=True, env=_env(), cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"trial {failed.number} was stopped by a signal: its parameters run again first" in proc.stderr
    study = optuna.load_study(study_name="cli_model", storage=f"sqlite:///{out / 'study.db'}")
    first = next(t for t in study.trials if t.number > failed.number)
    assert first.params == failed.params and first.state.name == "COMPLETE"
    assert first.system_attrs["retry_history"] == [failed.number]
    assert first.user_attrs["interrupted"] is False

    from lrsearch.study.backends.optuna_study import requeue_interrupted

    assert requeue_interrupted(study) == []  # retried once, not on every rerun
    assert [t.state.name for t in study.trials].count("WAITING") == 0
