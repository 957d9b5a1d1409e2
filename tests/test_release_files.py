"""Files written by release 0.1.0 (before the package was split into subpackages) still
load: `.keras` models compiled with lrsearch's schedules and optimizers, and a
`schedule.json`. The files under tests/data/release_0_1 were saved by that release and
are never rewritten; the values they must give back were saved beside them.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

import lrsearch
from tests.support import DATA

RELEASE = DATA / "release_0_1"


@pytest.mark.parametrize("name", ["one_cycle_sgd", "schedule_free_adamw"])
def test_a_saved_model_loads_with_its_optimizer_and_predicts_as_saved(name):
    model = keras.saving.load_model(RELEASE / f"{name}.keras")
    saved = np.load(RELEASE / f"{name}_inputs.npz")
    np.testing.assert_allclose(model.predict(saved["x"], verbose=0), saved["predictions"], rtol=1e-6, atol=1e-6)
    assert type(model.optimizer).__module__.startswith("lrsearch.optimizers")


def test_the_one_cycle_model_keeps_its_schedules():
    optimizer = keras.saving.load_model(RELEASE / "one_cycle_sgd.keras").optimizer
    assert isinstance(optimizer, lrsearch.optimizers.SGD)
    rate = optimizer._learning_rate
    assert rate == lrsearch.schedules.OneCycle(0.05, total_steps=40)
    assert optimizer.momentum == rate.momentum_schedule()
    assert optimizer.weight_decay == lrsearch.schedules.WarmupCosine(1e-3, total_steps=40, warmup_steps=4)
    # one epoch of 4 batches ran before the save: the counter carries on from there
    assert int(optimizer.iterations) == 4


def test_a_saved_schedule_file_loads_and_gives_the_saved_table():
    spec = lrsearch.load_schedule(RELEASE / "schedule.json")
    assert json.loads((RELEASE / "schedule.json").read_text())["version"] == 1
    assert spec.optimizer == "SGD" and spec.epochs == 10 and spec.steps_per_epoch == 12
    expected = pd.read_csv(RELEASE / "schedule_table.csv")
    table = spec.table()
    for column in ("lr", "momentum", "weight_decay"):
        np.testing.assert_allclose(table[column].to_numpy(), expected[column].to_numpy(), rtol=1e-6,
                                   atol=4 * float(np.finfo(np.float32).eps) * 0.05)  # float32 ulps of max_lr
    optimizer = spec.build_optimizer()
    assert isinstance(optimizer, lrsearch.optimizers.SGD) and optimizer.nesterov


def test_files_written_now_name_the_same_public_modules():
    """What Keras' serialization records as a class's module is the public path, as the
    old release wrote it, not the module inside the package that defines the class."""
    old = json.loads((RELEASE / "schedule.json").read_text())
    spec = lrsearch.load_schedule(RELEASE / "schedule.json")
    new = spec.to_dict()
    assert new["schedule"]["module"] == old["schedule"]["module"] == "lrsearch.schedules"
    assert new["momentum"]["module"] == old["momentum"]["module"]
    saved = keras.saving.serialize_keras_object(lrsearch.optimizers.SGD(0.1))
    assert saved["module"] == "lrsearch.optimizers"
