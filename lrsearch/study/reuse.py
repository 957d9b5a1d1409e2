"""Trials without a rebuild: one model and one traced train step for a whole study.

A trial that rebuilds its model pays for the build, a recompile and a retrace of the
train step, a few tenths of a second that a short trial feels (BENCHMARKS.md, 4).
Most trials of a study differ only in their schedules, momentum and weight decay, so
`TrialModels` keeps one model, compiled once with an optimizer whose rate, momentum and
weight decay are read from optimizer variables (`TableSchedule`), and for each trial:

1. writes the trial's schedules into those variables, as the values the schedules
   themselves give at every update of the run (evaluated once, by the schedules' own
   `keras.ops` formulas): every family and shape (one-cycle's `pct_start` and anneal,
   CLR's mode and step size, WSD's warmup and decay shape) fits the same traced step;
2. puts every other variable back to the value it had before the first trial began
   (captured once, the optimizer built first): weights, optimizer slots and update
   count, metric variables and the state of the layers' seed generators (dropout draws
   the same masks a fresh model would).

The variables are the optimizer's own (`optimizer.add_variable`), so they are part of
the state Keras' jitted JAX step carries (a variable outside that state would be baked
into the trace as a constant); TensorFlow and PyTorch read them where they are.

A table rather than each schedule's parameters as variables: the formulas branch in
Python on their shape arguments (anneal strategy, CLR mode, whether there is a warmup),
so parameter variables would still retrace between shapes, and each formula would need
a second, tensor-safe copy.

A trial on the shared model trains as it would (to float rounding) on a fresh
`build_model()` whose weights were drawn under `set_random_seed(seed)`: every reused
trial starts from the same initial weights (the schedules are compared from one start), and `seed +
trial.number` still seeds what happens after the build (the data order; set again as
the trial's `fit` begins, see `_Reset`). Without a seed, the weights are those of the
first build.

Today's rebuild (`configure_model` on a fresh `build_model()`) is kept where sharing is
not known to be safe, decided by `TrialModels.reusable`:

- the trial trains another optimizer (`schedule_free`) or another loss (label
  smoothing), or leaves momentum / weight decay to the optimizer where the shared
  model's trials set them (or the reverse): those change the traced step;
- the user's optimizer is not one of SGD, Adam, AdamW, RMSprop (Keras' or lrsearch's);
- `build_model()` returns a model without weights yet (no input shape: it builds
  inside its first traced step);
- a distribution (a `tf.distribute` strategy, `keras.distribution`) is in use;
- a callback other than `EarlyStopping`, `TerminateOnNaN`, `CSVLogger` rides along:
  it may save the model (whose optimizer reads tables that do not load back), or hold
  state the reset does not know;
- `reuse=False` (`StudyOptions.reuse`).

State outside Keras variables (Python attributes a custom `train_step` changes, the
global seed generator of `keras.random` calls made without a `SeedGenerator`) is not
reset; a model with such state should run with `reuse=False`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops

from lrsearch import optimizers as lr_optimizers
from lrsearch.core.errors import ConfigError
from lrsearch.study.space import TrialSetup
from lrsearch.study.trial import clear_keras_session, compile_kwargs, configure_model

__all__ = ["SAFE_CALLBACKS", "PreparedTrial", "TableSchedule", "TrialModels"]

logger = logging.getLogger(__name__)

SAFE_CALLBACKS: tuple[type, ...] = (
    keras.callbacks.EarlyStopping,
    keras.callbacks.TerminateOnNaN,
    keras.callbacks.CSVLogger,
)
"""User callbacks that may ride along on a shared model."""

_REUSABLE_OPTIMIZERS = (lr_optimizers.SGD, lr_optimizers.Adam, lr_optimizers.AdamW, lr_optimizers.RMSprop)


class TableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule whose values at updates `0 .. length - 1` sit in an optimizer variable.

    ```python
    def table_schedule(step):
        return table[min(step, length - 1)]
    ```

    `attach(optimizer)` makes the variable (before the optimizer's first step);
    `fill(schedule)` writes another schedule's values (or a constant) into it without
    touching the traced step. Internal to a study's shared model: not serializable.
    """

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = int(length)
        self.table: Any = None

    def attach(self, optimizer: keras.Optimizer) -> None:
        """Make the table an optimizer variable, so it is in the optimizer's state."""
        self.table = optimizer.add_variable((self.length,), initializer="zeros", dtype="float32",
                                            name=f"{self.name}_table")

    def fill(self, value: Any) -> None:
        """Write `value` (a schedule of the update count, or a number) into the table."""
        if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
            values = ops.convert_to_numpy(value(np.arange(self.length))).astype("float32")
            values = np.broadcast_to(values, (self.length,))
        else:
            values = np.full((self.length,), float(value), dtype="float32")
        self.table.assign(values)

    def __call__(self, step: Any) -> Any:
        index = ops.minimum(ops.cast(step, "int32"), self.length - 1)
        return ops.take(self.table, index)


