"""The range test's step on JAX: the model's own stateless `train_step`, jitted, with the
state threaded through it as `fit` does.

The state (trainable, non-trainable and optimizer variables) is taken from the model
once, the model's copies purged (as `fit` does, so the weights are not held twice), and
passed from step to step; `close()` writes it back to the variables, also after an error
or Ctrl-C, so the model holds the weights of the last completed step. The metric
variables go in fresh at every step, so the `loss` in the logs is that batch's own. The
rate comes from `IterationRamp`: a table indexed by the optimizer's `iterations`, which
the stateless step threads, so the lookup is part of the compiled step.

What a bad batch does here: XLA raises no error inside a compiled step. A label out of
range for a sparse cross-entropy is one-hot encoded as all zeros (that sample adds no
loss) and a gather clamps its index; only shapes and dtypes are checked, at the trace of
the first batch of each new shape (`ValueError`/`TypeError`, a `DataError` at step 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import keras
import numpy as np

from lrsearch.optimizers.base import unwrap
from lrsearch.rangetest.steppers.common import IterationRamp, batch_loss, install_ramp

__all__ = ["JaxStepper"]


class JaxStepper:
    """One jitted stateless step per batch (eager under `run_eagerly`/`jit_compile=False`)."""

    errors: tuple[type[BaseException], ...] = ()
    """Compiled JAX steps raise nothing for bad values (see the module's docstring)."""

    def __init__(self, model: keras.Model, lrs: np.ndarray, accum: int) -> None:
        self.model = model
        self.inner = unwrap(model.optimizer)
        self._restore_rate = install_ramp(self.inner, IterationRamp(lrs, self.inner, accum))
        model.reset_metrics()
        self.fresh = [v.value for v in model.metrics_variables]
        self.metrics = self.fresh
        self.state = model._get_jax_state(
            trainable_variables=True, non_trainable_variables=True, optimizer_variables=True,
            purge_model_variables=True,
        )
        self.open = True
        compiled = not model.run_eagerly and bool(model.jit_compile)
        self._train = jax.jit(self._train_step) if compiled else self._train_step
        self._test = jax.jit(self._test_step) if compiled else self._test_step

    def _train_step(self, state: tuple, data: Any) -> tuple[Any, tuple, list]:
        trainable, non_trainable, optimizer = state
        logs, (trainable, non_trainable, optimizer, metrics) = self.model.train_step(
            (trainable, non_trainable, optimizer, self.fresh), data
        )
        return batch_loss(logs), (trainable, non_trainable, optimizer), metrics

    def _test_step(self, weights: tuple, metrics: list, data: Any) -> tuple[Any, list]:
        logs, (_, _, metrics) = self.model.test_step((*weights, metrics), data)
        return batch_loss(logs), metrics

    def iterator(self, stream: Any) -> Any:
        return iter(stream)

    def step(self, iterator: Any) -> Any:
        loss, self.state, self.metrics = self._train(self.state, next(iterator))
        return loss

    def evaluate(self, batches: Sequence[Any]) -> float:
        weights = (self.state[0], self.state[1])
        metrics, loss = self.fresh, None
        for batch in batches:
            loss, metrics = self._test(weights, metrics, batch)
        return float(loss)

    def close(self) -> None:
        """Write the threaded state back to the variables and put the rate back (once)."""
        if not self.open:
            return
        self.open = False
        model = self.model
        trainable, non_trainable, optimizer = self.state
        pairs = [
            *zip(model.trainable_variables, trainable),
            *zip(model.non_trainable_variables, non_trainable),
            *zip(model.optimizer.variables, optimizer),
            *zip(model.metrics_variables, self.metrics),
        ]
        for variable, value in pairs:
            variable.assign(value)
        self._restore_rate()
