"""The one reader of user data: what the range test, sweeps and studies train on.

Everything that trains in lrsearch accepts the same kinds of data, on every backend:

- `(x, y)` or `(x, y, sample_weight)` arrays, where `x` may also be a list or a dict of
  arrays (multi-input models) and `y` a list or dict (multi-output models);
- a batched `tf.data.Dataset` yielding `x`, `(x, y)` or `(x, y, sample_weight)`; it is
  used as it is;
- a `keras.utils.PyDataset`; its batches are read by index in order, and
  `on_epoch_end()` is called after each full pass, as `fit` does;
- and, like `fit`, a `torch.utils.data.DataLoader` (read through Keras' adapter).

The ordered reading lives here: `as_dataset` makes one ordered pass as a batched
`tf.data.Dataset` (arrays never shuffled), what a range test steps through on
TensorFlow (on JAX and PyTorch `lrsearch.data.batches` reads the same batches as `fit` there).
What a study's trials get from `model.fit` (arrays batched by Keras and shuffled each
epoch) is `lrsearch.data.fit_data.prepare_data`.

Example:

    ds = as_dataset((x, y), batch_size=32)           # one ordered pass
    n = count_batches(ds)                            # batches per pass, or None
    stream = take_batches(ds, 500)                   # exactly 500 batches, repeating
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters import get_data_adapter  # what fit reads data with

from lrsearch.core.errors import DataError, argument_error
from lrsearch.core.defaults import DEFAULT_BATCH_SIZE

__all__ = [
    "as_dataset",
    "count_batches",
    "first_batch",
    "is_dataloader",
    "normalize_arrays",
    "num_samples",
    "steps_per_epoch",
    "take_batches",
    "unpack",
]

logger = logging.getLogger(__name__)

KINDS = "(x, y) arrays, a batched tf.data.Dataset, a keras.utils.PyDataset or (PyTorch) a DataLoader"


def _to_array(leaf: Any, what: str) -> Any:
    if leaf is None or tf.is_tensor(leaf):
        return leaf
    try:
        arr = np.asarray(leaf)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{what} cannot be turned into an array ({exc}); pass NumPy arrays") from exc
    if arr.dtype == object:
        raise DataError(f"{what} holds Python objects, not numbers; pass numeric NumPy arrays")
    if arr.ndim == 0:
        raise DataError(f"{what} is a scalar; pass one row per sample")
    return arr


def num_samples(data: Any, what: str = "the data") -> int | None:
    """Number of samples in `(x, y[, w])` arrays; None for datasets. `what` names the
    data in messages ("the validation data").

    Raises:
        DataError: arrays of different lengths, or no samples.
    """
    if not isinstance(data, (tuple, list)):
        return None
    leaves = [leaf for leaf in tf.nest.flatten(list(data)) if leaf is not None]
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves if np.ndim(leaf) > 0}
    if len(lengths) > 1:
        raise DataError(
            f"the arrays in {what} have different numbers of samples {sorted(lengths)}; "
            f"x, y and sample weights need one row per sample"
        )
    n = lengths.pop() if lengths else 0
    if n == 0:
        raise DataError(f"{what} holds no samples; pass at least one batch")
    return n


def _pydataset_to_tf(data: keras.utils.PyDataset) -> tf.data.Dataset:
    n = data.num_batches
    if n is None:
        raise DataError(
            "the PyDataset has no length; give it __len__ so that its batches can be read in order"
        )
    if n == 0:
        raise DataError("the PyDataset is empty; it must yield at least one batch")

    def norm(batch: Any) -> Any:
        if isinstance(batch, list):
            batch = tuple(batch)
        return tf.nest.map_structure(lambda v: v if v is None else np.asarray(v), batch)

    first = norm(data[0])

    def spec(v: np.ndarray) -> tf.TensorSpec:
        return tf.TensorSpec((None, *v.shape[1:]), tf.as_dtype(v.dtype))

    signature = tf.nest.map_structure(spec, first)

    def gen():
        for i in range(n):
            yield norm(data[i])
        data.on_epoch_end()

    return tf.data.Dataset.from_generator(gen, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(n)
    )


def as_dataset(
    data: Any, *, batch_size: int | None = DEFAULT_BATCH_SIZE, drop_remainder: bool = False
) -> tf.data.Dataset:
    """One ordered pass over `data` as a batched `tf.data.Dataset`.

    Args:
        data: `(x, y)` / `(x, y, sample_weight)` arrays (x, y may be lists or dicts of
            arrays), a batched `tf.data.Dataset`, a `keras.utils.PyDataset` or a
            `torch.utils.data.DataLoader` (read through Keras' adapter, as `fit` does).
        batch_size: batch size for arrays (ignored for datasets, which are batched).
        drop_remainder: for arrays, drop a last partial batch (kept when it is the only
            batch).

    Returns:
        A `tf.data.Dataset` of `(x, y[, sample_weight])` batches, in order.

    Raises:
        DataError: data of another kind, arrays of different lengths, no samples.
        ConfigError: `batch_size` < 1.
    """
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, keras.utils.PyDataset):
        return _pydataset_to_tf(data)
    if is_dataloader(data):  # what fit does with one on TensorFlow
        return get_data_adapter(data).get_tf_dataset()
    parts, n = normalize_arrays(data, batch_size)
    drop = bool(drop_remainder) and n >= batch_size
    # tf.data reads a Python list as one tensor; a list of inputs must be a tuple
    tensors = _lists_to_tuples(parts)
    return tf.data.Dataset.from_tensor_slices(tensors).batch(int(batch_size), drop_remainder=drop)


def normalize_arrays(data: Any, batch_size: int | None) -> tuple[tuple[Any, ...], int]:
    """`(x, y[, sample_weight])` arrays checked and turned into NumPy arrays, and the
    number of samples; a missing `y` or weight is dropped from the tuple.

    Raises:
        DataError: not 2 or 3 parts, x missing, arrays of different lengths, no samples.
        ConfigError: `batch_size` < 1.
    """
    if isinstance(data, Mapping) or not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise DataError(f"cannot train on data of type {type(data).__name__}; pass {KINDS}")
    if batch_size is None or int(batch_size) < 1:
        raise argument_error("batch_size", "an integer >= 1", batch_size)
    names = ("x", "y", "sample_weight")
    parts = tuple(
        tf.nest.map_structure(lambda v, w=names[i]: _to_array(v, w), part)
        for i, part in enumerate(data)
    )
    if parts[0] is None:
        raise DataError("x is None; pass the model's inputs as the first element of the data")
    n = num_samples(parts)
    if len(parts) == 3 and parts[2] is None:
        parts = parts[:2]
    if parts[1] is None:
        parts = parts[:1]
    return parts, n


def is_dataloader(data: Any) -> bool:
    """Whether `data` is a `torch.utils.data.DataLoader` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.utils.data.DataLoader)


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_lists_to_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _lists_to_tuples(v) for k, v in value.items()}
    return value


