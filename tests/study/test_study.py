"""Studies: records per trial and epoch, resume, failures, pruning, Ctrl-C, and that the
best trial beats the optimizer's default rate."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import optuna
import pandas as pd
import pytest
from tests.support.study_workload import SUGGESTION, build_model, digits

from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.core.errors import ConfigError, DataError
from lrsearch.export.spec import load_schedule
from lrsearch.study.tune import infer_direction, load_result, make_pruner, smoothed_loss, tune

optuna.logging.set_verbosity(optuna.logging.WARNING)

TRIAL_COLUMNS = ["number", "state", "value", "epochs_run", "pruned_at", "duration_s", "family"]


def _tune(tmp_path, name="s", **kw):
    train, val = kw.pop("data", None) or digits(256, 128)
    kw.setdefault("suggestion", SUGGESTION)
    kw.setdefault("pruner", "none")
    return tune(
        kw.pop("build", build_model),
        train,
        validation_data=val,
        study_name=name,
        out_dir=tmp_path / name,
        **kw,
    )


@pytest.mark.parametrize(
    "metric,direction",
    [("val_loss", "minimize"), ("loss", "minimize"), ("val_mae", "minimize"),
     ("val_accuracy", "maximize"), ("val_sparse_categorical_accuracy", "maximize"),
     ("auc", "maximize"), ("val_f1_score", "maximize")],
)
def test_direction_follows_the_metric_name(metric, direction):
    assert infer_direction(metric) == direction


@pytest.mark.backends
@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"trials": 0}, "Argument `trials` must be an integer >= 1. Received: trials=0"),
        ({"epochs": -1}, "Argument `epochs` must be an integer >= 1. Received: epochs=-1"),
        ({"families": ("one_cycle", "step")}, "unknown family 'step'"),
        ({"backend": "ray"}, "unknown backend 'ray'"),
        ({"pruner": "asha"}, "unknown pruner 'asha'"),
        ({"metric": "val_weirdness"}, "cannot tell whether to minimize or maximize"),
        ({"direction": "up"}, "Argument `direction` must be"),
        ({"metric": "val_auc", "direction": "maximize"}, "does not produce metric 'val_auc'"),
        ({"label_smoothing": True}, "label smoothing needs a categorical or binary"),
    ],
)
def test_invalid_arguments_raise_config_error_before_any_trial(tmp_path, kw, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        _tune(tmp_path, **kw)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "s" / "study.db").exists()


@pytest.mark.backends
def test_data_that_does_not_fit_the_model_raises_data_error(tmp_path):
    (x, y), (xv, yv) = digits(64, 32)
    with pytest.raises(DataError, match="does not fit the model"):
        _tune(tmp_path, data=((x[:, :10], y), (xv[:, :10], yv)))


@pytest.mark.backends
def test_tf_distribute_is_refused_on_other_backends(tmp_path):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow runs studies under a tf.distribute strategy")
    import tensorflow as tf

    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(ConfigError) as info:
            _tune(tmp_path, epochs=1, trials=1)
    assert str(info.value) == (f"tf.distribute strategies need KERAS_BACKEND=tensorflow (current: "
                               f"{keras.backend.backend()}); call tune outside strategy.scope() on this backend")


def test_pruners_by_name():
    median = make_pruner("median", 9)
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert median._n_warmup_steps == 4 and median._n_startup_trials == 5
    hyperband = make_pruner("hyperband", 9)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._max_resource == 9 and hyperband._min_resource == 1
    assert isinstance(make_pruner(None, 9), optuna.pruners.NopPruner)
    mine = optuna.pruners.PercentilePruner(25.0)
    assert make_pruner(mine, 9) is mine


def test_label_smoothing_keeps_the_loss_and_its_settings():
    loss = smoothed_loss(keras.losses.CategoricalCrossentropy(from_logits=True), 0.1)
    assert loss.get_config()["label_smoothing"] == 0.1 and loss.get_config()["from_logits"]
    assert smoothed_loss("binary_crossentropy", 0.2).get_config()["label_smoothing"] == 0.2


def _lr_at(spec, step):
    return float(spec.build_schedule()(step))


@pytest.mark.backends
@pytest.mark.slow
def test_tables_files_and_resume(tmp_path):
    result = _tune(tmp_path, epochs=2, trials=2, seed=3)
    trials, history = result.trials, result.history
    assert list(trials.columns[: len(TRIAL_COLUMNS)]) == TRIAL_COLUMNS
    assert trials["number"].tolist() == [0, 1]
    assert (trials["state"] == "COMPLETE").all() and (trials["epochs_run"] == 2).all()
    assert trials["pruned_at"].isna().all() and (trials["duration_s"] > 0).all()
    assert {"params_family", "params_momentum_max"} <= set(trials.columns)
    # one row per trial and epoch, with every metric Keras logged and the rate
    assert list(zip(history["trial"], history["epoch"])) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert {"lr", "momentum", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    # the trial's value is the metric at its last epoch
    last = history[history["epoch"] == 2].set_index("trial")["val_loss"]
    np.testing.assert_allclose(trials.set_index("number")["value"], last)

    best = result.best
    steps = best.steps_per_epoch
    assert steps == 8 and best.epochs == 2  # 256 samples in batches of 32
    winner = int(trials.loc[trials["value"].idxmin(), "number"])
    prov = best.provenance
    assert prov["study"] == "s" and prov["trial"] == winner and prov["metric"] == "val_loss"
    assert prov["value"] == pytest.approx(trials["value"].min())
    assert prov["bounds"] == {"base_lr": SUGGESTION.base_lr, "max_lr": SUGGESTION.max_lr}
    # the rate recorded at each epoch's end is the schedule's at that step count
    rows = history[history["trial"] == winner]
    for epoch, lr in zip(rows["epoch"], rows["lr"]):
        assert lr == pytest.approx(_lr_at(best, epoch * steps), rel=1e-5)
    assert SUGGESTION.base_lr / 100 <= rows["lr"].max() <= SUGGESTION.max_lr

    out = tmp_path / "s"
    assert pd.read_csv(out / "trials.csv")["number"].tolist() == [0, 1]
    assert len(pd.read_csv(out / "history.csv")) == 4
    again = load_schedule(out / "schedule.json")
    assert again.provenance["trial"] == winner
    assert _lr_at(again, 5) == pytest.approx(_lr_at(best, 5))

    # the same storage and name: the study goes on, bounds kept without a range test
    more = _tune(tmp_path, epochs=2, trials=1, suggestion=None, seed=3)
    assert more.trials["number"].tolist() == [0, 1, 2]
    assert more.trials["state"].tolist() == ["COMPLETE"] * 3
    stored = load_result(f"sqlite:///{out / 'study.db'}", "s")
    pd.testing.assert_frame_equal(stored.trials, more.trials)
    pd.testing.assert_frame_equal(stored.history, more.history)
    assert stored.best.to_dict() == more.best.to_dict()
    with pytest.raises(ConfigError, match="same data, batch size and epochs"):
        _tune(tmp_path, epochs=3, trials=1)
    with pytest.raises(ConfigError, match="minimizes val_loss: resume it with the same metric"):
        _tune(tmp_path, epochs=2, trials=1, metric="val_accuracy")
    # a cap on the whole study: it already holds 3 finished trials, so nothing runs
    capped = _tune(tmp_path, epochs=2, trials=5, max_trials=3)
    assert len(capped.trials) == 3


def _regression():
    # linear least squares: a rate far above 2 / L blows the weights up to inf, then NaN
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    return model


@pytest.mark.backends
@pytest.mark.slow
def test_nan_loss_fails_the_trial_and_the_study_goes_on(tmp_path):
    huge = LRSuggestion(base_lr=1e4, max_lr=1e6, steepest_lr=1e5, valley_lr=1e5,
                        min_loss_lr=1e5)
    (x, y), (xv, yv) = digits(256, 128)
    data = ((x, y.astype("float32")), (xv, yv.astype("float32")))
    result = _tune(tmp_path, epochs=2, trials=2, suggestion=huge, data=data, build=_regression)
    trials = result.trials
    assert trials["state"].tolist() == ["FAIL", "FAIL"]
    assert trials["failure"].str.startswith("non-finite").all()
    assert result.best is None
    assert not (tmp_path / "s" / "schedule.json").exists()
    assert (tmp_path / "s" / "trials.csv").exists()


@pytest.mark.slow
def test_pruned_trials_record_where_they_stopped(tmp_path):
    # every val_loss is above 0: the threshold pruner stops each trial after epoch 2
    pruner = optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=2)
    result = _tune(tmp_path, epochs=4, trials=1, pruner=pruner, families=("one_cycle",),
                   data=digits(256, 128, one_hot=True), build=lambda: build_model(one_hot=True),
                   label_smoothing=True)
    row = result.trials.iloc[0]
    assert row["state"] == "PRUNED" and row["pruned_at"] == 2 and row["epochs_run"] == 2
    assert result.history["epoch"].tolist() == [1, 2]
    assert 0 <= row["params_label_smoothing"] <= 0.2


class _Interrupt(keras.callbacks.Callback):
    """Ctrl-C during the second trial's first epoch."""

    calls = 0

    def on_epoch_end(self, epoch, logs=None):
        type(self).calls += 1
        if type(self).calls == 2:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_the_study_resumes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _tune(tmp_path, epochs=1, trials=3, callbacks=[_Interrupt()])
    saved = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert saved["state"].tolist() == ["COMPLETE", "FAIL"]
    assert (tmp_path / "s" / "schedule.json").exists()
    result = _tune(tmp_path, epochs=1, trials=1)
    assert result.trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]


