"""The range test's machinery: the snapshot that puts every variable back, and, on
TensorFlow, the traced step, the rate table and the validation pass.

`lrsearch.finder.range_test` drives these; they are kept apart so the driver (rounds,
stop rules, results) reads as the procedure it is. The step runs the model's own
`train_step` (its loss, regularization, loss scaling, gradient accumulation) after
resetting the metrics, so the loss returned is that batch's, not a running mean; the
rate is read from a table by a step counter inside the traced function.

A stepper (`TFStepper` here, `lrsearch.rangestep_jax.JaxStepper`,
`lrsearch.rangestep_torch.TorchStepper`) is what the driver sees of a backend: it puts
the rate table in place of the optimizer's rate, runs one step (`step(iterator)`, the
batch's loss), a validation pass (`evaluate(batches)`), and `close()` puts the rate (and
on JAX the threaded state) back. A source (`DatasetSource` here, `lrsearch.batches.BatchSource`)
yields the batches in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lrsearch.data import as_dataset, count_batches, first_batch, take_batches
from lrsearch.errors import ConfigError, DataError, first_line

__all__ = ["backend_rng_state", "check_backend", "open_source", "open_stepper", "set_backend_rng_state",
           "DatasetSource", "IterationRamp", "Ramp", "Snapshot", "TFStepper", "batch_loss", "build_like_fit",
           "inner_optimizer", "make_eval", "make_step", "replicas"]


class Snapshot:
    """Values of a model's, its metrics' and its optimizer's variables, to put back.

    On PyTorch also the global random state: Keras' unseeded dropout draws from it there
    (`torch.nn.functional.dropout`), not from a seed-generator variable.
    """

    def __init__(self, model: keras.Model) -> None:
        seen: set[int] = set()
        self.variables = []
        for v in [*model.variables, *model.metrics_variables, *model.optimizer.variables]:
            if id(v) not in seen:
                seen.add(id(v))
                self.variables.append(v)
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.rng = backend_rng_state()

    def restore(self) -> None:
        for v, value in zip(self.variables, self.values):
            v.assign(value)
        set_backend_rng_state(self.rng)


def backend_rng_state() -> Any:
    """The backend's global random state that Keras layers draw from, or None.

    On PyTorch an unseeded `Dropout` uses torch's global generator; TensorFlow and JAX
    keep every draw in seed-generator variables (restored with the weights).
    """
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def set_backend_rng_state(state: Any) -> None:
    """Put back what `backend_rng_state` returned."""
    if state is None:
        return
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


class Ramp:
    """The range test's rate, read from a table by a step counter inside the traced step.

    The optimizer calls it with no argument (Keras calls a callable learning rate), so
    the table lookup runs in the compiled train step. `count` counts batches; with
    gradient accumulation every `accum` batches make one optimizer step.
    """

    def __init__(self, lrs: np.ndarray, accum: int) -> None:
        self.table = tf.constant(lrs, dtype=tf.float32)
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="range_test_count")
        self.accum = accum

    def __call__(self) -> tf.Tensor:
        i = tf.minimum(self.count // self.accum, tf.cast(tf.size(self.table) - 1, tf.int64))
        return tf.gather(self.table, i)


class IterationRamp:
    """The rate read from a table by the optimizer's own step counter (any backend).

    The index is `(iterations - start) // accum`, where `iterations` is the optimizer's
    raw counter (one per batch, also under gradient accumulation) and `start` its value
    when the round began. Inside JAX's stateless step the counter is the threaded state's
    value, so the lookup runs in the jitted step with no Python per batch.
    """

    def __init__(self, lrs: np.ndarray, optimizer: Any, accum: int) -> None:
        self.table = keras.ops.convert_to_tensor(np.asarray(lrs, dtype="float32"))
        self.iterations = optimizer._iterations
        self.start = int(np.asarray(self.iterations.numpy()))
        self.accum = int(accum)
        self.last = int(np.size(lrs)) - 1

    def __call__(self) -> Any:
        ops = keras.ops
        done = ops.convert_to_tensor(self.iterations) - self.start
        return ops.take(self.table, ops.minimum(ops.floor_divide(done, self.accum), self.last))


def batch_loss(logs: Any) -> Any:
    """The loss in the logs a `train_step`/`test_step` returned.

    Raises:
        ConfigError: a custom train_step returned no 'loss'.
    """
    if not isinstance(logs, dict) or "loss" not in logs:
        raise ConfigError(
            "the model's train_step returned no 'loss'; return the logs of "
            "compute_metrics (or a dict with 'loss') from a custom train_step"
        )
    return logs["loss"]


def inner_optimizer(optimizer: Any) -> Any:
    """The optimizer under a loss-scale wrapper (or the optimizer itself)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def make_step(model: keras.Model, ramp: Ramp):
    """One traced training step: reset metrics, the model's train_step, count the batch.

    Under a distribution strategy with several replicas the step runs on each replica's
    share of the global batch (`strategy.run`, as `fit` does: BatchNorm statistics are
    per replica) and the loss is the mean over replicas, as `fit` reports it.
    """
    strategy = model.distribute_strategy

    def replica_step(data):
        model.reset_metrics()
        return tf.cast(batch_loss(model.train_step(data)), tf.float32)

    def one_step(data):
        if replicas(model) > 1:
            loss = strategy.reduce("MEAN", strategy.run(replica_step, args=(data,)), axis=None)
        else:
            loss = replica_step(data)
        ramp.count.assign_add(1)
        return loss

    if model.run_eagerly:
        return lambda iterator: one_step(next(iterator))
    jit = bool(getattr(model, "jit_compile", False))
    inner = tf.function(one_step, reduce_retracing=True, jit_compile=jit)

    @tf.function(reduce_retracing=True)
    def on_iterator(iterator):
        return inner(iterator.get_next())

    return on_iterator


