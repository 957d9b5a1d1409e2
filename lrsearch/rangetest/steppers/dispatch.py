"""Which backend's step and batches a range test uses: the one place that picks.

A stepper (`tf_step.TFStepper`, `jax_step.JaxStepper`, `torch_step.TorchStepper`) is
what the range test sees of a backend: it puts the rate table in place of the
optimizer's rate, runs one step (`step(iterator)`, the batch's loss), a validation pass
(`evaluate(batches)`), and `close()` puts the rate (and on JAX the threaded state) back.
A source (`tf_step.DatasetSource`, `lrsearch.data.batches.BatchSource`) yields the
batches in order. Each backend's module is imported only on that backend, so a JAX or
PyTorch run never imports the TensorFlow step.
"""

from __future__ import annotations

import sys
from typing import Any

import keras
import numpy as np

from lrsearch.core.errors import ConfigError

__all__ = ["check_backend", "check_distribution", "open_source", "open_stepper"]


def check_distribution() -> None:
    """Refuse a `keras.distribution` on a backend that is not JAX.

    Keras' distribution API is JAX's (on TensorFlow a prototype of Keras' own, on PyTorch
    absent); the range test would silently train on one device there.

    Raises:
        ConfigError: a distribution is set and the backend is not JAX.
    """
    backend = keras.backend.backend()
    if backend != "jax" and keras.distribution.distribution() is not None:
        hint = "use tf.distribute.MirroredStrategy on TensorFlow" if backend == "tensorflow" else "train on one device"
        raise ConfigError(
            f"keras.distribution needs KERAS_BACKEND=jax (current: {backend}); "
            f"call keras.distribution.set_distribution(None), or {hint}"
        )


def check_backend() -> None:
    """Refuse a `tf.distribute` strategy on a backend that is not TensorFlow, and a
    `keras.distribution` on one that is not JAX."""
    check_distribution()
    if keras.backend.backend() == "tensorflow" or "tensorflow" not in sys.modules:
        return  # without TensorFlow imported no strategy scope can be open
    import tensorflow as tf

    if tf.distribute.has_strategy():
        raise ConfigError(
            f"tf.distribute strategies need KERAS_BACKEND=tensorflow (current: {keras.backend.backend()}); "
            "run the range test outside strategy.scope() on this backend"
        )


def open_source(data: Any, batch_size: int, drop_remainder: bool, model: keras.Model) -> Any:
    """The batches of `data` in order, read as this backend's `fit` reads them."""
    if keras.backend.backend() == "tensorflow":
        from lrsearch.data.reader import as_dataset
        from lrsearch.rangetest.steppers.tf_step import DatasetSource

        return DatasetSource(as_dataset(data, batch_size=batch_size, drop_remainder=drop_remainder), model)
    from lrsearch.data.batches import BatchSource

    return BatchSource(data, batch_size=batch_size, drop_remainder=drop_remainder)


def open_stepper(model: keras.Model, lrs: np.ndarray, accum: int) -> Any:
    """This backend's step, with the rate table in place of the optimizer's rate."""
    backend = keras.backend.backend()
    if backend == "jax":
        from lrsearch.rangetest.steppers.jax_step import JaxStepper

        return JaxStepper(model, lrs, accum)
    if backend == "torch":
        from lrsearch.rangetest.steppers.torch_step import TorchStepper

        return TorchStepper(model, lrs, accum)
    if backend != "tensorflow":
        raise ConfigError(f"the range test runs on TensorFlow, JAX or PyTorch; KERAS_BACKEND={backend}")
    from lrsearch.rangetest.steppers.tf_step import TFStepper

    return TFStepper(model, lrs, accum)
