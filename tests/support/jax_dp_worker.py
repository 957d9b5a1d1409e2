"""Range test, momentum sweep and a study under `keras.distribution.DataParallel` on 2 CPUs (JAX).

Run as a script by `tests/rangetest/test_jax_data_parallel.py`: the host's device count
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`) is read when JAX starts, so this
cannot run inside the test process (which runs on TensorFlow). `range` runs every piece
once on one device (no distribution) and once on the 2-device mesh, from the same initial
weights on the same batches; `study` trains
with each of lrsearch's optimizers (both ways) and runs a 2-trial study on the mesh. Prints one JSON
line with what the test checks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from lrsearch.core.errors import LRSearchError  # noqa: E402
from lrsearch.data.mesh import batch_shards  # noqa: E402
from lrsearch.rangetest.finder import lr_sweep, range_test  # noqa: E402
from lrsearch.rangetest.steppers.dispatch import open_stepper  # noqa: E402
from lrsearch.rangetest.sweeps import sweep  # noqa: E402

GLOBAL_BATCH = 16


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    x[::2] += 3.0  # the two halves of a batch have different statistics
    y = (x @ np.array([1.5, -2.0, 0.5]))[:, None].astype("float32")
    return x, y


def build_model(optimizer=None, model_class=keras.Sequential):
    """Dense -> BatchNorm -> Dense with weights from a seeded NumPy generator (the same on
    one device and on the mesh)."""
    # no bias before BatchNorm: its gradient is zero up to rounding, and Adam would turn
    # the sign of that rounding into whole steps
    model = model_class([keras.Input((3,)), keras.layers.Dense(4, use_bias=False), keras.layers.BatchNormalization(),
                         keras.layers.Dense(1)])
    rng = np.random.default_rng(7)
    for dense in (model.layers[0], model.layers[2]):  # BatchNorm starts as Keras makes it
        dense.set_weights([(0.5 * rng.normal(size=w.shape)).astype("float32") for w in dense.get_weights()])
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="mse")
    return model


def everything(model):
    seen, out = set(), []
    for v in [*model.variables, *model.optimizer.variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def curves(x, y):
    """The range test's curve and a momentum sweep's ranking, under the active distribution."""
    model = build_model()
    result = range_test(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=12, batch_size=GLOBAL_BATCH,
                        validation_data=(x[:32], y[:32]), verbose=0)
    swept = sweep(lambda: build_model(keras.optimizers.SGD(0.0, momentum=0.9)), (x, y), param="momentum",
                  values=(0.9, 0.5), min_lr=1e-4, max_lr=1.0, steps=10, batch_size=GLOBAL_BATCH, verbose=0)
    ranking = swept.ranking
    return {
        "lr": result.frame["lr"].tolist(),
        "loss": result.frame["loss"].tolist(),
        "val_loss": result.frame["val_loss"].tolist(),
        "replicas": result.meta["replicas"],
        "sweep_values": ranking["value"].tolist(),
        "sweep_min_smooth_loss": ranking["min_smooth_loss"].tolist(),
    }


def error(call):
    try:
        call()
    except LRSearchError as exc:
        return [type(exc).__name__, str(exc)]
    return None


def range_case() -> dict:
    x, y = data()
    out = {"one": curves(x, y)}
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    out["shards"] = batch_shards()
    out["two"] = curves(x, y)

    # the batch the step gets is split over the mesh: 8 rows on each device
    model = build_model()
    stepper = open_stepper(model, lr_sweep(1e-3, 1e-2, 2), 1)
    try:
        bx, _ = next(stepper.iterator(iter([(x[:GLOBAL_BATCH], y[:GLOBAL_BATCH])])))
        out["batch_spec"] = str(bx.sharding.spec)
        out["shard_rows"] = sorted(int(s.data.shape[0]) for s in bx.addressable_shards)
    finally:
        stepper.close()

    # restore: the same values, bit for bit, in the same layouts
    model = build_model()
    variables = everything(model)
    before = [np.array(v.numpy(), copy=True) for v in variables]
    layouts = [v.value.sharding for v in variables]
    range_test(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=8, batch_size=GLOBAL_BATCH, verbose=0)
    out["restored_equal"] = all(np.array_equal(v.numpy(), b) for v, b in zip(variables, before))
    out["restored_layouts"] = all(v.value.sharding == s for v, s in zip(variables, layouts))
    out["devices_per_variable"] = sorted({len(v.value.sharding.device_set) for v in variables})
    range_test(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=4, batch_size=GLOBAL_BATCH, restore=False, verbose=0)
    out["kept_layouts"] = all(v.value.sharding == s for v, s in zip(variables, layouts))
    out["moved"] = not all(np.array_equal(v.numpy(), b) for v, b in zip(variables, before))

    # global batches the 2 devices cannot split
    out["odd_batch"] = error(lambda: range_test(build_model(), (x, y), min_lr=1e-4, max_lr=1.0, steps=4,
                                                batch_size=15, verbose=0))
    out["odd_validation"] = error(lambda: range_test(build_model(), (x, y), min_lr=1e-4, max_lr=1.0, steps=4,
                                                     batch_size=GLOBAL_BATCH, validation_data=(x[:15], y[:15]),
                                                     verbose=0))
    # a batched tf.data.Dataset and a PyDataset are read as fit reads them, then split the same way
    import tensorflow as tf

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(x) // GLOBAL_BATCH

        def __getitem__(self, i):
            return x[i * GLOBAL_BATCH:(i + 1) * GLOBAL_BATCH], y[i * GLOBAL_BATCH:(i + 1) * GLOBAL_BATCH]

    kinds = {"arrays": (x, y), "dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH),
             "pydataset": Batches()}
    out["kinds"] = {name: range_test(build_model(), kind, min_lr=1e-4, max_lr=1.0, steps=6, batch_size=GLOBAL_BATCH,
                                     verbose=0).frame["loss"].tolist() for name, kind in kinds.items()}
    # 63 samples in batches of 16: the dataset's fourth batch holds 15
    out["odd_dataset"] = error(lambda: range_test(
        build_model(), tf.data.Dataset.from_tensor_slices((x[:63], y[:63])).batch(GLOBAL_BATCH), min_lr=1e-4,
        max_lr=1.0, steps=6, verbose=0))

    keras.distribution.set_distribution(None)
    early = build_model()  # made on one device, then the distribution set
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    out["built_before"] = error(lambda: range_test(early, (x, y), min_lr=1e-4, max_lr=1.0, steps=4,
                                                   batch_size=GLOBAL_BATCH, verbose=0))
    return out


class StepRate(keras.Sequential):
    """Logs the rate of each update as the compiled step reads it from the optimizer's
    threaded variables (`step_lr`), before the update."""

    def train_step(self, state, data):
        optimizer_variables = state[2]
        with keras.StatelessScope(state_mapping=list(zip(self.optimizer.variables, optimizer_variables))):
            rate = self.optimizer.learning_rate
        logs, state = super().train_step(state, data)
        return {**logs, "step_lr": rate}, state


class Seen(keras.callbacks.Callback):
    """Each trial's per-batch rates, and where its weights and optimizer state live."""

    def __init__(self):
        super().__init__()
        self.trials = []

    def on_train_begin(self, logs=None):
        self.rates = []
        self.trials.append({"rates": self.rates,
                            "kernel_devices": len(self.model.layers[0].kernel.value.sharding.device_set)})

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(logs["step_lr"]))

    def on_train_end(self, logs=None):
        self.trials[-1]["optimizer_devices"] = sorted(
            {len(v.value.sharding.device_set) for v in self.model.optimizer.variables})


