"""Storage URLs: the default SQLite file, clear errors, heartbeat and retries."""

from __future__ import annotations

import os
import time
import uuid

import optuna
import pytest

from lrsearch.errors import StorageError
from lrsearch.storage import default_storage_url, open_storage, storage_url, study_names

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
