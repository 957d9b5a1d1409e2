"""Ctrl-C held back while a study books a trial: raised where a trial trains or when the
hold ends, never inside Optuna's bookkeeping (which would leave the trial RUNNING and its
heartbeat thread alive, so that the process hangs at exit)."""

from __future__ import annotations

import os
import signal
import threading

import optuna
import pytest

from lrsearch.core.interrupts import held, interruptible


def _ctrl_c() -> None:
    """Send SIGINT to this process and let Python run its handler (it runs between bytecodes)."""
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # the handler runs at the latest on the next few bytecodes
        pass


def test_outside_a_hold_ctrl_c_raises_at_once():
    with pytest.raises(KeyboardInterrupt):
        _ctrl_c()
        pytest.fail("not reached: the handler raised")


def test_a_hold_notes_ctrl_c_and_raises_it_when_it_ends():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with held():
            _ctrl_c()
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_noted_ctrl_c_raises_on_entering_the_interruptible_part_and_once_only():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with held():
            _ctrl_c()
            reached.append("noted")
            try:
                with interruptible():
                    reached.append("not reached")
            except KeyboardInterrupt:
                reached.append("raised on entry")
            reached.append("hold goes on")
            with interruptible():
                _ctrl_c()
                reached.append("not reached either")
    assert reached == ["noted", "raised on entry", "hold goes on"]


def test_a_hold_without_a_signal_changes_nothing():
    with held():
        with interruptible():
            value = 1
    assert value == 1


class _InterruptingSampler(optuna.samplers.RandomSampler):
    """Presses Ctrl-C while Optuna asks for the second trial: the trial is in the storage,
    RUNNING, and neither the heartbeat thread nor the objective's `try` has begun."""

    def before_trial(self, study, trial):
        if trial.number == 1:
            _ctrl_c()
        super().before_trial(study, trial)


def _heartbeats() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_record_heartbeat" in t.name]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeat_interval
def test_ctrl_c_while_optuna_books_a_trial_fails_that_trial_and_stops_its_heartbeat(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=60)
    study = optuna.create_study(storage=storage, sampler=_InterruptingSampler(seed=0))
    trained = []

    def objective(trial: optuna.trial.Trial) -> float:
        with interruptible():  # the second trial's Ctrl-C, noted while it was asked for, raises here
            x = trial.suggest_float("x", 0.0, 1.0)
            trained.append(trial.number)
            return x

    optuna.logging.set_verbosity(optuna.logging.CRITICAL)
    with pytest.raises(KeyboardInterrupt):
        with held():
            study.optimize(objective, n_trials=3, catch=())
    assert trained == [0]  # the second trial never trained
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert _heartbeats() == []
