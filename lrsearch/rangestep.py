"""The range test's machinery inside TensorFlow: the traced step, the rate table, the
validation pass and the snapshot that puts every variable back.

`lrsearch.finder.range_test` drives these; they are kept apart so the driver (rounds,
stop rules, results) reads as the procedure it is. The step runs the model's own
`train_step` (its loss, regularization, loss scaling, gradient accumulation) after
resetting the metrics, so the loss returned is that batch's, not a running mean; the
rate is read from a table by a step counter inside the traced function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lrsearch.errors import ConfigError, DataError, first_line

__all__ = ["Ramp", "Snapshot", "build_like_fit", "inner_optimizer", "make_eval", "make_step", "replicas"]


class Snapshot:
    """Values of a model's, its metrics' and its optimizer's variables, to put back."""

    def __init__(self, model: keras.Model) -> None:
        seen: set[int] = set()
        self.variables = []
        for v in [*model.variables, *model.metrics_variables, *model.optimizer.variables]:
            if id(v) not in seen:
                seen.add(id(v))
                self.variables.append(v)
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]

    def restore(self) -> None:
        for v, value in zip(self.variables, self.values):
            v.assign(value)


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
        logs = model.train_step(data)
        if not isinstance(logs, dict) or "loss" not in logs:
            raise ConfigError(
                "the model's train_step returned no 'loss'; return the logs of "
                "compute_metrics (or a dict with 'loss') from a custom train_step"
            )
        return tf.cast(logs["loss"], tf.float32)

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
    return int(getattr(model.distribute_strategy, "num_replicas_in_sync", 1) or 1)


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
    try:
        with model.distribute_strategy.scope():  # slots mirrored like the weights, as in fit
            model._symbolic_build(data_batch=batch)
    except (ValueError, TypeError) as exc:
        raise DataError(f"the model cannot take the data: {first_line(exc)}") from exc
