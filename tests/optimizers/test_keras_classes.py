"""Every optimizer Keras ships: rebuilt around a rate schedule as its own class (or
lrsearch's mirror), written to schedule.json and built back with its settings; Keras' own
Schedule-Free AdamW, whose first step collapses the weights, trained as lrsearch's."""

from __future__ import annotations

import json
import logging
import math

import keras
import numpy as np
import pytest

import lrsearch
from lrsearch import optimizers as lo
from lrsearch.core.errors import ConfigError, ScheduleFormatError
from lrsearch.export.spec import ScheduleSpec
from lrsearch.schedules import OneCycle

# each optimizer Keras ships, with a setting the user changed from its default
KERAS_OPTIMIZERS = [
    ("SGD", {"momentum": 0.8, "nesterov": True}, "nesterov", True),
    ("Adam", {"beta_2": 0.99}, "beta_2", 0.99),
    ("AdamW", {"beta_2": 0.99, "weight_decay": 0.02}, "beta_2", 0.99),
    ("RMSprop", {"rho": 0.8}, "rho", 0.8),
    ("Nadam", {"beta_2": 0.99}, "beta_2", 0.99),
    ("Adamax", {"beta_2": 0.99}, "beta_2", 0.99),
    ("Adagrad", {"initial_accumulator_value": 0.2}, "initial_accumulator_value", 0.2),
    ("Adadelta", {"rho": 0.9}, "rho", 0.9),
    ("Lion", {"beta_1": 0.8}, "beta_1", 0.8),
    ("Lamb", {"beta_2": 0.99}, "beta_2", 0.99),
    ("Adafactor", {"clip_threshold": 2.0}, "clip_threshold", 2.0),
    ("Muon", {"ns_steps": 4}, "ns_steps", 4),
    ("Ftrl", {"l1_regularization_strength": 0.01}, "l1_regularization_strength", 0.01),
]
OWN = {"SGD", "Adam", "AdamW", "RMSprop"}  # lrsearch's mirrors train in their place


def keras_optimizer(name: str, kwargs: dict):
    cls = getattr(keras.optimizers, name, None)
    if cls is None:
        pytest.skip(f"keras {keras.__version__} has no optimizers.{name}")
    return cls(**kwargs)


def one_cycle(step: float, peak: float, total: int, pct: float, div: float, final_div: float, anneal: str) -> float:
    """PyTorch's OneCycleLR (two phases) at `step`, written out."""
    initial = peak / div
    end_rise = pct * total - 1
    if step <= end_rise:
        start, end, frac = initial, peak, step / end_rise
    else:
        start, end, frac = peak, initial / final_div, (step - end_rise) / (total - 1 - end_rise)
    if anneal == "cos":
        return end + (start - end) / 2 * (math.cos(math.pi * frac) + 1)
    return start + (end - start) * frac


@pytest.mark.backends
@pytest.mark.parametrize("name,kwargs,key,value", KERAS_OPTIMIZERS, ids=[o[0] for o in KERAS_OPTIMIZERS])
def test_rebuild_and_schedule_json_keep_the_class_and_its_settings(name, kwargs, key, value):
    user = keras_optimizer(name, kwargs)
    sched = OneCycle(0.1, 40, pct_start=0.25, anneal_strategy="linear")
    fresh = lo.rebuild(user, learning_rate=sched)
    assert isinstance(fresh, type(user)) and fresh.get_config()[key] == value
    assert type(fresh) is (getattr(lo, name) if name in OWN else type(user))
    assert lo.has_own_class(user) is (name in OWN)

    spec = ScheduleSpec(sched, optimizer=fresh, steps_per_epoch=10, epochs=4)
    saved = json.loads(json.dumps(spec.to_dict()))
    if name in OWN:
        assert saved["optimizer"]["class_name"] == name and "module" not in saved["optimizer"]
    else:
        assert {k: saved["optimizer"][k] for k in ("module", "class_name")} == {"module": "keras.optimizers",
                                                                                 "class_name": name}
    built = ScheduleSpec.from_dict(saved).build_optimizer()
    assert isinstance(built, type(user)) and built.get_config()[key] == value
    expected = [one_cycle(s, 0.1, 40, 0.25, 25.0, 1e4, "linear") for s in (0, 5, 9, 30)]
    built.build([keras.Variable(np.zeros((4, 4), "float32"))])
    rates = []
    for step in (0, 5, 9, 30):  # the rate the optimizer's next update uses
        built.iterations.assign(step)
        rates.append(float(built.learning_rate))
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    np.testing.assert_allclose(spec.table()["lr"].to_numpy()[[0, 5, 9, 30]], expected, rtol=1e-5)


