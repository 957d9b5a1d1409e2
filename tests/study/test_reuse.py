"""Trials on one shared model (`lrsearch.study.reuse`) train exactly as trials on fresh models
built under the same seed, without a retrace between trials."""

from __future__ import annotations

import os

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

from lrsearch import schedules
from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.data.fit_data import prepare_data
from lrsearch.study.results import ATTR, HISTORY
from lrsearch.study.reuse import TableSchedule, TrialModels
from lrsearch.study.space import SearchSpace, TrialSetup
from lrsearch.optimizers import rebuild
from lrsearch.study.trial import EpochRecorder, compile_kwargs

optuna.logging.set_verbosity(optuna.logging.WARNING)

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
TRACES: list[str] = []
COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")


class CountedModel(keras.Sequential):
    """Counts the Python runs of `train_step`: once per trace under TensorFlow and JAX."""

    def train_step(self, *args, **kwargs):
        TRACES.append("train")
        return super().train_step(*args, **kwargs)


def _build(optimizer=None):
    def build():
        model = CountedModel([
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer=optimizer() if optimizer else keras.optimizers.SGD(momentum=0.9),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    return build


def _digits(n=256, n_val=128):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:n], y[:n]), (x[n:n + n_val], y[n:n + n_val])


class _StopAfter(keras.callbacks.Callback):
    """Stops training after `epochs` epochs, as a pruned trial does."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


class _Seed(keras.callbacks.Callback):
    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_train_begin(self, logs=None):
        keras.utils.set_random_seed(self.seed)


def _fresh(build, setup, seed, trial_seed, fit_kwargs, epochs, stop):
    """The reference: a fresh model built under `seed`, the trial seeded with
    `trial_seed` (before `fit` and as it begins), trained as today's rebuild does."""
    keras.utils.set_random_seed(seed)
    model = build()
    keras.utils.set_random_seed(trial_seed)
    # configure_model without its distribution-strategy scope (TensorFlow's alone)
    model.compile(**{**compile_kwargs(model), "optimizer": rebuild(
        model.optimizer, learning_rate=setup.learning_rate, momentum=setup.momentum,
        weight_decay=setup.weight_decay)})
    recorder = EpochRecorder("val_loss", lambda *a: False, momentum=setup.momentum)
    model.fit(epochs=epochs, callbacks=[_Seed(trial_seed), recorder, _StopAfter(stop)], verbose=0,
              **fit_kwargs)
    return recorder.rows, len([t for t in TRACES if t == "train"])


def _assert_same(got, want):
    assert len(got) == len(want)
    for row, ref in zip(got, want):
        for key in COLUMNS:
            assert row[key] == pytest.approx(ref[key], rel=2e-5, abs=1e-6), (key, row, ref)


def _setups(steps_per_epoch, epochs, momentum=True):
    """Four trials whose schedules differ in family, shape and parameters."""
    total = steps_per_epoch * epochs
    one = schedules.OneCycle(0.2, total, pct_start=0.25, div_factor=10.0, base_momentum=0.85,
                             max_momentum=0.95)
    two = schedules.OneCycle(0.05, total, pct_start=0.45, anneal_strategy="linear",
                             base_momentum=0.8, max_momentum=0.97)
    clr = schedules.CyclicLR(0.01, 0.1, step_size_up=steps_per_epoch, mode="triangular2",
                             base_momentum=0.85, max_momentum=0.9)
    wsd = schedules.WarmupStableDecay(0.08, total, warmup_steps=3, decay_shape="cosine")
    out = []
    for sched, mom in ((one, one.momentum_schedule()), (two, two.momentum_schedule()),
                       (clr, clr.momentum_schedule()), (wsd, 0.9)):
        out.append(TrialSetup(family="x", learning_rate=sched, momentum=mom if momentum else None,
                              weight_decay=1e-3))
    return out


@pytest.mark.backends
@pytest.mark.parametrize("optimizer", [None, lambda: keras.optimizers.Adam(1e-3)], ids=["sgd", "adam"])
def test_trials_on_the_shared_model_equal_fresh_builds(optimizer):
    """One-cycle, another one-cycle stopped after one epoch (as if pruned), CLR, then WSD:
    each epoch's loss, accuracy, validation and rate on the shared model equal those of a
    fresh model built under the same seed, and the train step is traced once."""
    build = _build(optimizer)
    train, val = _digits()
    data = prepare_data(train, val, 32, None)
    epochs, stops = 3, (3, 1, 3, 3)
    setups = _setups(data.steps_per_epoch, epochs)
    TRACES.clear()
    models = TrialModels(build, steps=data.steps_per_epoch * epochs, seed=5)
    got, functions = [], set()
    for number, (setup, stop) in enumerate(zip(setups, stops)):
        prepared = models.prepare(setup, 5 + number)
        assert prepared.reused
        recorder = EpochRecorder("val_loss", lambda *a: False, momentum=setup.momentum)
        prepared.model.fit(epochs=epochs, callbacks=[*prepared.callbacks, recorder, _StopAfter(stop)],
                           verbose=0, **data.fit_kwargs)
        got.append(recorder.rows)
        functions.add(id(prepared.model.train_function))
        if number == 0:
            after_first = len(TRACES)
    assert models.builds == 1
    assert len(functions) == 1
    if BACKEND != "torch":  # torch runs train_step eagerly, every batch
        assert len(TRACES) == after_first  # no retrace after the first trial
    for number, (setup, stop) in enumerate(zip(setups, stops)):
        TRACES.clear()
        want, traces = _fresh(build, setup, 5, 5 + number, data.fit_kwargs, epochs, stop)
        _assert_same(got[number], want)
    assert [len(rows) for rows in got] == list(stops)
    if BACKEND != "torch":
        assert traces == after_first  # a fresh model pays the trace again


