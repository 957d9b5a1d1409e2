"""The one reader of user data: what the range test, sweeps and studies train on.

Everything that trains in lrsearch accepts the same kinds of data, on every backend:

- `(x, y)` or `(x, y, sample_weight)` arrays, where `x` may also be a list or a dict of
  arrays (multi-input models) and `y` a list or dict (multi-output models);
- a batched `tf.data.Dataset` yielding `x`, `(x, y)` or `(x, y, sample_weight)`; it is
  used as it is;
- a `keras.utils.PyDataset`; its batches are read by index in order, and
  `on_epoch_end()` is called after each full pass, as `fit` does;
- and, like `fit`, a `torch.utils.data.DataLoader` (read through Keras' adapter).

Two readings of it live here. `as_dataset` makes one ordered pass as a batched
`tf.data.Dataset` (arrays never shuffled): what a range test steps through on
TensorFlow (on JAX and PyTorch `lrsearch.data.batches` reads the same batches as `fit` there).
`prepare_data` makes the arguments of `model.fit` for a study's trials (arrays batched
by Keras and shuffled each epoch) plus the probe batch of the pre-flight check.

Example:

    ds = as_dataset((x, y), batch_size=32)           # one ordered pass
    n = count_batches(ds)                            # batches per pass, or None
    stream = take_batches(ds, 500)                   # exactly 500 batches, repeating
    fit = prepare_data((x, y), (xv, yv), batch_size=32)
    model.fit(epochs=3, **fit.fit_kwargs)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters import get_data_adapter  # what fit reads data with

from lrsearch.core.errors import DataError, argument_error, first_line
from lrsearch.core.defaults import DEFAULT_BATCH_SIZE

__all__ = [
    "FitData",
    "as_dataset",
    "as_pair",
    "count_batches",
    "first_batch",
    "is_dataloader",
    "is_dataset",
    "normalize_arrays",
    "num_samples",
    "prepare_data",
    "probe_batch",
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


def num_samples(data: Any) -> int | None:
    """Number of samples in `(x, y[, w])` arrays; None for datasets.

    Raises:
        DataError: arrays of different lengths, or no samples.
    """
    if not isinstance(data, (tuple, list)):
        return None
    leaves = [leaf for leaf in tf.nest.flatten(list(data)) if leaf is not None]
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves if np.ndim(leaf) > 0}
    if len(lengths) > 1:
        raise DataError(
            f"the arrays in the data have different numbers of samples {sorted(lengths)}; "
            f"x, y and sample weights need one row per sample"
        )
    n = lengths.pop() if lengths else 0
    if n == 0:
        raise DataError("the data holds no samples; pass at least one batch")
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



# ----------------------------------------------------------------- data for model.fit


@dataclass(frozen=True)
class FitData:
    """Training and validation data ready for `model.fit`, prepared once per study.

    Attributes:
        fit_kwargs: `x`, `y`, `batch_size`, `validation_data`, ... for `model.fit`.
        steps_per_epoch: batches per epoch.
        batch_size: the batch size of arrays (`None` for a dataset, batched already).
        probe: the first training batch `(x, y[, sample_weight])`, for the pre-flight check.
    """

    fit_kwargs: dict[str, Any]
    steps_per_epoch: int
    batch_size: int | None
    probe: tuple[Any, ...]

    @property
    def validation(self) -> Any:
        return self.fit_kwargs.get("validation_data")


def is_dataset(obj: Any) -> bool:
    """Whether `obj` is a batched dataset (`tf.data.Dataset`, `keras.utils.PyDataset` or a
    `torch.utils.data.DataLoader`)."""
    return isinstance(obj, (tf.data.Dataset, keras.utils.PyDataset)) or is_dataloader(obj)


def _is_arrays(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) in (2, 3)


def as_pair(data: Any, what: str) -> Any:
    """`data` as a tuple `(x, y[, sample_weight])` of arrays, or the dataset it is.

    Raises:
        DataError: missing, or a tuple of another length.
    """
    if data is None:
        raise DataError(f"{what} is missing; return (train, validation) with both parts")
    if isinstance(data, list):
        data = tuple(data)
    if isinstance(data, tuple) and len(data) not in (2, 3):
        raise DataError(
            f"{what} must be (x, y) or (x, y, sample_weight). Received: a tuple of {len(data)}"
        )
    if isinstance(data, tuple):
        data = tuple(_list_to_array(part, name, what) for part, name in zip(data, ("x", "y", "sample_weight")))
    return data


def _list_to_array(part: Any, name: str, what: str) -> Any:
    """A Python list of numbers or rows (as `.tolist()` gives) as an array; a list of
    arrays (several inputs) is left as it is."""
    if not isinstance(part, list) or not part or isinstance(part[0], np.ndarray) or hasattr(part[0], "shape"):
        return part
    try:
        array = np.asarray(part)
    except ValueError as exc:  # ragged rows
        raise DataError(f"{what}: {name} is a list whose rows differ in length ({first_line(exc, 80)}); "
                        "return NumPy arrays of one shape") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DataError(f"{what}: {name} is a list of {type(part[0]).__name__}, not numbers; return NumPy arrays")
    return array.astype("float32") if np.issubdtype(array.dtype, np.floating) else array


def _head(x: Any, n: int) -> Any:
    if isinstance(x, Mapping):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(v[:n] for v in x)
    return x[:n]


def probe_batch(data: Any, batch_size: int = DEFAULT_BATCH_SIZE, what: str = "training data"
                ) -> tuple[Any, ...]:
    """The first batch `(x, y[, sample_weight])` of arrays (`batch_size` rows) or a dataset.

    Raises:
        DataError: no samples, arrays of different lengths, an empty or unreadable dataset.
    """
    if _is_arrays(data) and not is_dataset(data):
        num_samples(data)
        return tuple(_head(part, batch_size) if part is not None else None for part in data)
    try:
        batch = data[0] if isinstance(data, keras.utils.PyDataset) else next(iter(data))
    except (StopIteration, IndexError):
        raise DataError(f"{what} is an empty dataset; it needs at least one batch") from None
    except Exception as exc:
        raise DataError(f"cannot read a batch of {what}: {first_line(exc)}") from exc
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _dataset_steps(data: Any) -> int:
    if isinstance(data, keras.utils.PyDataset):
        n = data.num_batches
        if n is None:
            raise DataError("the PyDataset has no length: define __len__ so epochs have an end")
        return int(n)
    if is_dataloader(data):
        return len(data)
    card = int(data.cardinality())
    if card == tf.data.INFINITE_CARDINALITY:
        raise DataError(
            "the dataset repeats forever: pass a finite dataset (one epoch), or steps_per_epoch"
        )
    if card == tf.data.UNKNOWN_CARDINALITY:
        card = sum(1 for _ in data)
    if card == 0:
        raise DataError("the training dataset is empty")
    return card


def _endless(data: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset repeated (unless it repeats forever already): with `steps_per_epoch`
    each epoch reads on where the last one stopped and never runs out, so a trial runs
    `steps_per_epoch * epochs` steps, the length its schedule was sized to."""
    card = int(data.cardinality())
    if card == 0:
        raise DataError("the training dataset is empty")
    return data if card == tf.data.INFINITE_CARDINALITY else data.repeat()


