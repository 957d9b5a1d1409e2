"""A schedule made with a LossScaleOptimizer (mixed precision) rebuilds inside one."""

from __future__ import annotations

import json

import keras
import pytest

import lrsearch
from lrsearch.core.errors import ScheduleFormatError
from lrsearch.schedules import OneCycle


def test_a_wrapped_optimizer_is_recorded_and_rebuilt_wrapped(tmp_path):
    wrapped = keras.optimizers.LossScaleOptimizer(lrsearch.optimizers.SGD(0.1, momentum=0.8, nesterov=True))
    spec = lrsearch.ScheduleSpec(OneCycle(0.1, 40), optimizer=wrapped, steps_per_epoch=4, epochs=10)
    document = spec.to_dict()
    assert document["optimizer"]["class_name"] == "SGD" and document["optimizer"]["loss_scale"] is True
    built = lrsearch.load_schedule(spec.save(tmp_path / "schedule.json")).build_optimizer()
    assert type(built) is keras.optimizers.LossScaleOptimizer
    inner = built.inner_optimizer
    assert type(inner) is lrsearch.optimizers.SGD and inner.nesterov and inner.momentum == 0.8


def test_a_keras_class_inside_the_wrapper_keeps_its_settings(tmp_path):
    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.Nadam(beta_2=0.95))
    spec = lrsearch.ScheduleSpec(OneCycle(0.01, 40), optimizer=wrapped, steps_per_epoch=4, epochs=10)
    built = lrsearch.load_schedule(spec.save(tmp_path / "schedule.json")).build_optimizer()
    assert type(built) is keras.optimizers.LossScaleOptimizer
    assert type(built.inner_optimizer) is keras.optimizers.Nadam and built.inner_optimizer.beta_2 == 0.95


def test_an_unwrapped_optimizer_writes_no_loss_scale_key_and_builds_bare():
    spec = lrsearch.ScheduleSpec(OneCycle(0.1, 40), optimizer="Adam", steps_per_epoch=4, epochs=10)
    assert "loss_scale" not in spec.to_dict()["optimizer"]
    assert type(spec.build_optimizer()) is lrsearch.optimizers.Adam


def test_a_loss_scale_that_is_not_a_boolean_is_refused_with_its_field(tmp_path):
    spec = lrsearch.ScheduleSpec(OneCycle(0.1, 40), optimizer="SGD", steps_per_epoch=4, epochs=10)
    document = spec.to_dict()
    document["optimizer"]["loss_scale"] = "yes"
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ScheduleFormatError, match=r"field `optimizer.loss_scale` must be true or false, got 'yes'"):
        lrsearch.load_schedule(path)