def test_a_keras_class_keeps_its_momentum_and_takes_a_constant_weight_decay():
    user = keras.optimizers.Nadam(0.01, beta_1=0.8)
    fresh = lo.rebuild(user, learning_rate=0.02, weight_decay=0.05)
    assert type(fresh) is keras.optimizers.Nadam
    assert (fresh.beta_1, fresh.weight_decay, float(fresh.learning_rate)) == (0.8, 0.05, pytest.approx(0.02))
    with pytest.raises(ConfigError, match="^Nadam's beta_1 stays the model's constant"):
        lo.rebuild(user, momentum=0.9)
    with pytest.raises(ConfigError, match="^Nadam's weight decay must be a float"):
        lo.rebuild(user, weight_decay=OneCycle(0.1, 10))
    with pytest.raises(ConfigError, match="^Nadam's beta_1 must be a float, not a schedule"):
        ScheduleSpec(0.01, optimizer=user, momentum=OneCycle(0.1, 10).momentum_schedule())
    spec = ScheduleSpec(0.01, optimizer=user)
    assert (spec.momentum_name, spec.momentum) == ("beta_1", 0.8)
    assert spec.table(3)["momentum"].tolist() == [0.8, 0.8, 0.8]


def test_a_users_subclass_is_rebuilt_as_itself():
    class Mine(keras.optimizers.Adam):  # unregistered: builds back in this process
        pass

    user = Mine(0.01, beta_2=0.98)
    fresh = lo.rebuild(user, learning_rate=OneCycle(0.1, 10))
    assert type(fresh) is Mine and fresh.beta_2 == 0.98
    built = ScheduleSpec.from_dict(ScheduleSpec(0.01, optimizer=fresh).to_dict()).build_optimizer()
    assert type(built) is Mine and built.beta_2 == 0.98


def test_a_keras_class_keras_cannot_find_is_one_line():
    data = ScheduleSpec(0.01, optimizer=keras.optimizers.Lion()).to_dict()
    data["optimizer"].update(module=None, class_name="Gone", registered_name="elsewhere>Gone")
    with pytest.raises(ScheduleFormatError, match="^invalid schedule file: cannot build optimizer Gone") as info:
        ScheduleSpec.from_dict(data)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- Keras' Schedule-Free

KERAS_SF = getattr(keras.optimizers, "ScheduleFreeAdamW", None)
needs_keras_sf = pytest.mark.skipif(KERAS_SF is None, reason=f"keras {keras.__version__} has no ScheduleFreeAdamW")


def _dense(optimizer):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def _data(n=256):
    x = np.random.default_rng(0).normal(size=(n, 8)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


@needs_keras_sf
def test_keras_schedule_free_still_collapses_the_weights_in_its_first_step():
    """On TensorFlow (PyTorch's step keeps the weights)."""
    model = _dense(KERAS_SF())
    x, y = _data(32)
    kernel = model.layers[0].kernel
    before = float(np.linalg.norm(kernel.numpy()))
    model.train_on_batch(x, y)
    after = float(np.linalg.norm(kernel.numpy()))
    assert after < 0.05 * before, (
        f"keras {keras.__version__}'s ScheduleFreeAdamW no longer collapses the weights on TensorFlow (kernel norm {before:.3g} "
        f"-> {after:.3g}): drop lrsearch's workaround (lrsearch.optimizers.keras_classes)")
    mine = _dense(lo.own_schedule_free(KERAS_SF()))
    kernel = mine.layers[0].kernel
    before = float(np.linalg.norm(kernel.numpy()))
    mine.train_on_batch(x, y)
    assert float(np.linalg.norm(kernel.numpy())) == pytest.approx(before, rel=0.05)


@needs_keras_sf
def test_keras_schedule_free_maps_to_lrsearchs_with_its_settings():
    user = KERAS_SF(learning_rate=0.01, beta_1=0.95, beta_2=0.99, epsilon=1e-6, warmup_steps=7, weight_decay=0.1,
                    clipnorm=1.0)
    assert lo.is_schedule_free(user) and lo.is_keras_schedule_free(user)
    expected = {"beta_1": 0.95, "beta_2": 0.99, "epsilon": 1e-6, "warmup_steps": 7, "weight_decay": 0.1,
                "clipnorm": 1.0}
    for fresh in (lo.own_schedule_free(user), lo.rebuild(user), lo.as_schedule_free(user)):
        assert type(fresh) is lo.ScheduleFreeAdamW
        config = fresh.get_config()
        assert {k: config[k] for k in expected} == expected
        assert config["learning_rate"] == pytest.approx(0.01)
    assert lo.own_schedule_free(KERAS_SF()).weight_decay == 0.0  # Keras' None
    sf = lo.as_schedule_free(user, learning_rate=0.003, momentum=0.9, warmup_steps=2)
    assert (sf.beta_1, sf.warmup_steps, sf.beta_2) == (0.9, 2, 0.99)


@pytest.mark.backends
@needs_keras_sf
def test_a_range_test_runs_keras_schedule_free_as_lrsearchs(caplog):
    user = KERAS_SF(beta_2=0.99)
    model = _dense(user)
    with caplog.at_level(logging.WARNING, logger="lrsearch"):
        result = lrsearch.range_test(model, _data(), steps=30, min_lr=1e-4, max_lr=1.0, restore=False)
        lrsearch.range_test(model, _data(), steps=30, min_lr=1e-4, max_lr=1.0)
    named = [r for r in caplog.records if "lrsearch.optimizers.ScheduleFreeAdamW" in r.getMessage()]
    assert len(named) == 1 and "\n" not in named[0].getMessage()
    assert len(result.frame) == 30 and result.meta["optimizer"] == "ScheduleFreeAdamW"
    # Keras' optimizer is the model's again, and never took a step: lrsearch's took all 30
    assert model.optimizer is user and int(user.iterations) == 0