def optimizer_factories() -> dict:
    """lrsearch's optimizers, rate (and momentum where they take one) on a schedule."""
    from lrsearch import optimizers as opt
    from lrsearch.schedules import OneCycle

    def cycle(peak):
        return OneCycle(max_lr=peak, total_steps=8)

    return {
        "SGD": lambda: opt.SGD(cycle(0.05), momentum=cycle(0.05).momentum_schedule(), weight_decay=1e-3),
        "Adam": lambda: opt.Adam(cycle(0.01), beta_1=cycle(0.01).momentum_schedule()),
        "AdamW": lambda: opt.AdamW(cycle(0.01), weight_decay=0.01),
        "RMSprop": lambda: opt.RMSprop(cycle(0.01), momentum=cycle(0.01).momentum_schedule()),
        "ScheduleFreeAdamW": lambda: opt.ScheduleFreeAdamW(0.01, warmup_steps=2),
        "ScheduleFreeSGD": lambda: opt.ScheduleFreeSGD(0.05, warmup_steps=2),
        "ProdigyAdam": lambda: opt.ProdigyAdam(1.0),
    }


def trained_weights(x, y) -> dict:
    """The weights after 2 epochs of `fit` (8 steps) with each optimizer, under the active distribution."""
    out = {}
    for name, make in optimizer_factories().items():
        model = build_model(make())
        model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0)
        out[name] = {"weights": [w.ravel().tolist() for w in model.get_weights()],
                     "devices": sorted({len(v.value.sharding.device_set) for v in model.optimizer.variables})}
    return out


