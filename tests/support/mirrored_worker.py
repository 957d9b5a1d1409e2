"""Range test, sweep, model copies and a study trial under MirroredStrategy on 2 CPUs.

`tf.distribute.MirroredStrategy` over 2 logical CPU devices, i.e. 2 replicas.

Run as a script by `tests/test_setups.py`: logical devices can only be configured before
TensorFlow initializes, so this cannot run inside the test process. Prints one JSON line
with what the test checks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from lrsearch.rangetest.analysis import LRSuggestion  # noqa: E402
from lrsearch.rangetest.finder import range_test  # noqa: E402
from lrsearch.run.modelfile import make_builder  # noqa: E402
from lrsearch.schedules import scale_lr  # noqa: E402
from lrsearch.study.tune import tune  # noqa: E402
from lrsearch.rangetest.sweeps import sweep  # noqa: E402

GLOBAL_BATCH = 16


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    x[::2] += 3.0  # the two halves of a batch have different statistics
    y = (x @ np.array([1.5, -2.0, 0.5]))[:, None].astype("float32")
    return x, y


def build_model(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
             keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.0, momentum=0.9), loss="mse")
    return model


def training_loss(model, x, y):
    pred = np.asarray(model(x, training=True), dtype=np.float64)
    return float(np.mean((pred - y) ** 2))


class Seen(keras.callbacks.Callback):
    """What a trial's model looked like during training."""

    def on_train_begin(self, logs=None):
        self.replicas = int(self.model.distribute_strategy.num_replicas_in_sync)
        kernel = self.model.layers[0].kernel.value
        self.mirrored = isinstance(kernel, tf.distribute.DistributedValues)

    def on_train_end(self, logs=None):
        self.iterations = int(self.model.optimizer.iterations.numpy())


def main() -> None:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, y = data()
    out: dict = {"replicas": int(strategy.num_replicas_in_sync)}

    # range test: the first step's loss under the weights before any update
    model = build_model(strategy)
    before = [v.numpy().copy() for v in model.variables]
    half = GLOBAL_BATCH // 2
    first, second = slice(0, half), slice(half, GLOBAL_BATCH)
    out["per_replica_loss"] = (training_loss(model, x[first], y[first])
                               + training_loss(model, x[second], y[second])) / 2
    out["global_batch_loss"] = training_loss(model, x[:GLOBAL_BATCH], y[:GLOBAL_BATCH])
    for v, b in zip(model.variables, before):  # training=True moved the BN statistics
        v.assign(b)
    result = range_test(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=12,
                        batch_size=GLOBAL_BATCH, verbose=0)
    out["range_test_losses"] = result.frame["loss"].tolist()
    out["range_test_meta"] = {k: result.meta[k] for k in ("batch_size", "replicas", "steps")}
    out["restored"] = all(np.array_equal(v.numpy(), b) for v, b in zip(model.variables, before))
    # the bounds belong to the global batch; 4 replicas of 8 would double it
    out["max_lr"] = float(result.suggestion.max_lr)
    out["max_lr_at_32"] = scale_lr(result.suggestion.max_lr, 32, base_batch_size=GLOBAL_BATCH)

    # validation loss after the last step, as `evaluate` computes it (per replica)
    model = build_model(strategy)
    result = range_test(model, (x, y), min_lr=1e-3, max_lr=0.1, steps=3, batch_size=GLOBAL_BATCH,
                        validation_data=(x[:GLOBAL_BATCH], y[:GLOBAL_BATCH]), restore=False,
                        verbose=0)
    out["last_val_loss"] = float(result.frame["val_loss"].iloc[-1])
    out["evaluate_loss"] = float(model.evaluate(x[:GLOBAL_BATCH], y[:GLOBAL_BATCH],
                                                batch_size=GLOBAL_BATCH, verbose=0))

    # a momentum sweep rebuilds the optimizer: inside the strategy's scope
    swept = sweep(lambda: build_model(strategy), (x, y), param="momentum", values=(0.9, 0.8),
                  min_lr=1e-4, max_lr=1.0, steps=6, batch_size=GLOBAL_BATCH, verbose=0)
    out["sweep_first_losses"] = swept.frame.groupby("value")["loss"].first().tolist()

    # copies of a compiled model (what `lrsearch.auto(model)` trains) stay distributed
    out["model_loss"] = float(build_model(strategy).fit(
        x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0).history["loss"][0])
    copy = make_builder(build_model(strategy))()
    out["copy_mirrored"] = isinstance(copy.layers[0].kernel.value, tf.distribute.DistributedValues)
    out["copy_loss"] = float(copy.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False,
                                      verbose=0).history["loss"][0])

    # one study trial: the schedule spans the global batches of the run
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = Seen()
    suggestion = LRSuggestion(base_lr=1e-3, max_lr=0.05, steepest_lr=0.01, valley_lr=0.01,
                              min_loss_lr=0.03, warnings=())
    with tempfile.TemporaryDirectory() as tmp:
        res = tune(lambda: build_model(strategy), (x, y), validation_data=(x[:16], y[:16]),
                   suggestion=suggestion, families=("one_cycle",), epochs=2, trials=1,
                   batch_size=GLOBAL_BATCH, pruner="none", seed=0, out_dir=tmp,
                   study_name="mirrored", callbacks=[seen])
    sched = res.best.schedule
    out["trial"] = {
        "state": res.trials["state"].tolist(),
        "total_steps": int(sched.total_steps),
        "spec_steps_per_epoch": res.best.steps_per_epoch,
        "lr": res.history["lr"].tolist(),
        "expected_lr": [float(sched(4)), float(sched(8))],
        "replicas": seen.replicas,
        "mirrored": seen.mirrored,
        "iterations": seen.iterations,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