@pytest.mark.backends
def test_tables_live_in_the_optimizer_state():
    """The rate, momentum and weight decay tables are optimizer variables (what Keras'
    jitted JAX step carries); a table holds the schedule's values at each update."""
    train, val = _digits()
    data = prepare_data(train, val, 32, None)
    setups = _setups(data.steps_per_epoch, 2)
    models = TrialModels(_build(), steps=data.steps_per_epoch * 2, seed=0)
    prepared = models.prepare(setups[0], 0)
    optimizer = prepared.model.optimizer
    ids = {id(v) for v in optimizer.variables}
    tables = [optimizer._learning_rate, optimizer.momentum,
              optimizer.weight_decay]
    assert all(isinstance(t, TableSchedule) and id(t.table) in ids for t in tables)
    steps = np.arange(models.length)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tables[0].table),
                               keras.ops.convert_to_numpy(setups[0].learning_rate(steps)), rtol=1e-6)
    assert float(tables[0](10_000)) == pytest.approx(float(setups[0].learning_rate(models.length - 1)))
    assert float(tables[2](7)) == pytest.approx(1e-3)


def test_structural_changes_rebuild():
    """A Schedule-Free trial, a label smoothing or a trial that leaves momentum to the
    optimizer where the shared model's trials set it: a fresh model each."""
    steps = 8
    models = TrialModels(_build(), steps=steps, seed=0)
    sched = schedules.OneCycle(0.1, steps)
    base = TrialSetup(family="one_cycle", learning_rate=sched, momentum=sched.momentum_schedule())
    assert models.prepare(base, 0).reused
    others = [
        TrialSetup(family="schedule_free", learning_rate=0.01, momentum=0.9, optimizer="schedule_free",
                   optimizer_config={"warmup_steps": 0}),
        TrialSetup(family="one_cycle", learning_rate=sched, momentum=sched.momentum_schedule(),
                   label_smoothing=0.1),
        TrialSetup(family="one_cycle", learning_rate=sched),
    ]
    for setup in others:
        assert not models.reusable(setup)
    assert not TrialModels(_build(), steps=steps, seed=0,
                           callbacks=[keras.callbacks.ModelCheckpoint("m.keras")]).reusable(base)
    assert not TrialModels(_build(), steps=steps, seed=0, enabled=False).reusable(base)
    assert not models.prepare(others[2], 0).reused


class _PruneSecond(optuna.pruners.BasePruner):
    """Prunes trial 1 after its first epoch; no other."""

    def prune(self, study, trial):
        return trial.number == 1 and trial.last_step is not None and trial.last_step >= 1


def test_a_study_on_the_shared_model_equals_fresh_builds(tmp_path):
    """Through `tune`: four trials of one-cycle and CLR (the second pruned after one
    epoch) record the same history as fresh models built under the study's seed, the
    model is built once for all trials (plus the pre-flight probe) and traced once."""
    from lrsearch.study.tune import tune

    train, val = _digits()
    builds = []

    def build():
        builds.append(1)
        return _build()()

    TRACES.clear()
    result = tune(build, train, validation_data=val, suggestion=LRSuggestion(0.003, 0.3, 0.03, 0.05, 0.6),
                  epochs=3, trials=4, batch_size=32, seed=11, pruner=_PruneSecond(),
                  weight_decay_candidates=(1e-4, 1e-3), out_dir=tmp_path, study_name="s")
    traces = len(TRACES)
    trials = result.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]
    assert len(builds) == 2
    space = SearchSpace.from_dict(result.study.user_attrs[ATTR]["space"])
    assert len({t.params.get("oc_max_lr", t.params.get("clr_max_lr")) for t in trials}) == 4
    data = prepare_data(train, val, 32, None)
    for trial in trials:
        TRACES.clear()
        rows = trial.user_attrs[HISTORY]
        want, fresh_traces = _fresh(_build(), space.build(trial.params), 11, 11 + trial.number,
                                    data.fit_kwargs, 3, len(rows))
        _assert_same(rows, want)
    assert traces == fresh_traces  # four trials on the shared model: one trace


def test_reuse_option_is_a_bool():
    from lrsearch.cli.main import build_parser
    from lrsearch.cli.commands import _options
    from lrsearch.core.errors import ConfigError
    from lrsearch.study.options import StudyOptions

    assert StudyOptions().reuse is True
    for command in ("auto", "tune"):  # the command line's switch
        assert _options(build_parser().parse_args([command, "m.py"])).reuse is True
        assert _options(build_parser().parse_args([command, "m.py", "--no-shared-model"])).reuse is False
    with pytest.raises(ConfigError, match="Argument `reuse` must be True or False. Received: reuse='no'"):
        StudyOptions(reuse="no")
