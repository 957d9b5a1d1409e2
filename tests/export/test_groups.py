"""`schedule.json` of a `MultiOptimizer`: the map's patterns, each group's class, config and
ratio recorded, and `build_optimizer()` giving the same map back, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from tests.support import ROOT
from tests.support.groups import network, two_groups

from lrsearch.core.errors import ConfigError, ScheduleFormatError
from lrsearch.export.spec import ScheduleSpec, load_schedule
from lrsearch.optimizers import rebuild
from lrsearch.schedules import OneCycle, Scaled

SCHED = OneCycle(max_lr=0.3, total_steps=8, pct_start=0.25, div_factor=10.0, final_div_factor=100.0)

_TRAIN = '''
import json, sys
import keras, numpy as np, tensorflow as tf
import lrsearch
from tests.support.groups import digits, network
spec = lrsearch.load_schedule(sys.argv[1])
model = network(0)
model.compile(spec.build_optimizer(), "sparse_categorical_crossentropy")
x, y = digits(128)
loss_fn = keras.losses.SparseCategoricalCrossentropy()
rates = {v.path: [] for v in model.trainable_variables}
for step in range(4):
    xb, yb = x[32 * step:32 * (step + 1)], y[32 * step:32 * (step + 1)]
    with tf.GradientTape() as tape:
        loss = loss_fn(yb, model(xb, training=True))
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.train_on_batch(xb, yb)
    for v, b, g in zip(model.trainable_variables, before, grads):
        big = np.abs(g) > 1e-3 * np.abs(g).max()
        rates[v.path].append(float(np.median((b - v.numpy())[big] / g[big])))
print(json.dumps(rates))
'''


def _two_sgd_groups(ratio=0.25):
    return rebuild(two_groups(keras.optimizers.SGD(0.4), keras.optimizers.SGD(0.4 * ratio)), learning_rate=SCHED)


def test_groups_are_saved_and_rebuilt_in_a_fresh_process(tmp_path):
    spec = ScheduleSpec(SCHED, optimizer=_two_sgd_groups(), steps_per_epoch=4, epochs=2, batch_size=32)
    path = spec.save(tmp_path / "schedule.json")
    doc = json.loads(path.read_text())
    assert doc["version"] == 3 and doc["optimizer"]["class_name"] == "SGD"
    assert [(g["patterns"], g["ratio"], g["optimizer"]["class_name"]) for g in doc["groups"]] == [
        ([".*backbone.*"], 0.25, "SGD")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _TRAIN, str(path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rates = json.loads(done.stdout.strip().splitlines()[-1])
    head = np.array([float(SCHED(step)) for step in range(4)])
    for path_, got in rates.items():
        want = head * (0.25 if "backbone" in path_ else 1.0)
        np.testing.assert_allclose(got, want, rtol=2e-3, err_msg=path_)


def test_a_file_of_one_optimizer_stays_version_2(tmp_path):
    doc = ScheduleSpec(SCHED, optimizer="SGD").to_dict()
    assert doc["version"] == 2 and "groups" not in doc
    back = load_schedule(ScheduleSpec(SCHED, optimizer=_two_sgd_groups()).save(tmp_path / "s.json"))
    assert back == ScheduleSpec(SCHED, optimizer=_two_sgd_groups())


def test_a_group_of_another_keras_class_keeps_its_class_and_settings():
    multi = two_groups(keras.optimizers.Adam(1e-2), keras.optimizers.Nadam(1e-3, beta_1=0.8))
    spec = ScheduleSpec.from_dict(ScheduleSpec(SCHED, optimizer=multi).to_dict())
    group = spec.groups[0]
    assert (group["optimizer"]["class_name"], group["optimizer"]["module"], group["ratio"]) == (
        "Nadam", "keras.optimizers", 0.1)
    built = spec.build_optimizer()
    assert isinstance(built, keras.optimizers.MultiOptimizer)
    backbone, head = built.optimizers
    assert isinstance(backbone, keras.optimizers.Nadam) and backbone.beta_1 == 0.8
    assert isinstance(backbone._learning_rate, Scaled) and backbone._learning_rate.ratio == 0.1
    assert head._learning_rate == SCHED
    model = network(0)
    model.compile(built, "mse")
    built.build(model.trainable_variables)
    mapped = {v.path: type(built._optimizer_map(v)).__name__ for v in model.trainable_variables}
    assert mapped == {v.path: "Nadam" if "backbone" in v.path else type(head).__name__
                      for v in model.trainable_variables}


def test_a_callable_selector_cannot_be_saved():
    head, backbone = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-3)
    multi = keras.optimizers.MultiOptimizer(lambda v: backbone if "backbone" in v.path else head)
    model = network(0)
    model.compile(multi, "mse")
    multi.build(model.trainable_variables)
    with pytest.raises(ConfigError, match="callable selector cannot be rebuilt or saved.*OptimizerMap"):
        ScheduleSpec(SCHED, optimizer=multi)


def test_a_malformed_group_is_named():
    doc = ScheduleSpec(SCHED, optimizer=_two_sgd_groups()).to_dict()
    doc["groups"][0]["ratio"] = -1
    with pytest.raises(ScheduleFormatError, match=r"field `groups\[0\]\.ratio` must be a number > 0; got -1"):
        ScheduleSpec.from_dict(doc)
    del doc["groups"]
    with pytest.raises(ScheduleFormatError, match="misses field `groups`"):
        ScheduleSpec.from_dict(doc)
