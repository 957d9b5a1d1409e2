"""`Scaled`: a schedule times a constant, in the compiled step, saved and loaded back."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from lrsearch.core.errors import ConfigError
from lrsearch.schedules import OneCycle, Scaled


def test_scaled_is_the_schedule_times_the_ratio_in_a_compiled_function(compiled):
    inner = OneCycle(max_lr=0.1, total_steps=20, div_factor=10.0)
    fn = compiled(lambda step: Scaled(inner, 0.25)(step))
    for step in (0, 5, 19):
        assert float(fn(step)) == pytest.approx(float(inner(step)) * 0.25, rel=1e-6)
    assert float(Scaled(0.2, 0.5)(3)) == pytest.approx(0.1)


def test_scaled_round_trips_through_keras_serialization():
    sched = Scaled(OneCycle(max_lr=0.1, total_steps=20), 0.1)
    config = keras.saving.serialize_keras_object(sched)
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert back == sched and isinstance(back.schedule, OneCycle)
    np.testing.assert_allclose(float(back(7)), float(sched(7)))


@pytest.mark.parametrize("ratio", [0, -0.5])
def test_scaled_refuses_a_ratio_that_is_not_positive(ratio):
    with pytest.raises(ConfigError, match="ratio"):
        Scaled(0.1, ratio)
