"""Training with a Schedule-Free optimizer: turning another optimizer into one, pausing
its warmup for a range test, exact train/eval switching inside `fit`, and BatchNorm
statistics recomputed at the averaged weights.

BatchNorm: the moving statistics a BatchNorm layer keeps during training are those of
`y`; the paper recomputes them at `x` before evaluating. `recompute_batchnorm(model,
data)` does it: a pass over some training batches at `x` that replaces each layer's
moving mean and variance by the exact average over those batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras

from lrsearch.core.checks import fail
from lrsearch.core.errors import ConfigError
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.keras_classes import is_keras_schedule_free, own_schedule_free
from lrsearch.optimizers.schedule_free import ScheduleFreeAdamW, ScheduleFreeBase, ScheduleFreeSGD

__all__ = ["ScheduleFreeEval", "as_schedule_free", "is_schedule_free", "pause_warmup", "recompute_batchnorm"]


_ADAPTIVE = (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.Adamax, keras.optimizers.Nadam,
             keras.optimizers.RMSprop, keras.optimizers.Adagrad)
_KEPT = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor", "gradient_accumulation_steps")


def as_schedule_free(
    optimizer: Any,
    *,
    learning_rate: Any = None,
    momentum: float | None = None,
    weight_decay: Any = None,
    warmup_steps: int | None = None,
    **kwargs: Any,
) -> ScheduleFreeBase:
    """A fresh Schedule-Free optimizer to train in place of `optimizer`.

    Adaptive optimizers (Keras' or lrsearch's Adam, AdamW, Adamax, Nadam, RMSprop,
    Adagrad: rates on Adam's scale, so their range test's rates fit) give a
    `ScheduleFreeAdamW`, with `beta_2` and `epsilon` of the Adam family; any other a
    `ScheduleFreeSGD`. Clipping, `loss_scale_factor` and gradient accumulation carry
    over, and a Schedule-Free optimizer keeps all its settings; the rate, the
    interpolation weight (`momentum`: `beta_1` or `momentum`), the weight decay and the
    warmup are the arguments' when given, else the reference's defaults (or the
    original's, for a Schedule-Free one). Keras' own `ScheduleFreeAdamW`, which collapses
    the weights in its first step (Keras 3.15, TensorFlow), gives lrsearch's with its settings. A
    `LossScaleOptimizer` is looked through.

    ```python
    optimizer = as_schedule_free(model.optimizer, learning_rate=3e-3, warmup_steps=200)
    model.compile(optimizer=optimizer, loss=model.loss)
    ```

    Raises:
        ConfigError: a value out of range.
    """
    inner = unwrap(optimizer)
    if is_keras_schedule_free(inner):
        inner = own_schedule_free(inner)
    config = inner.get_config()
    if isinstance(inner, ScheduleFreeBase):
        cls: type[ScheduleFreeBase] = type(inner)
        config.pop("name", None)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(config["learning_rate"])
        if isinstance(config.get("weight_decay"), dict):
            config["weight_decay"] = keras.saving.deserialize_keras_object(config["weight_decay"])
    elif isinstance(inner, _ADAPTIVE):
        cls = ScheduleFreeAdamW
        carried = ("beta_2", "epsilon") if isinstance(inner, _ADAPTIVE[:4]) else ()
        config = {k: config[k] for k in (*_KEPT, *carried) if k in config}
    else:
        cls = ScheduleFreeSGD
        config = {k: config[k] for k in _KEPT if k in config}
    given = {
        "learning_rate": learning_rate,
        cls._beta_name: momentum,
        "weight_decay": weight_decay,
        "warmup_steps": warmup_steps,
        **kwargs,
    }
    config.update({k: v for k, v in given.items() if v is not None})
    return cls(**config)


def is_schedule_free(optimizer: Any) -> bool:
    """Whether `optimizer` (or the one inside a `LossScaleOptimizer`) is Schedule-Free:
    lrsearch's, or Keras' own `ScheduleFreeAdamW` (which lrsearch trains as its own)."""
    return isinstance(unwrap(optimizer), ScheduleFreeBase) or is_keras_schedule_free(optimizer)


def pause_warmup(optimizer: Any) -> Callable[[], None]:
    """Switch a Schedule-Free optimizer's warmup off; returns what switches it back on.

    The range test sets the rate of each step and reads the loss against it; a warmup
    would multiply that rate by `(k + 1) / warmup_steps` over its first steps, so the
    curve would be read at rates the optimizer never used. The test traces its own step,
    so the warmup is off in it and nowhere else. Any other optimizer is left alone.
    """
    inner = unwrap(optimizer)
    if not isinstance(inner, ScheduleFreeBase) or inner.warmup_steps == 0:
        return lambda: None
    steps, inner.warmup_steps = inner.warmup_steps, 0

    def resume() -> None:
        inner.warmup_steps = steps

    return resume


def _schedule_free(model: keras.Model) -> ScheduleFreeBase | None:
    optimizer = getattr(model, "optimizer", None)
    optimizer = unwrap(optimizer)
    return optimizer if isinstance(optimizer, ScheduleFreeBase) else None


class ScheduleFreeEval(keras.callbacks.Callback):
    """Exact train/eval switching inside `fit` for a Schedule-Free optimizer.

    `on_train_begin` moves the weights back to `y` (so the first gradient of a resumed
    `fit` is taken at `y`); validation inside `fit` runs at `x` (to `x` in
    `on_test_begin`), and the weights stay at `x` until the next epoch begins (back to
    `y` in `on_epoch_begin`). So every epoch-end callback of a validated epoch sees the
    weights it was scored on: `EarlyStopping(restore_best_weights=True)` keeps and
    restores the best epoch's `x`, `ModelCheckpoint` saves `x`. (An epoch without
    validation ends at `y`.) A model compiled with another optimizer is left alone.

    ```python
    model.fit(x, y, validation_data=(x_val, y_val), callbacks=[ScheduleFreeEval()])
    ```
    """

    def __init__(self) -> None:
        super().__init__()
        self._training = False

    def on_train_begin(self, logs: Any = None) -> None:
        self._training = True
        optimizer = _schedule_free(self.model)
        if optimizer is not None:
            optimizer.train()

    def on_train_end(self, logs: Any = None) -> None:
        self._training = False

    def on_test_begin(self, logs: Any = None) -> None:
        optimizer = _schedule_free(self.model)
        if self._training and optimizer is not None:
            optimizer.eval()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        optimizer = _schedule_free(self.model)
        if optimizer is not None:
            optimizer.train()


def recompute_batchnorm(model: keras.Model, data: Iterable[Any], batches: int = 50) -> int:
    """Recompute every BatchNorm layer's moving statistics at the current weights.

    The paper's advice for Schedule-Free: statistics gathered during training belong to
    `y`; after `fit` (weights at `x`) run some training batches forward in training mode
    and keep their statistics. Each BatchNormalization layer's moving mean and variance
    become the plain average of the per-batch statistics over the batches run (its
    momentum is set to `1 - 1/(i + 1)` for batch `i` and restored after). Weights and
    optimizer state are not touched.

    ```python
    model.fit(x, y, epochs=10)                  # weights now at x
    recompute_batchnorm(model, train_dataset)   # statistics at x
    ```

    Args:
        model: a built Keras model.
        data: batches, `(inputs, targets)` or inputs only (a `tf.data.Dataset`, a list, ...).
        batches: how many batches to run, > 0.

    Returns:
        The number of batches run (0 when the model has no BatchNormalization layer).

    Raises:
        ConfigError: `batches` is not a whole number > 0, or `data` yields nothing.
    """
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise fail("batches", "a whole number > 0", batches)
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    run = 0
    try:
        for batch in data:
            if run == batches:
                break
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = 1.0 - 1.0 / (run + 1)  # 0 for the first batch: its statistics
            model(inputs, training=True)
            run += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if run == 0:
        raise ConfigError("Argument `data` must yield at least one batch. Received: an empty dataset")
    return run
