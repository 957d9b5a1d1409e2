"""Find the rate, then train with it, in one call (fastai's `fit_one_cycle` habit).

`fit_one_cycle` runs a range test on the compiled model (its weights put back), takes
the suggested peak, recompiles the model with its optimizer rebuilt around a one-cycle
schedule (cyclical momentum when the optimizer has one) and trains it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from lrsearch.data.fit_data import prepare_data
from lrsearch.core.errors import argument_error
from lrsearch.rangetest.finder import range_test
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.schedules import OneCycle
from lrsearch.study.space import TrialSetup
from lrsearch.export.spec import ScheduleSpec
from lrsearch.study.tune import has_momentum, updates_per_epoch
from lrsearch.study.trial import configure_model

__all__ = ["OneCycleFit", "fit_one_cycle"]


@dataclass(frozen=True)
class OneCycleFit:
    """What `fit_one_cycle` returns.

    Attributes:
        history: the `keras.callbacks.History` of the `fit`.
        schedule: the schedule trained with (`ScheduleSpec`, range-test bounds in its
            provenance); `schedule.save("schedule.json")` keeps it.
        range_test: the range test the peak was read from.
    """

    history: keras.callbacks.History
    schedule: ScheduleSpec
    range_test: RangeTestResult

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import one_cycle_html  # notebook display
        from lrsearch.viz.plots import png_tag
        return one_cycle_html(self, png_tag(self.schedule.plot), png_tag(self.range_test.plot))


def fit_one_cycle(
    model: keras.Model,
    data: Any,
    epochs: int,
    *,
    validation_data: Any = None,
    batch_size: int = 32,
    max_lr: float | None = None,
    callbacks: Sequence[Any] | None = None,
    range_test_kwargs: Mapping[str, Any] | None = None,
    verbose: int | str = "auto",
) -> OneCycleFit:
    """Range test, suggested peak, one-cycle `fit`: the model trains in place.

    ```python
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="sparse_categorical_crossentropy")
    run = lrsearch.fit_one_cycle(model, (x, y), epochs=5, validation_data=(xv, yv))
    run.schedule.save("schedule.json"); run.history.history["val_loss"]
    ```

    Args:
        model: a compiled `keras.Model` (SGD, Adam, AdamW or RMSprop, Keras' or lrsearch's).
        data, validation_data: `(x, y[, sample_weight])` arrays (batched with
            `batch_size`, shuffled), a batched `tf.data.Dataset` or a `keras.utils.PyDataset`.
        epochs: epochs of the cycle (it spans exactly these).
        max_lr: the peak rate; `None` is the range test's `suggestion.max_lr`. The range
            test runs either way: its curve is kept with the result.
        callbacks: Keras callbacks for `fit` (not ones that set the rate).
        range_test_kwargs: options for `lrsearch.range_test` (`steps`, `min_lr`, ...).
        verbose: `fit`'s verbosity; the range test is silent at 0.

    Raises:
        ConfigError: `epochs` < 1, `max_lr` <= 0, an optimizer lrsearch cannot schedule,
            a rate-setting callback.
        DataError: data that cannot be used.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise argument_error("epochs", "an integer >= 1", epochs)
    if max_lr is not None and not float(max_lr) > 0:
        raise argument_error("max_lr", "> 0", max_lr)
    for cb in callbacks or ():
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau | keras.callbacks.LearningRateScheduler):
            raise argument_error("callbacks", "free of callbacks that set the learning rate (the one-cycle "
                                 "schedule sets it)", cb, received=type(cb).__name__)
    fit_data = prepare_data(data, validation_data, batch_size)
    updates = updates_per_epoch(model.optimizer, fit_data.steps_per_epoch)
    options: dict[str, Any] = {"verbose": 0 if verbose == 0 else 1, **(range_test_kwargs or {})}
    options.setdefault("batch_size", fit_data.batch_size or batch_size)
    options["restore"] = True
    result = range_test(model, data, **options)
    suggestion = result.suggestion
    peak = float(max_lr) if max_lr is not None else float(suggestion.max_lr)
    momentum = has_momentum(model.optimizer)
    sched = OneCycle(peak, total_steps=epochs * updates, cycle_momentum=momentum)
    setup = TrialSetup("one_cycle", sched, momentum=sched.momentum_schedule() if momentum else None,
                       params={"max_lr": peak})
    optimizer = configure_model(model, setup)
    spec = ScheduleSpec(
        sched, optimizer=optimizer, momentum=setup.momentum,
        steps_per_epoch=updates, epochs=epochs, batch_size=fit_data.batch_size,
        provenance={
            "family": "one_cycle",
            "params": {"max_lr": peak},
            "bounds": {"base_lr": float(suggestion.base_lr), "max_lr": float(suggestion.max_lr)},
            "range_test": {k: result.meta[k] for k in ("min_lr", "max_lr", "steps", "stopped")
                           if k in result.meta},
            "max_lr_given": max_lr is not None,
        },
    )
    # arrays are shuffled each epoch; a dataset is read as the user batched (and shuffled) it
    fit_kwargs = {"shuffle": False, **fit_data.fit_kwargs}
    history = model.fit(**fit_kwargs, epochs=epochs, callbacks=list(callbacks or []),
                        verbose=verbose)
    return OneCycleFit(history, spec, result)