@pytest.mark.slow
def test_best_trial_beats_the_default_constant_rate(tmp_path):
    """At the same epochs, the study's best schedule (inside range-test bounds) reaches a
    lower validation loss than the optimizer's default constant rate."""
    train, val = digits(512, 256)
    epochs = 3
    keras.utils.set_random_seed(0)
    baseline = build_model()  # SGD(momentum=0.9) at Keras' default rate 0.01
    assert float(baseline.optimizer.learning_rate) == pytest.approx(0.01)
    hist = baseline.fit(*train, validation_data=val, epochs=epochs, batch_size=32, verbose=0)
    default_loss = hist.history["val_loss"][-1]

    result = _tune(tmp_path, data=(train, val), epochs=epochs, trials=5, seed=0,
                   suggestion=None, range_test_kwargs={"steps": 100})
    best = result.trials["value"].min()
    assert math.isfinite(best)
    assert best < 0.8 * default_loss, (best, default_loss)
    bounds = result.best.provenance["bounds"]
    assert bounds["base_lr"] < bounds["max_lr"]
    json.dumps(result.best.to_dict())


class _ReadTables(keras.callbacks.Callback):
    """Reads `trials.csv` as each trial's training starts."""

    def __init__(self, path):
        super().__init__()
        self.path, self.seen = path, []

    def on_train_begin(self, logs=None):
        self.seen.append(pd.read_csv(self.path) if self.path.exists() else None)