def study_case() -> dict:
    import optuna

    import lrsearch
    from lrsearch.export.spec import ScheduleSpec
    from lrsearch.rangetest.analysis import LRSuggestion

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x, y = data()
    one = trained_weights(x, y)
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    two = trained_weights(x, y)
    # copies of a compiled model (what `lrsearch.auto(model)` trains) are laid out on the mesh too
    from lrsearch.run.modelfile import make_builder

    copy = make_builder(build_model())()
    copied = {"devices": len(copy.layers[0].kernel.value.sharding.device_set),
              "loss": float(copy.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False,
                                     verbose=0).history["loss"][0]),
              "model_loss": float(build_model().fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False,
                                                    verbose=0).history["loss"][0])}
    seen = Seen()
    suggestion = LRSuggestion(base_lr=1e-3, max_lr=0.05, steepest_lr=0.01, valley_lr=0.01,
                              min_loss_lr=0.03, warnings=())
    with tempfile.TemporaryDirectory() as tmp:
        res = lrsearch.tune(lambda: build_model(keras.optimizers.SGD(0.01, momentum=0.9), model_class=StepRate), (x, y),
                   validation_data=(x[:16], y[:16]), suggestion=suggestion, families=("one_cycle",), epochs=2,
                   trials=2, batch_size=GLOBAL_BATCH, pruner="none", seed=0, out_dir=tmp,
                   study_name="data-parallel", callbacks=[seen])
        trials = []
        for frozen, record in zip(res.study.trials, seen.trials):
            schedule = ScheduleSpec.from_dict(frozen.user_attrs["spec"]).schedule
            expected = [float(schedule(i)) for i in range(len(record["rates"]))]
            trials.append({**record, "expected": expected, "total_steps": int(schedule.total_steps)})
        # batches the 2 devices cannot split, refused before any trial trains
        def odd(train, **kw):
            return error(lambda: lrsearch.tune(build_model, train, validation_data=(x[:16], y[:16]),
                                               bounds=(1e-3, 0.05), epochs=1, trials=1, pruner="none", seed=0,
                                               out_dir=tmp, study_name="odd", **kw))

        odd_batch = odd((x, y), batch_size=15)
        odd_last = odd((x[:63], y[:63]), batch_size=16)
    return {"state": res.trials["state"].tolist(), "trials": trials, "optimizers": {"one": one, "two": two},
            "odd_batch": odd_batch, "odd_last": odd_last, "copy": copied,
            "distribution_after": keras.distribution.distribution() is not None}


if __name__ == "__main__":
    assert len(jax.devices()) == 2, jax.devices()
    case = sys.argv[1] if len(sys.argv) > 1 else "range"
    sys.stdout.write(json.dumps(range_case() if case == "range" else study_case()) + "\n")
