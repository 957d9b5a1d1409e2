"""A study of a model compiled with any optimizer Keras ships: every trial completes, its
rate follows the trial's one-cycle inside the compiled step, a momentum lrsearch cannot
cycle stays the user's (told once), and the best schedule builds the user's class with
its settings. Keras' own Schedule-Free AdamW is studied as lrsearch's."""

from __future__ import annotations

import logging

import keras
import numpy as np
import optuna
import pytest
from tests.optimizers.test_keras_classes import KERAS_OPTIMIZERS, OWN, keras_optimizer, one_cycle

import lrsearch
from lrsearch import optimizers as lo

optuna.logging.set_verbosity(optuna.logging.WARNING)

BATCH, SAMPLES = 16, 320
STEPS = SAMPLES // BATCH  # one epoch: the one-cycle's length


def _data(n=SAMPLES):
    x = np.random.default_rng(0).normal(size=(n, 8)).astype("float32")
    return x, (x[:, 0] - x[:, 1] > 0).astype("int32")


def _builder(make_optimizer):
    def build_model():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    return build_model


class Rates(keras.callbacks.Callback):
    """The rate of the next update after each batch, with the update count it is read at."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        opt = self.model.optimizer
        self.seen.append((int(opt.iterations), float(opt.learning_rate)))


def _expected(row, steps):
    return [one_cycle(s, row["params_oc_max_lr"], STEPS, row["params_oc_pct_start"], row["params_oc_div_factor"],
                      row["params_oc_final_div_factor"], row["params_oc_anneal_strategy"]) for s in steps]


def _tune(tmp_path, build_model, **kw):
    x, y = _data()
    kw.setdefault("families", ("one_cycle",))
    return lrsearch.tune(build_model, (x, y), validation_data=_data(64), bounds=(1e-3, 1e-1), epochs=1,
                         batch_size=BATCH, pruner="none", seed=0, study_name="s", out_dir=tmp_path / "s", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,key,value", KERAS_OPTIMIZERS, ids=[o[0] for o in KERAS_OPTIMIZERS])
def test_a_study_of_each_keras_optimizer_completes_on_its_schedule(tmp_path, name, kwargs, key, value):
    user = keras_optimizer(name, kwargs)
    rates = Rates()
    result = _tune(tmp_path, _builder(lambda: type(user)(**kwargs)), trials=1, callbacks=[rates])
    assert result.trials["state"].tolist() == ["COMPLETE"]
    row = result.trials.iloc[0]
    # the rate inside the trial's compiled step: its one-cycle, step by step (the last reading is past the end)
    steps = [s for s, _ in rates.seen if s < STEPS]
    assert steps == list(range(1, STEPS))
    np.testing.assert_allclose([r for s, r in rates.seen if s < STEPS], _expected(row, steps), rtol=1e-5)

    best = result.best.build_optimizer()
    assert isinstance(best, type(user)) and best.get_config()[key] == value
    if name not in OWN:  # its momentum (beta_1) stays the user's
        assert result.best.momentum == user.get_config().get(result.best.momentum_name)
    model = _builder(lambda: best)()
    again = Rates()
    model.fit(*_data(), batch_size=BATCH, epochs=1, verbose=0, callbacks=[again])
    np.testing.assert_allclose([r for s, r in again.seen if s < STEPS], _expected(row, steps), rtol=1e-5)


class MyNadam(keras.optimizers.Nadam):
    """A user's subclass, unregistered."""


@pytest.mark.slow
def test_a_subclass_keeps_its_class_and_a_constant_momentum_is_told_once(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="lrsearch"):
        result = _tune(tmp_path, _builder(lambda: MyNadam(beta_1=0.8, beta_2=0.99)), trials=2,
                       momentum_candidates=(0.85, 0.9), weight_decay_candidates=(0.0, 0.01))
    assert result.trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert not [c for c in result.trials.columns if "momentum" in c]  # no momentum dimension offered
    told = [r.getMessage() for r in caplog.records if "stays the model's" in r.getMessage()]
    assert told == ["MyNadam: its beta_1 stays the model's 0.8 in every trial and the rate follows each trial's "
                    "schedule (lrsearch cycles momentum only for SGD, Adam, AdamW and RMSprop)"]
    best = result.best.build_optimizer()
    winner = result.trials.loc[result.trials["value"].idxmin()]
    assert type(best) is MyNadam and (best.beta_1, best.beta_2) == (0.8, 0.99)
    assert best.weight_decay == winner["params_weight_decay"]  # a constant weight decay is searched


KERAS_SF = getattr(keras.optimizers, "ScheduleFreeAdamW", None)


@pytest.mark.slow
@pytest.mark.skipif(KERAS_SF is None, reason=f"keras {keras.__version__} has no ScheduleFreeAdamW")
def test_keras_schedule_free_is_studied_as_lrsearchs(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lrsearch"):
        result = _tune(tmp_path, _builder(lambda: KERAS_SF(beta_2=0.99, epsilon=1e-6)), trials=2,
                       families=("one_cycle", "cyclic"))
    named = [r for r in caplog.records if "lrsearch.optimizers.ScheduleFreeAdamW" in r.getMessage()]
    assert len(named) == 1
    assert result.trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert set(result.trials["family"]) == {"schedule_free"}
    best = result.best.build_optimizer()
    assert type(best) is lo.ScheduleFreeAdamW and (best.beta_2, best.epsilon) == (0.99, 1e-6)
    assert best.beta_1 == result.trials.loc[result.trials["value"].idxmin(), "params_sf_beta"]
