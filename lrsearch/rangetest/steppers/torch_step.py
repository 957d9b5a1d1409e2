"""The range test's step on PyTorch: the model's own `train_step`, eager or under
`torch.compile` (`jit_compile=True`), exactly as `fit` runs it there.

The metrics are reset before each step, so the `loss` in the logs is that batch's own;
the rate comes from `IterationRamp` (a table indexed by the optimizer's `iterations`).
The module is in training mode during the steps (as in `fit`) and in evaluation mode for
the validation pass; `close()` puts back the mode it had and the optimizer's rate.

What a bad batch raises here: PyTorch's `RuntimeError`/`IndexError` (e.g. "Class values
must be smaller than num_classes" for a label out of range), named as a `DataError`
with the batch by the range test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import torch

from lrsearch.optimizers.base import unwrap
from lrsearch.rangetest.steppers.common import IterationRamp, batch_loss, install_ramp

__all__ = ["TorchStepper"]


class TorchStepper:
    """One call of the model's `train_step` per batch (compiled like `fit` compiles it)."""

    errors: tuple[type[BaseException], ...] = (RuntimeError, IndexError)
    """What a bad batch found mid-run raises on PyTorch."""

    def __init__(self, model: keras.Model, lrs: np.ndarray, accum: int) -> None:
        self.model = model
        self.inner = unwrap(model.optimizer)
        self._restore_rate = install_ramp(self.inner, IterationRamp(lrs, self.inner, accum))
        self.was_training = bool(model.training)
        model.train()
        compiled = not model.run_eagerly and bool(model.jit_compile)
        self._train = torch.compile(self._train_step) if compiled else self._train_step

    def _train_step(self, data: Any) -> Any:
        self.model.reset_metrics()
        return batch_loss(self.model.train_step(data))

    def iterator(self, stream: Any) -> Any:
        return iter(stream)

    def step(self, iterator: Any) -> Any:
        return self._train(next(iterator))

    def evaluate(self, batches: Sequence[Any]) -> float:
        model = self.model
        model.eval()
        model.reset_metrics()
        loss = None
        try:
            with torch.no_grad():
                for batch in batches:
                    loss = batch_loss(model.test_step(batch))
        finally:
            model.train()
        return float(loss)

    def close(self) -> None:
        self.model.train(self.was_training)
        self._restore_rate()
