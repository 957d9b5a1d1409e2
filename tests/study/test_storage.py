"""Storage URLs: the default SQLite file, clear errors, heartbeat and retries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from lrsearch.core.errors import StorageError
from lrsearch.study.storage import default_storage_url, open_storage, storage_failure, storage_url, study_names
from lrsearch.study.tune import load_result
from tests.support import SUPPORT

optuna.logging.set_verbosity(optuna.logging.WARNING)


def postgres_url() -> str:
    """The test server's URL; skips without one, fails in CI (the server is required)."""
    url = os.environ.get("LRSEARCH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but LRSEARCH_TEST_POSTGRES_URL is unset: .ci/run starts the server")
        pytest.skip("set LRSEARCH_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


def test_default_storage_is_a_sqlite_file_in_the_output_directory(tmp_path):
    url = default_storage_url(tmp_path / "runs" / "s1")
    assert url == f"sqlite:///{tmp_path / 'runs' / 's1' / 'study.db'}"
    storage = open_storage(url)
    optuna.create_study(storage=storage, study_name="s1")
    assert (tmp_path / "runs" / "s1" / "study.db").is_file()
    assert study_names(url) == ["s1"]
    with pytest.raises(StorageError, match="no study 'nope' in sqlite:///.*; it holds: s1$"):
        load_result(url, "nope")


@pytest.mark.parametrize(
    "url,needle",
    [
        ("redis://localhost/0", "unknown storage kind 'redis'"),
        ("study.db", "must be a database URL"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot open storage postgresql://nobody@"),
        ("sqlite:////proc/no/such/dir/x.db", "cannot create the folder"),
    ],
)
def test_unknown_or_unreachable_storage_raises_one_line(url, needle):
    with pytest.raises(StorageError, match=needle) as info:
        open_storage(url)
    assert "\n" not in str(info.value)


def test_password_is_not_repeated_in_messages():
    assert storage_url("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
    with pytest.raises(StorageError) as info:
        open_storage("postgresql://me:secret@127.0.0.1:1/x")
    assert "secret" not in str(info.value)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_trial_whose_worker_stopped_beating_is_failed_and_retried(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hb")
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)  # then its worker "dies": no more beats
    time.sleep(2.5)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == optuna.trial.TrialState.FAIL
    retry = trials[1]
    # the retry re-runs the dead trial's parameters and says where it came from
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == dead.params
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert len(trials) == 3


@pytest.mark.postgres
def test_postgresql_storage_round_trip():
    url = postgres_url()
    name = f"storage-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    again = optuna.load_study(storage=open_storage(url), study_name=name)
    assert len(again.trials) == 3 and name in study_names(url)


@pytest.mark.postgres
def test_the_bare_postgresql_url_opens_in_plain_optuna():
    """The URL a user copies from the README works without lrsearch in between."""
    url = postgres_url()
    assert url.startswith("postgresql://")
    name = f"bare-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.25) ** 2, n_trials=2)
    plain = optuna.load_study(storage=url, study_name=name)
    assert [t.value for t in plain.trials] == [t.value for t in study.trials]
    assert plain.trials[0].params == study.trials[0].params


# ----------------------------------------------------------- several worker processes

WORKER = SUPPORT / "study_worker.py"


def _worker(url, name, out, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, name, "--out", str(out), *map(str, args)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def _check_each_trial_recorded_once(url, name, n, epochs=(1,)):
    result = load_result(url, name)
    trials, history = result.trials, result.history
    done = trials[trials["state"] != "FAIL"]
    assert sorted(trials["number"]) == list(range(len(trials)))
    assert len(done) == n and (done["state"] == "COMPLETE").all()
    # every finished trial's epochs exactly once, nothing lost or doubled between workers
    per_trial = history.groupby("trial")["epoch"].apply(list)
    assert [per_trial[i] for i in done["number"]] == [list(epochs)] * n
    assert result.best is not None and result.best.provenance["study"] == name
    return result


@pytest.mark.slow
@pytest.mark.postgres
def test_two_worker_processes_share_one_postgresql_study(tmp_path):
    url, name = postgres_url(), f"pg-{uuid.uuid4().hex[:8]}"
    procs = [_worker(url, name, tmp_path / f"w{i}", "--trials", 2) for i in range(2)]
    for p in procs:
        _wait(p)
    result = _check_each_trial_recorded_once(url, name, 4)
    assert len(result.trials) == 4


@pytest.mark.slow
def test_a_worker_killed_mid_trial_then_two_workers_share_the_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    name = "shared"
    # the first worker sleeps after each epoch so that it is killed inside its trial
    first = _worker(url, name, tmp_path / "w0", "--trials", 1, "--sleep", 60)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            running = _running_with_an_epoch(url, name)
            if running is not None:
                break
            assert first.poll() is None, first.communicate()[0][-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("the first worker never finished an epoch")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # its trial is still RUNNING: only the missing heartbeat tells that its worker died
    assert _state(url, name, running) == "RUNNING"
    time.sleep(3)  # the workers' grace period (tests/support/study_worker.py --grace)
    procs = [_worker(url, name, tmp_path / f"w{i}", "--trials", 2) for i in (1, 2)]
    for p in procs:
        _wait(p)
    result = _check_each_trial_recorded_once(url, name, 4)
    trials = result.trials.set_index("number")
    assert len(trials) == 5 and trials.loc[running, "state"] == "FAIL"
    # the dead trial ran again, once, with its parameters, from scratch
    retry = trials[trials["retry_of"] == running]
    assert len(retry) == 1 and retry["state"].iloc[0] == "COMPLETE"
    frozen = result.study.trials
    assert frozen[int(retry.index[0])].params == frozen[running].params


def _running_with_an_epoch(url, name):
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    except KeyError:
        return None
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("history"):
            return t.number
    return None


def _state(url, name, number):
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    return study.trials[number].state.name


def test_a_sqlite_file_locked_by_another_process_is_named_after_a_bounded_wait(tmp_path, monkeypatch):
    """Another process's open write transaction: one line naming the file once the (short)
    lock wait is over, not Optuna's StorageInternalError."""
    import sqlite3

    import lrsearch.study.storage as storage_module

    assert storage_module._SQLITE_TIMEOUT_S <= 15
    monkeypatch.setattr(storage_module, "_SQLITE_TIMEOUT_S", 0.5)
    path = tmp_path / "study.db"
    storage = open_storage(f"sqlite:///{path}")
    optuna.create_study(storage=storage, study_name="a")
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        with pytest.raises(Exception) as info:
            optuna.create_study(storage=storage, study_name="b")
        assert time.monotonic() - start < 5
    finally:
        other.rollback()
        other.close()
    failure = storage_failure(info.value)
    assert isinstance(failure, StorageError)
    assert str(failure).startswith(f"the study file {path} is locked by another process")
    assert storage_failure(ValueError("something else")) is None


def test_a_read_only_sqlite_file_is_named(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("chmod does not stop root from writing")
    path = tmp_path / "study.db"
    storage = open_storage(f"sqlite:///{path}")
    optuna.create_study(storage=storage, study_name="a")
    path.chmod(0o444)
    try:
        with pytest.raises(Exception) as info:
            optuna.create_study(storage=open_storage(f"sqlite:///{path}"), study_name="b")
    finally:
        path.chmod(0o644)
    message = str(info.value) if isinstance(info.value, StorageError) else str(storage_failure(info.value))
    assert str(path) in message and "read-only" in message


def test_a_server_that_accepts_but_never_answers_is_given_up_naming_the_host(monkeypatch):
    """A port that accepts the connection and then says nothing: the connect timeout ends
    the wait, and the line names the host."""
    import socket
    import threading

    pytest.importorskip("psycopg")
    import lrsearch.study.storage as storage_module

    assert storage_module._CONNECT_TIMEOUT_S <= 15
    monkeypatch.setattr(storage_module, "_CONNECT_TIMEOUT_S", 2)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(StorageError) as info:
            open_storage(f"postgresql://me@127.0.0.1:{port}/db")
        assert time.monotonic() - start < 15
    finally:
        done.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()
    assert f"127.0.0.1:{port}" in str(info.value) and "does not answer" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_full_disk_under_the_study_file_is_named(tmp_path):
    """SQLite's "database or disk is full" (a real 64 KiB tmpfs where root can mount one)."""
    import sqlite3
    import subprocess

    wrapped = RuntimeError("An exception is raised during the commit.")
    wrapped.__cause__ = sqlite3.OperationalError("database or disk is full")
    message = str(storage_failure(wrapped, f"sqlite:///{tmp_path / 'study.db'}"))
    assert message == (f"the study file {tmp_path / 'study.db'} cannot be written: no space left on the disk; "
                       "free space or use another file")
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    try:
        (disk / "filler").write_bytes(b"\0" * 40_000)
        with pytest.raises(Exception) as info:
            storage = open_storage(f"sqlite:///{disk / 'study.db'}")
            study = optuna.create_study(storage=storage, study_name="a")
            for _ in range(200):
                study.enqueue_trial({"x": 1.0}, user_attrs={"pad": "x" * 2000})
        failure = info.value if isinstance(info.value, StorageError) else storage_failure(info.value)
        assert str(disk / "study.db") in str(failure) and "no space left" in str(failure)
    finally:
        subprocess.run(["umount", str(disk)], check=False)