def replicas(model: keras.Model) -> int:
    """Replicas of the model's distribution strategy (1 without one)."""
    return int(getattr(getattr(model, "distribute_strategy", None), "num_replicas_in_sync", 1) or 1)


def make_eval(model: keras.Model):
    """Mean loss over a validation dataset, under the current weights (per replica under
    a distribution strategy, as `evaluate` does: each replica reads its own copy of
    BatchNorm's moving statistics)."""
    strategy = model.distribute_strategy

    def replica_batch(data):
        return tf.cast(model.test_step(data)["loss"], tf.float32)

    def one_batch(data):
        if replicas(model) > 1:
            return strategy.reduce("MEAN", strategy.run(replica_batch, args=(data,)), axis=None)
        return replica_batch(data)

    fn = one_batch if model.run_eagerly else tf.function(one_batch, reduce_retracing=True)

    def evaluate(batches: Sequence[Any]) -> float:
        model.reset_metrics()
        loss = None
        for b in batches:
            loss = fn(b)
        return float(loss)

    return evaluate


def build_like_fit(model: keras.Model, batch: Any) -> None:
    """Build model, compiled loss/metrics and optimizer as `fit` would, before the snapshot."""
    strategy = getattr(model, "distribute_strategy", None)
    try:
        if strategy is None:
            model._symbolic_build(data_batch=batch)
            return
        with strategy.scope():  # slots mirrored like the weights, as in fit
            model._symbolic_build(data_batch=batch)
    except (ValueError, TypeError) as exc:
        raise DataError(f"the model cannot take the data: {first_line(exc)}") from exc


class DatasetSource:
    """The batches of a `tf.data.Dataset` in order (TensorFlow's range test)."""

    def __init__(self, ds: tf.data.Dataset, model: keras.Model | None = None) -> None:
        self.ds, self.model = ds, model
        self.per_pass = count_batches(ds)

    def take(self, steps: int) -> tf.data.Dataset:
        return take_batches(self.ds, steps)

    def first(self) -> Any:
        return first_batch(self.ds)

    def all(self) -> list[Any]:
        """One pass as a list; split among replicas under a distribution strategy."""
        ds = self.ds
        if self.model is not None and replicas(self.model) > 1:
            ds = self.model.distribute_strategy.experimental_distribute_dataset(ds)
        return list(ds)


class TFStepper:
    """TensorFlow's step: a `tf.function` (XLA under jit_compile) over the data iterator,
    the rate from `Ramp`, per replica under a distribution strategy."""

    errors: tuple[type[BaseException], ...] = (tf.errors.InvalidArgumentError,)
    """What a bad batch found mid-run raises (a label out of range, a broken image)."""

    def __init__(self, model: keras.Model, lrs: np.ndarray, accum: int) -> None:
        self.model = model
        self.inner = inner_optimizer(model.optimizer)
        self.old_lr = self.inner._learning_rate
        self.ramp = Ramp(lrs, accum)
        self.inner._learning_rate = self.ramp
        self.step = make_step(model, self.ramp)
        self._evaluate = None

    def iterator(self, stream: tf.data.Dataset) -> Any:
        if replicas(self.model) > 1:  # each replica reads its share of every global batch
            stream = self.model.distribute_strategy.experimental_distribute_dataset(stream)
        return iter(stream)

    def evaluate(self, batches: Sequence[Any]) -> float:
        if self._evaluate is None:
            self._evaluate = make_eval(self.model)
        return self._evaluate(batches)

    def close(self) -> None:
        self.inner._learning_rate = self.old_lr


def check_backend() -> None:
    """Refuse a `tf.distribute` strategy on a backend that is not TensorFlow."""
    if keras.backend.backend() == "tensorflow":
        return
    if tf.distribute.has_strategy():
        raise ConfigError(
            f"tf.distribute strategies need KERAS_BACKEND=tensorflow (current: {keras.backend.backend()}); "
            "run the range test outside strategy.scope() on this backend"
        )


def open_source(data: Any, batch_size: int, drop_remainder: bool, model: keras.Model) -> Any:
    """The batches of `data` in order, read as this backend's `fit` reads them."""
    if keras.backend.backend() == "tensorflow":
        return DatasetSource(as_dataset(data, batch_size=batch_size, drop_remainder=drop_remainder), model)
    from lrsearch.batches import BatchSource

    return BatchSource(data, batch_size=batch_size, drop_remainder=drop_remainder)


def open_stepper(model: keras.Model, lrs: np.ndarray, accum: int) -> Any:
    """This backend's step, with the rate table in place of the optimizer's rate."""
    backend = keras.backend.backend()
    if backend == "jax":
        from lrsearch.rangestep_jax import JaxStepper

        return JaxStepper(model, lrs, accum)
    if backend == "torch":
        from lrsearch.rangestep_torch import TorchStepper

        return TorchStepper(model, lrs, accum)
    if backend != "tensorflow":
        raise ConfigError(f"the range test runs on TensorFlow, JAX or PyTorch; KERAS_BACKEND={backend}")
    return TFStepper(model, lrs, accum)