@dataclass
class PreparedTrial:
    """What a trial trains: `model`, `callbacks` to put first in its `fit`, the
    optimizer the trial's spec describes (`trial_spec`), and whether it is shared."""

    model: keras.Model
    optimizer: keras.Optimizer
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)
    reused: bool = False


@dataclass(frozen=True)
class _Key:
    """What a shared model's traced step depends on beyond the tables."""

    momentum: bool
    weight_decay: bool


class TrialModels:
    """Gives each trial of a study its model: the shared one reset, or a fresh build.

    Args:
        build_model: the user's `build_model()`.
        steps: the most optimizer updates a trial runs (the tables' length is one more:
            the rate after the last update is recorded too).
        seed: the study's seed; the shared model is built under `set_random_seed(seed)`.
        callbacks: the user's callbacks for every trial (see the module docstring).
        enabled: `False` rebuilds every trial, as before.
    """

    def __init__(self, build_model: Callable[[], keras.Model], *, steps: int, seed: int | None,
                 callbacks: Sequence[Any] = (), enabled: bool = True) -> None:
        self.build_model = build_model
        self.length = int(steps) + 1
        self.seed = seed
        self.enabled = bool(enabled) and all(isinstance(cb, SAFE_CALLBACKS) for cb in callbacks)
        self.model: keras.Model | None = None
        self._key: _Key | None = None
        self._user_optimizer: Any = None
        self._tables: dict[str, TableSchedule] = {}
        self._snapshot: list[tuple[Any, np.ndarray]] | None = None
        self._last_reused = False
        self.builds = 0  # fresh models built, shared or not (tests and benchmarks read it)

    @staticmethod
    def _key_of(setup: TrialSetup) -> _Key:
        return _Key(momentum=setup.momentum is not None, weight_decay=setup.weight_decay is not None)

    def reusable(self, setup: TrialSetup) -> bool:
        """Whether `setup` can train on the shared model (see the module docstring)."""
        if not self.enabled or setup.optimizer is not None or setup.label_smoothing is not None:
            return False
        if not isinstance(setup.learning_rate, (keras.optimizers.schedules.LearningRateSchedule, int, float)):
            return False
        return self._key is None or self._key == self._key_of(setup)

    def prepare(self, setup: TrialSetup, seed: int | None) -> PreparedTrial:
        """The model for one trial, its optimizer settings written, ready for `fit`.

        `seed` is the trial's own (`set_random_seed(seed)` before its build, or, on the
        shared model, before its `fit`).
        """
        if self.reusable(setup) and (self.model is not None or self._build_shared(setup)):
            if seed is not None:
                keras.utils.set_random_seed(int(seed))
            self._fill(setup)
            self._last_reused = True
            spec_optimizer = lr_optimizers.rebuild(self._user_optimizer, learning_rate=setup.learning_rate,
                                                   momentum=setup.momentum, weight_decay=setup.weight_decay)
            return PreparedTrial(self.model, spec_optimizer, [_Reset(self, seed)], reused=True)
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        model = self.build_model()
        self.builds += 1
        optimizer = configure_model(model, setup)
        self._last_reused = False
        return PreparedTrial(model, optimizer)

    def after_trial(self, *args: Any) -> None:
        """Optuna study callback: clear Keras' session after a trial on a fresh model
        (its graph state goes; the shared model keeps its traced step)."""
        if not self._last_reused:
            clear_keras_session()

    # ------------------------------------------------------------------ internals
    def _build_shared(self, setup: TrialSetup) -> bool:
        """Build and compile the shared model; False (and sharing off) where it cannot be."""
        if self.seed is not None:
            keras.utils.set_random_seed(int(self.seed))
        model = self.build_model()
        self.builds += 1
        if not _built(model) or not _distribution_free(model):
            self.enabled = False
            return False
        key = self._key_of(setup)
        tables = {"learning_rate": TableSchedule("lrsearch_learning_rate", self.length)}
        if key.momentum:
            tables["momentum"] = TableSchedule("lrsearch_momentum", self.length)
        if key.weight_decay:
            tables["weight_decay"] = TableSchedule("lrsearch_weight_decay", 1)
        user = model.optimizer
        try:  # an optimizer lrsearch cannot rebuild fails again, and is told, in the rebuild
            optimizer = lr_optimizers.rebuild(user, learning_rate=tables["learning_rate"],
                                              momentum=tables.get("momentum"),
                                              weight_decay=tables.get("weight_decay"))
        except ConfigError:
            optimizer = None
        if type(optimizer) not in _REUSABLE_OPTIMIZERS:
            self.enabled = False
            return False
        kwargs = compile_kwargs(model)
        for table in tables.values():
            table.attach(optimizer)
        kwargs["optimizer"] = optimizer
        model.compile(**kwargs)
        self.model, self._key, self._user_optimizer, self._tables = model, key, user, tables
        return True

    def _fill(self, setup: TrialSetup) -> None:
        self._tables["learning_rate"].fill(setup.learning_rate)
        if "momentum" in self._tables:
            self._tables["momentum"].fill(setup.momentum)
        if "weight_decay" in self._tables:
            self._tables["weight_decay"].fill(setup.weight_decay)

    def _state(self) -> list[Any]:
        """Every variable a trial changes: the model's (weights, seed generators), the
        optimizer's but the tables, and the metrics'."""
        model = self.model
        tables = {id(t.table) for t in self._tables.values()}
        seen: set[int] = set(tables)
        out = []
        for v in [*model.variables, *model.optimizer.variables, *model.metrics_variables]:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    def _capture_or_reset(self) -> None:
        if self._snapshot is None:
            optimizer = self.model.optimizer
            if not optimizer.built:  # TensorFlow builds it while tracing the first step
                optimizer.build(self.model.trainable_variables)
            self._snapshot = [(v, np.array(v.numpy(), copy=True)) for v in self._state()]
            return
        for variable, value in self._snapshot:
            variable.assign(value)

    def _check_length(self) -> None:
        done = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if done >= self.length:
            logger.warning("a trial ran %d updates, more than the %d the study planned; the remaining "
                           "trials rebuild their model", done, self.length - 1)
            self.enabled = False


