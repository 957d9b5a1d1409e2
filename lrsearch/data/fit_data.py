"""What a study's `fit` gets: the user's data as the arguments of `model.fit`, checked once.

`prepare_data` turns arrays or a batched dataset into `FitData` (arrays stay arrays,
batched by Keras and shuffled each epoch; a dataset is used as it is, told its length
when it cannot measure it), with the probe batch of the pre-flight check
(`probe_batch`). `as_pair` checks what a model file's `load_data()` returned.
The ordered reading a range test steps through is `lrsearch.data.reader`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lrsearch.core.defaults import DEFAULT_BATCH_SIZE
from lrsearch.core.errors import DataError, argument_error, first_line
from lrsearch.data.mesh import check_global_batch
from lrsearch.data.reader import KINDS, is_dataloader, num_samples

__all__ = ["FitData", "as_pair", "is_dataset", "prepare_data", "probe_batch"]

logger = logging.getLogger(__name__)


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
        num_samples(data, f"the {what}")
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
        ConfigError: `batch_size` or `steps_per_epoch` < 1, `steps_per_epoch` given
            for arrays or a PyDataset, or under a `keras.distribution` an array batch
            (also the last, partial one) that its devices cannot split evenly.
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
        n = num_samples(data, "the training data")
        kwargs.update(x=data[0], y=data[1], batch_size=used_bs, shuffle=True)
        if len(data) == 3:
            kwargs["sample_weight"] = data[2]
        steps = -(-n // used_bs)
        probe = probe_batch(data, used_bs)
        check_global_batch(used_bs)  # under a keras.distribution every batch is split over its devices
        check_global_batch(n % used_bs or used_bs, "last batch of the training data")
    else:
        raise DataError(f"training data must be {KINDS}. Received: {type(data).__name__}")
    if validation_data is not None:
        if is_dataset(validation_data):
            kwargs["validation_data"] = validation_data
        elif _is_arrays(validation_data):
            n_val = num_samples(validation_data, "the validation data")
            kwargs["validation_data"] = tuple(validation_data)
            if used_bs is not None:
                kwargs["validation_batch_size"] = used_bs
                check_global_batch(n_val % used_bs or used_bs, "last validation batch")
        else:
            raise DataError(
                f"validation_data must be {KINDS}. Received: {type(validation_data).__name__}"
            )
    return FitData(kwargs, int(steps), used_bs, probe)
