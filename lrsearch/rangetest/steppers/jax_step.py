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

from lrsearch.core.errors import ConfigError
from lrsearch.data.mesh import check_global_batch
from lrsearch.optimizers.base import unwrap
from lrsearch.rangetest.steppers.common import IterationRamp, batch_loss, install_ramp

__all__ = ["JaxStepper"]


class JaxStepper:
    """One jitted stateless step per batch (eager under `run_eagerly`/`jit_compile=False`)."""

    errors: tuple[type[BaseException], ...] = ()
    """Compiled JAX steps raise nothing for bad values (see the module's docstring)."""

    def __init__(self, model: keras.Model, lrs: np.ndarray, accum: int) -> None:
        self.distribution = keras.distribution.distribution()
        if self.distribution is not None:
            _check_laid_out(model, self.distribution)
        self.model = model
        self.inner = unwrap(model.optimizer)
        self._restore_rate = install_ramp(self.inner, IterationRamp(lrs, self.inner, accum))
        model.reset_metrics()
        self.fresh = [v.value for v in model.metrics_variables]
        self.metrics = self.fresh
        self.layouts: dict[tuple, Any] = {}
        self.placed: tuple[int, list] | None = None  # the validation batches, laid out once
        train_out = test_out = None
        if self.distribution is not None:  # the variables keep their layouts, as in fit
            metrics = [v.value.sharding for v in model.metrics_variables]
            state = tuple([v.value.sharding for v in variables] for variables in (
                model.trainable_variables, model.non_trainable_variables, model.optimizer.variables))
            train_out, test_out = (None, state, metrics), (None, metrics)
        self.state = model._get_jax_state(
            trainable_variables=True, non_trainable_variables=True, optimizer_variables=True,
            purge_model_variables=True,
        )
        self.open = True
        compiled = not model.run_eagerly and bool(model.jit_compile)
        self._train = jax.jit(self._train_step, out_shardings=train_out) if compiled else self._train_step
        self._test = jax.jit(self._test_step, out_shardings=test_out) if compiled else self._test_step

    def _train_step(self, state: tuple, data: Any) -> tuple[Any, tuple, list]:
        trainable, non_trainable, optimizer = state
        logs, (trainable, non_trainable, optimizer, metrics) = self.model.train_step(
            (trainable, non_trainable, optimizer, self.fresh), data
        )
        return batch_loss(logs), (trainable, non_trainable, optimizer), metrics

    def _test_step(self, weights: tuple, metrics: list, data: Any) -> tuple[Any, list]:
        logs, (_, _, metrics) = self.model.test_step((*weights, metrics), data)
        return batch_loss(logs), metrics

    def place(self, batch: Any, what: str = "training batch") -> Any:
        """The batch laid out across the distribution's devices (as it is without one).

        Raises:
            ConfigError: under a distribution, a batch that its devices cannot split evenly.
        """
        if self.distribution is None:
            return batch

        def shard(array: Any) -> Any:
            if array is None:
                return None
            check_global_batch(array.shape[0], what)
            shape = tuple(array.shape)
            if shape not in self.layouts:
                self.layouts[shape] = self.distribution.get_data_layout(shape).backend_layout
            return jax.make_array_from_process_local_data(self.layouts[shape], array)

        return keras.tree.map_structure(shard, batch)

    def iterator(self, stream: Any) -> Any:
        return (self.place(batch) for batch in stream)

    def step(self, iterator: Any) -> Any:
        loss, self.state, self.metrics = self._train(self.state, next(iterator))
        return loss

    def evaluate(self, batches: Sequence[Any]) -> float:
        weights = (self.state[0], self.state[1])
        if self.placed is None or self.placed[0] != id(batches):
            self.placed = (id(batches), [self.place(batch, "validation batch") for batch in batches])
        metrics, loss = self.fresh, None
        for batch in self.placed[1]:
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


def _check_laid_out(model: keras.Model, distribution: Any) -> None:
    """Refuse a model whose variables sit on one device while the distribution spans several.

    Raises:
        ConfigError: a variable made before `keras.distribution.set_distribution`.
    """
    if distribution.device_mesh.devices.size < 2:
        return
    for v in [*model.variables, *model.optimizer.variables]:
        if isinstance(v.value.sharding, jax.sharding.SingleDeviceSharding):
            raise ConfigError(
                f"the model's variable {v.path!r} was made before keras.distribution.set_distribution and sits "
                "on one device; set the distribution first, then build and compile the model"
            )