class _Reset(keras.callbacks.Callback):
    """First in a shared-model trial's `fit`: at the first trial, capture the initial
    state (every variable exists once `fit` has built the model); at later ones, put it
    back. Then seed the trial again: on JAX and PyTorch, `fit` on a model whose metrics
    are not built yet reads a batch first, which draws a shuffle of its own, so a fresh
    model and the shared one would shuffle the first epoch differently otherwise. At the
    end, check the trial stayed inside the tables."""

    def __init__(self, models: TrialModels, seed: int | None) -> None:
        super().__init__()
        self.models = models
        self.seed = seed

    def on_train_begin(self, logs: Any = None) -> None:
        self.models._capture_or_reset()
        if self.seed is not None:
            keras.utils.set_random_seed(int(self.seed))

    def on_train_end(self, logs: Any = None) -> None:
        self.models._check_length()


def _built(model: keras.Model) -> bool:
    """Whether `build_model()` made the weights (a known input shape): a model built
    lazily, inside its first traced step, would draw them under the trial's seed."""
    return bool(model.built and model.weights)


def _distribution_free(model: keras.Model) -> bool:
    """No `keras.distribution` and no `tf.distribute` strategy other than the default."""
    if keras.distribution.distribution() is not None:
        return False
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is None or type(strategy).__name__ == "_DefaultDistributionStrategy"
