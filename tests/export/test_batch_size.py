"""The batch size travels with the schedule: written to the file, read from the previous
version's files with a note, and checked once when a real `fit` begins."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pandas as pd
import pytest

from lrsearch.export.fit_check import length_mismatch
from lrsearch.export.spec import ScheduleSpec, load_schedule
from lrsearch.schedules import OneCycle
from tests.support import DATA

RELEASE_0_1 = DATA / "release_0_1"
CHECK_LOGGER = "lrsearch.export.fit_check"


def sized_spec(batch_size=16, steps_per_epoch=4, epochs=2):
    sched = OneCycle(0.05, total_steps=steps_per_epoch * epochs)
    return ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(),
                        steps_per_epoch=steps_per_epoch, epochs=epochs, batch_size=batch_size)


@pytest.mark.backends
def test_the_written_file_records_batch_size_and_steps_per_epoch(tmp_path):
    doc = json.loads(sized_spec().save(tmp_path / "schedule.json").read_text())
    assert (doc["version"], doc["batch_size"], doc["steps_per_epoch"], doc["epochs"]) == (2, 16, 4, 2)
    assert load_schedule(tmp_path / "schedule.json").batch_size == 16


@pytest.mark.backends
def test_a_release_0_1_file_loads_with_one_note(tmp_path, caplog):
    source = RELEASE_0_1 / "schedule.json"
    assert json.loads(source.read_text())["version"] == 1
    with caplog.at_level(logging.INFO, logger="lrsearch"):
        spec = load_schedule(source)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "does not record the batch size its 12 steps an epoch" in notes[0]
    assert (spec.batch_size, spec.steps_per_epoch, spec.epochs, spec.optimizer) == (None, 12, 10, "SGD")
    assert spec.optimizer_config == {"nesterov": True} and spec.weight_decay == 1e-4
    recorded = pd.read_csv(RELEASE_0_1 / "schedule_table.csv")
    # the table was recorded on TensorFlow; another backend's float32 cosine differs by a few
    # units in the last place of the largest term (max_lr = 0.05), which shows where the rate is small
    np.testing.assert_allclose(spec.table()[["lr", "momentum"]].to_numpy(),
                               recorded[["lr", "momentum"]].to_numpy(), rtol=1e-6,
                               atol=4 * float(np.finfo(np.float32).eps) * 0.05)
    again = json.loads(spec.save(tmp_path / "schedule.json").read_text())
    assert (again["version"], again["batch_size"]) == (2, None)
    caplog.clear()
    load_schedule(tmp_path / "schedule.json")  # saved again: version 2, no note
    assert not caplog.records


def _fit(spec, *, batch_size, epochs, samples=64):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=spec.build_optimizer(), loss="mse")
    x = np.random.default_rng(0).normal(size=(samples, 3)).astype("float32")
    check = spec.callback()
    model.fit(x, x[:, :1], batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[check])
    return check, model


@pytest.mark.backends
def test_the_callback_warns_once_for_a_fit_at_another_batch_size(caplog):
    spec = sized_spec(batch_size=16, steps_per_epoch=4, epochs=2)  # 64 samples at 16: 4 steps an epoch
    with caplog.at_level(logging.WARNING, logger=CHECK_LOGGER):
        check, model = _fit(spec, batch_size=32, epochs=2)
    messages = [r.getMessage() for r in caplog.records if r.name == CHECK_LOGGER]
    assert messages == [
        "this fit runs 2 epochs of 2 steps, but the schedule was sized for 2 epochs of 4 steps at batch_size=16: "
        "fit with batch_size=16, epochs=2, or to train at another batch size rescale the peak rate with "
        "lrsearch.schedules.scale_lr and size a new schedule for its steps"
    ]
    assert int(model.optimizer.iterations) == 4  # half the schedule's 8 steps: it never annealed
    assert check.message == messages[0]


@pytest.mark.backends
def test_the_callback_is_silent_for_the_fit_it_was_sized_for(caplog):
    with caplog.at_level(logging.WARNING, logger=CHECK_LOGGER):
        check, model = _fit(sized_spec(), batch_size=16, epochs=2)
    assert [r for r in caplog.records if r.name == CHECK_LOGGER] == [] and check.message is None
    assert int(model.optimizer.iterations) == 8


@pytest.mark.backends
def test_the_callback_names_the_epochs_when_only_they_differ(caplog):
    with caplog.at_level(logging.WARNING, logger=CHECK_LOGGER):
        _fit(sized_spec(), batch_size=16, epochs=3)
    messages = [r.getMessage() for r in caplog.records if r.name == CHECK_LOGGER]
    assert messages == ["this fit runs 3 epochs of 4 steps, but the schedule was sized for 2 epochs of 4 steps at "
                        "batch_size=16: fit with epochs=2, or the schedule ends before the run does (or never "
                        "anneals)"]


def test_length_mismatch_counts_updates_and_knows_when_it_cannot_tell():
    sized = dict(steps_per_epoch=10, epochs=5, batch_size=32)
    assert length_mismatch(**sized, fit_steps=20, fit_epochs=5, accumulation=2) is None  # 2 batches an update
    assert length_mismatch(**sized, fit_steps=None, fit_epochs=5) is None  # a dataset of unknown length
    assert length_mismatch(steps_per_epoch=None, epochs=5, batch_size=None, fit_steps=7, fit_epochs=5) is None
    unknown_batch = length_mismatch(steps_per_epoch=10, epochs=5, batch_size=None, fit_steps=20, fit_epochs=5)
    assert unknown_batch.startswith("this fit runs 5 epochs of 20 steps, but the schedule was sized for 5 epochs "
                                    "of 10 steps: batch the data so an epoch has 10 steps")
    assert "lrsearch.schedules.scale_lr" in unknown_batch
