"""The one check before any training: a model is built and the data evaluated once.

`build_checked` calls the user's `build_model()` and says plainly what is wrong with what
it returned. `check_data_fits` evaluates the first training and validation batches under
the model's current weights (no update): the data holds no NaN, fits the model's inputs
and labels, gives a finite loss, and produces the metric a study optimizes. `auto` and
the command line run it when they load a model file; `tune` runs it unless its caller
already did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from lrsearch.data.files import check_class_labels
from lrsearch.data.mesh import check_global_batch
from lrsearch.data.fit_data import as_pair, probe_batch
from lrsearch.data.reader import num_samples, unpack
from lrsearch.core.errors import ConfigError, DataError, DivergenceError, first_line
from lrsearch.core.defaults import DEFAULT_BATCH_SIZE

logger = logging.getLogger(__name__)

__all__ = ["build_checked", "check_data_fits"]


def build_checked(build_model: Callable[[], Any]) -> keras.Model:
    """`build_model()`, which must return a compiled `keras.Model`.

    Raises:
        ConfigError: it raised, or returned something else, or a model not compiled.
    """
    if not callable(build_model):
        raise ConfigError("build_model must be a function returning a fresh compiled model. "
                          f"Received: {type(build_model).__name__}")
    try:
        model = build_model()
    except Exception as exc:
        if isinstance(exc, (ConfigError, DataError)) or type(exc).__name__ == "ModelFileError":
            raise
        raise ConfigError(f"build_model() failed: {type(exc).__name__}: {first_line(exc)}") from exc
    if not isinstance(model, keras.Model):
        raise ConfigError(f"build_model() must return a keras.Model. Received: {type(model).__name__}")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError("build_model() must return a compiled model (call model.compile)")
    return model


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [leaf for value in x.values() for leaf in _leaves(value)]
    if isinstance(x, (tuple, list)):
        return [leaf for value in x for leaf in _leaves(value)]
    return [x]


def _check_finite(data: Any, what: str) -> None:
    """Arrays must be finite; a dataset's first batch is checked in `check_data_fits`."""
    if not isinstance(data, tuple):
        return
    for name, part in zip(("x", "y", "sample_weight"), data):
        for leaf in _leaves(part):
            array = np.asarray(leaf)
            if not np.issubdtype(array.dtype, np.number) or array.size == 0:
                continue
            bad = ~np.isfinite(array)
            if bad.all():
                raise DataError(f"{what}: {name} is all NaN/inf; check how the data is loaded")
            count = int(bad.sum())
            if count:
                raise DataError(
                    f"{what}: {name} holds {count} NaN/inf values out of {array.size}; clean or impute them"
                )


def _evaluate(model: keras.Model, data: Any, what: str, batch_size: int) -> dict[str, float]:
    data = as_pair(data, what)
    _check_finite(data, what)
    x, y, weight = unpack(probe_batch(data, batch_size, what))
    if y is None:
        raise DataError(f"{what} must yield (x, y) batches. Received: batches of x alone")
    check_class_labels(data[1] if isinstance(data, tuple) else y, getattr(model, "loss", None), what)
    for leaf in _leaves(x):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).any():
            raise DataError(f"{what}: the first batch of x is all NaN/inf; check how the data is loaded")
    leaves = [leaf for leaf in _leaves(x) if np.ndim(leaf)]
    if leaves:  # under a keras.distribution the batch is split over its devices
        check_global_batch(np.shape(leaves[0])[0], f"first batch of {what}")
    try:
        logs = model.evaluate(x, y, sample_weight=weight, batch_size=batch_size, verbose=0,
                              return_dict=True)
    except Exception as exc:
        shape = getattr(model, "input_shape", None)
        x_shape = tuple(np.shape(x)) if not isinstance(x, (dict, list, tuple)) else "structured"
        if not isinstance(data, tuple) and isinstance(shape, tuple) and isinstance(x_shape, tuple) \
                and len(x_shape) == len(shape) - 1:  # a dataset of single samples
            raise DataError(f"{what} is a dataset of single samples (x of shape {x_shape}), not of batches; "
                            "batch it with .batch(n), e.g. dataset.batch(32)") from exc
        raise DataError(
            f"{what} does not fit the model (input {shape}, batch x {x_shape}): {first_line(exc, 160)}"
        ) from exc
    loss = float(logs.get("loss", float("nan")))
    if not np.isfinite(loss):
        raise DivergenceError(
            f"the loss on the first batch of {what} is {loss} before any training; "
            "check the data's values and the model's loss"
        )
    return logs


def check_data_fits(model: keras.Model, train: Any, validation: Any, *,
                    batch_size: int = DEFAULT_BATCH_SIZE, metric: str | None = None) -> float:
    """Check, before any training, that the data is usable by the model.

    Evaluates the compiled loss (and metrics) of the first training batch and of the
    first validation batch under the model's current weights (no update).

    Args:
        model: a compiled `keras.Model`.
        train, validation: `(x, y)` arrays or batched datasets (`validation` may be
            `None` when `metric` does not need it).
        batch_size: rows of arrays to evaluate.
        metric: a metric the model must log (`val_*` names the validation's).

    Returns:
        The loss of the first training batch.

    Raises:
        DataError: NaN/inf values in the arrays, mismatched lengths, or data the model
            cannot take (wrong shape, labels out of range).
        DivergenceError: the loss is NaN/inf before a single update.
        ConfigError: the model does not produce `metric`, or has no trainable weights.
    """
    from lrsearch.rangetest.finder import require_trainable

    logs = _evaluate(model, train, "training data", batch_size)
    require_trainable(model)
    n = num_samples(as_pair(train, "training data")) if isinstance(train, (tuple, list)) else None
    if n is not None and n < batch_size:
        logger.warning("only %d training sample%s, fewer than one batch of %d: every step sees the same "
                       "samples, so the rates found say little; pass more data", n, "s" if n > 1 else "", batch_size)
    if validation is not None or metric is None or metric.startswith("val_"):
        _evaluate(model, validation, "validation data", batch_size)
    if metric is not None and metric.removeprefix("val_") not in logs:
        produced = sorted(logs) + sorted(f"val_{n}" for n in logs)
        raise ConfigError(
            f"the model does not produce metric {metric!r}: choose one of " + ", ".join(produced)
        )
    return float(logs["loss"])
