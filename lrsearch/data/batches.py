"""The range test's batches on JAX and PyTorch, read in order the way `model.fit` reads them.

On TensorFlow the range test steps through a `tf.data.Dataset` (`lrsearch.data.reader.as_dataset`).
On JAX and PyTorch it reads the same batches through Keras' own data adapters, the ones
`fit` uses on that backend: NumPy/JAX arrays on JAX, torch tensors on PyTorch. So every
kind `fit` accepts there works here: `(x, y[, sample_weight])` arrays (batched in order,
a last partial batch dropped like on TensorFlow), a batched `tf.data.Dataset`, a
`keras.utils.PyDataset` (`on_epoch_begin`/`on_epoch_end` around each full pass, as `fit`
calls them) and a `torch.utils.data.DataLoader`.

Example:

    source = BatchSource((x, y), batch_size=32, drop_remainder=True)
    source.per_pass                     # batches in one pass (None if unknown)
    for batch in source.take(500): ...  # exactly 500 batches, starting over after each pass
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import keras
from keras.src.trainers.data_adapters import get_data_adapter  # what fit reads data with

from lrsearch.data.reader import KINDS, is_dataloader, normalize_arrays
from lrsearch.core.errors import DataError, first_line

__all__ = ["BatchSource"]


def _is_tf_dataset(data: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


class BatchSource:
    """An ordered, repeatable stream of batches as the backend's `fit` would see them.

    Raises:
        DataError: data of another kind, arrays of different lengths, no samples.
        ConfigError: `batch_size` < 1 for arrays.
    """

    def __init__(self, data: Any, *, batch_size: int | None, drop_remainder: bool = False) -> None:
        self.kind = "arrays"
        if isinstance(data, keras.utils.PyDataset):
            self.kind = "pydataset"
            if data.num_batches is None:
                raise DataError("the PyDataset has no length; give it __len__ so that its batches can be read in order")
            self._kwargs: dict[str, Any] = {"x": data}
        elif _is_tf_dataset(data) or is_dataloader(data):
            self.kind = "dataset"
            self._kwargs = {"x": data}
        elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
            parts, n = normalize_arrays(data, batch_size)
            if drop_remainder and n >= batch_size:  # every step sees as many samples
                keep = n - n % int(batch_size)
                parts = keras.tree.map_structure(lambda v: v[:keep], parts)
            self._kwargs = {"x": parts[0], "y": parts[1] if len(parts) > 1 else None,
                            "sample_weight": parts[2] if len(parts) > 2 else None, "batch_size": int(batch_size)}
        else:
            raise DataError(f"cannot train on data of type {type(data).__name__}; pass {KINDS}")
        try:
            self.per_pass: int | None = self._adapter().num_batches
        except (ValueError, TypeError) as exc:
            raise DataError(f"cannot read the data: {first_line(exc)}") from exc
        if self.per_pass == 0:
            raise DataError("the dataset yields no batches; pass at least one batch")

    def _adapter(self) -> Any:
        return get_data_adapter(shuffle=False, **self._kwargs)

    def _pass(self, adapter: Any) -> Iterator[Any]:
        if keras.backend.backend() == "torch":
            return iter(adapter.get_torch_dataloader())
        if keras.backend.backend() == "jax":
            return adapter.get_jax_iterator()
        return adapter.get_numpy_iterator()

    def take(self, steps: int) -> Iterator[Any]:
        """Exactly `steps` batches in order, starting a new pass after each one.

        Raises:
            DataError: the data yields no batches.
        """
        adapter = self._adapter()
        done = 0
        within = False
        try:
            while done < steps:
                adapter.on_epoch_begin()
                within = True
                got = 0
                for batch in self._pass(adapter):
                    yield batch
                    got += 1
                    done += 1
                    if done == steps:
                        return
                if got == 0:
                    raise DataError("the dataset yields no batches; pass at least one batch")
                adapter.on_epoch_end()
                within = False
        finally:
            if within and getattr(adapter, "enqueuer", None) is not None:
                adapter.enqueuer.stop()  # workers of a PyDataset stop with the stream

    def first(self) -> Any:
        """The first batch (to build the model).

        Raises:
            DataError: the data yields no batches.
        """
        stream = self.take(1)
        try:
            return next(stream)
        except StopIteration:
            raise DataError("the dataset yields no batches; pass at least one batch") from None
        finally:
            stream.close()

    def all(self) -> list[Any]:
        """One pass, as a list (validation batches)."""
        if self.per_pass is None:
            adapter = self._adapter()
            return list(self._pass(adapter))
        return list(self.take(self.per_pass))
