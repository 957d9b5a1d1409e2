"""What every backend's range-test step shares: the snapshot that puts every variable
back, the rate read from a table by the optimizer's own counter, putting it in place of
the optimizer's rate (every group's, at its ratio, on a `MultiOptimizer`), the batch's
loss, and building the model as `fit` would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from lrsearch.core.errors import ConfigError, DataError, first_line
from lrsearch.data.mesh import batch_shards
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import GroupRamp, group_ratios, groups, is_multi

__all__ = ["IterationRamp", "Snapshot", "backend_rng_state", "batch_loss", "build_like_fit", "install_ramp", "replicas",
           "set_backend_rng_state"]


class Snapshot:
    """Values of a model's, its metrics' and its optimizer's variables, to put back.

    On PyTorch also the global random state: Keras' unseeded dropout draws from it there
    (`torch.nn.functional.dropout`), not from a seed-generator variable.
    """

    def __init__(self, model: keras.Model) -> None:
        seen: set[int] = set()
        self.variables = []
        for v in [*model.variables, *model.metrics_variables, *model.optimizer.variables]:
            if id(v) not in seen:
                seen.add(id(v))
                self.variables.append(v)
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.rng = backend_rng_state()

    def restore(self) -> None:
        for v, value in zip(self.variables, self.values):
            v.assign(value)
        set_backend_rng_state(self.rng)


def backend_rng_state() -> Any:
    """The backend's global random state that Keras layers draw from, or None.

    On PyTorch an unseeded `Dropout` uses torch's global generator; TensorFlow and JAX
    keep every draw in seed-generator variables (restored with the weights).
    """
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def set_backend_rng_state(state: Any) -> None:
    """Put back what `backend_rng_state` returned."""
    if state is None:
        return
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


class IterationRamp:
    """The rate read from a table by the optimizer's own step counter (any backend).

    The index is `(iterations - start) // accum`, where `iterations` is the optimizer's
    raw counter (one per batch, also under gradient accumulation) and `start` its value
    when the round began. Inside JAX's stateless step the counter is the threaded state's
    value, so the lookup runs in the jitted step with no Python per batch.
    """

    def __init__(self, lrs: np.ndarray, optimizer: Any, accum: int) -> None:
        self.table = keras.ops.convert_to_tensor(np.asarray(lrs, dtype="float32"))
        self.iterations = optimizer._iterations
        self.start = int(np.asarray(self.iterations.numpy()))
        self.accum = int(accum)
        self.last = int(np.size(lrs)) - 1

    def __call__(self) -> Any:
        ops = keras.ops
        done = ops.convert_to_tensor(self.iterations) - self.start
        return ops.take(self.table, ops.minimum(ops.floor_divide(done, self.accum), self.last))


def install_ramp(optimizer: Any, ramp: Any) -> Callable[[], None]:
    """Put `ramp` in place of the optimizer's rate; returns what puts the rate back.

    On a `MultiOptimizer` the ramp is the reference group's rate and every group reads
    `ramp() * ratio`, its ratio its compiled rate over the reference's
    (`lrsearch.optimizers.groups`), so the groups keep their proportions along the ramp.
    """
    inner = unwrap(optimizer)
    if not is_multi(inner):
        old = inner._learning_rate
        inner._learning_rate = ramp

        def restore_one() -> None:
            inner._learning_rate = old

        return restore_one
    subs = groups(inner)
    saved = [sub._learning_rate for sub in subs]
    for sub, ratio in zip(subs, group_ratios(inner)):
        sub._learning_rate = ramp if ratio == 1.0 else GroupRamp(ramp, ratio)

    def restore_all() -> None:
        for sub, old_rate in zip(subs, saved):
            sub._learning_rate = old_rate

    return restore_all


def batch_loss(logs: Any) -> Any:
    """The loss in the logs a `train_step`/`test_step` returned.

    Raises:
        ConfigError: a custom train_step returned no 'loss'.
    """
    if not isinstance(logs, dict) or "loss" not in logs:
        raise ConfigError(
            "the model's train_step returned no 'loss'; return the logs of "
            "compute_metrics (or a dict with 'loss') from a custom train_step"
        )
    return logs["loss"]


def replicas(model: keras.Model) -> int:
    """Replicas of the model's distribution strategy, or the devices a `keras.distribution`
    splits the batch over (1 without either)."""
    if keras.distribution.distribution() is not None:
        return batch_shards()
    return int(getattr(getattr(model, "distribute_strategy", None), "num_replicas_in_sync", 1) or 1)


def build_like_fit(model: keras.Model, batch: Any) -> None:
    """Build model, compiled loss/metrics and optimizer as `fit` would, before the snapshot."""
    strategy = getattr(model, "distribute_strategy", None)
    try:
        if strategy is None:
            model._symbolic_build(data_batch=batch)
            return
        with strategy.scope():  # slots mirrored like the weights, as in fit
            model._symbolic_build(data_batch=batch)
    except (ValueError, TypeError) as exc:
        raise DataError(f"the model cannot take the data: {first_line(exc)}") from exc