def count_batches(ds: tf.data.Dataset) -> int | None:
    """Batches in one pass of a dataset; None when unknown or infinite."""
    n = int(ds.cardinality())
    return n if n >= 0 else None


def steps_per_epoch(data: Any, batch_size: int | None = DEFAULT_BATCH_SIZE) -> int | None:
    """Batches in one pass over `data` (arrays batched with `batch_size`); None if unknown."""
    n = num_samples(data) if isinstance(data, (tuple, list)) else None
    if n is not None:
        return -(-n // int(batch_size or DEFAULT_BATCH_SIZE))
    if isinstance(data, keras.utils.PyDataset):
        return data.num_batches
    if is_dataloader(data):
        return len(data)
    return count_batches(as_dataset(data, batch_size=batch_size))


def take_batches(ds: tf.data.Dataset, steps: int) -> tf.data.Dataset:
    """Exactly `steps` batches from `ds` in order, starting over after each pass.

    Raises:
        DataError: the dataset is empty.
    """
    n = count_batches(ds)
    if n == 0:
        raise DataError("the dataset yields no batches; pass at least one batch")
    if n is not None and n >= steps:
        return ds.take(steps)
    return ds.repeat().take(steps)


def first_batch(ds: tf.data.Dataset) -> Any:
    """The first batch of a dataset (for building a model and checking shapes).

    Raises:
        DataError: the dataset is empty.
    """
    for batch in ds.take(1):
        return batch
    raise DataError("the dataset yields no batches; pass at least one batch")


def unpack(batch: Any) -> tuple[Any, Any, Any]:
    """`(x, y, sample_weight)` of a batch, with None for what it lacks (Keras' rule)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) == 1:
        return batch[0], None, None
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch
    raise DataError(
        f"a batch must be x, (x, y) or (x, y, sample_weight). Received: a tuple of {len(batch)}"
    )