@pytest.mark.slow
def test_tables_are_written_after_each_trial(tmp_path):
    """A run killed during trial 1 leaves trial 0 in trials.csv and history.csv."""
    reader = _ReadTables(tmp_path / "s" / "trials.csv")
    result = _tune(tmp_path, epochs=2, trials=2, callbacks=[reader])
    assert reader.seen[0] is None
    after_first = reader.seen[1]
    assert after_first["number"].tolist() == [0] and after_first["state"].tolist() == ["COMPLETE"]
    assert after_first["value"].iloc[0] == pytest.approx(result.trials["value"].iloc[0], rel=1e-12)
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert trials["number"].tolist() == [0, 1]
    np.testing.assert_allclose(trials["value"], result.trials["value"], rtol=1e-12)
    history = pd.read_csv(tmp_path / "s" / "history.csv")
    assert history[["trial", "epoch"]].values.tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    np.testing.assert_allclose(history["lr"], result.history["lr"], rtol=1e-12)


def test_a_stored_study_resumes_only_on_the_model_and_data_it_was_made_from(tmp_path):
    """The study records its model's and data's digests: the same model resumes it; an L2
    regularizer added, or other data, is refused in one line, the stored trials untouched."""
    _tune(tmp_path, trials=1, epochs=1)
    _tune(tmp_path, trials=1, epochs=1)  # the same model and data: resumed
    url = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2

    def regularized():
        model = build_model()
        layer = model.layers[-1]
        layer.kernel_regularizer = keras.regularizers.L2(1e-3)
        return model

    with pytest.raises(ConfigError) as caught:
        _tune(tmp_path, trials=1, epochs=1, build=regularized)
    assert str(caught.value) == ("study 's' was made from another model (layers, optimizer or loss): its trials "
                                 "would mix with this one's; use another study name, or delete that study to start "
                                 "over")
    with pytest.raises(ConfigError, match="made from other data: its trials would mix"):
        _tune(tmp_path, trials=1, epochs=1, data=digits(256, 96))
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2