def _with_length(data: Any, steps: int) -> Any:
    """A `tf.data.Dataset` of unknown length, told the length counted once.

    On a dataset it cannot measure, `fit` counts one optimizer step too many at the end
    of every epoch (the weights do not move, `iterations` does), which would run every
    schedule a step per epoch ahead of the real updates.
    """
    if isinstance(data, tf.data.Dataset) and int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY:
        return data.apply(tf.data.experimental.assert_cardinality(steps))
    return data


def prepare_data(data: Any, validation_data: Any, batch_size: int | None = None,
                 steps_per_epoch: int | None = None) -> FitData:
    """The arguments of `model.fit` for a study's trials, checked once.

    Arrays stay arrays (Keras batches them with `batch_size`, default 32, shuffled each
    epoch); a batched `tf.data.Dataset` or `keras.utils.PyDataset` is used as it is. With
    `steps_per_epoch`, a `tf.data.Dataset` (which may repeat forever) is read on across
    epochs, repeated as needed, so every epoch has exactly that many batches.

    Raises:
        DataError: data of an unknown kind, empty, or a dataset that repeats forever
            without `steps_per_epoch`.
        ConfigError: `batch_size` or `steps_per_epoch` < 1, or `steps_per_epoch` given
            for arrays or a PyDataset.
    """
    kwargs: dict[str, Any] = {}
    if steps_per_epoch is not None:
        if not isinstance(data, tf.data.Dataset):
            raise argument_error("steps_per_epoch", "None unless the data is a tf.data.Dataset "
                                 "(arrays and PyDatasets make whole epochs)", steps_per_epoch)
        if isinstance(steps_per_epoch, bool) or int(steps_per_epoch) != steps_per_epoch \
                or steps_per_epoch < 1:
            raise argument_error("steps_per_epoch", "an integer >= 1", steps_per_epoch)
    used_bs: int | None = None
    if is_dataset(data):
        if batch_size is not None:
            logger.debug("batch_size=%s ignored: a dataset is used as it is batched", batch_size)
        if steps_per_epoch is not None:
            steps = int(steps_per_epoch)
            kwargs.update(x=_endless(data), steps_per_epoch=steps)
        else:
            steps = _dataset_steps(data)
            kwargs["x"] = _with_length(data, steps)
        probe = probe_batch(data)
    elif _is_arrays(data):
        used_bs = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if isinstance(used_bs, bool) or int(used_bs) != used_bs or used_bs < 1:
            raise argument_error("batch_size", "an integer >= 1", batch_size)
        used_bs = int(used_bs)
        n = num_samples(data)
        kwargs.update(x=data[0], y=data[1], batch_size=used_bs, shuffle=True)
        if len(data) == 3:
            kwargs["sample_weight"] = data[2]
        steps = -(-n // used_bs)
        probe = probe_batch(data, used_bs)
    else:
        raise DataError(f"training data must be {KINDS}. Received: {type(data).__name__}")
    if validation_data is not None:
        if is_dataset(validation_data):
            kwargs["validation_data"] = validation_data
        elif _is_arrays(validation_data):
            num_samples(validation_data)
            kwargs["validation_data"] = tuple(validation_data)
            if used_bs is not None:
                kwargs["validation_batch_size"] = used_bs
        else:
            raise DataError(
                f"validation_data must be {KINDS}. Received: {type(validation_data).__name__}"
            )
    return FitData(kwargs, int(steps), used_bs, probe)
