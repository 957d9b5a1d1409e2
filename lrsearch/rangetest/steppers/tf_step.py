"""The range test's step on TensorFlow: the traced step, the rate table and the
validation pass.

The step runs the model's own `train_step` (its loss, regularization, loss scaling,
gradient accumulation) after resetting the metrics, so the loss returned is that
batch's, not a running mean; the rate is read from a table by a step counter inside the
traced function. Per replica under a `tf.distribute` strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lrsearch.data.reader import count_batches, first_batch, take_batches
from lrsearch.rangetest.steppers.common import batch_loss, install_ramp, replicas

__all__ = ["DatasetSource", "Ramp", "TFStepper", "make_eval", "make_step"]


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
        self.ramp = Ramp(lrs, accum)
        self._restore_rate = install_ramp(model.optimizer, self.ramp)
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
        self._restore_rate()


