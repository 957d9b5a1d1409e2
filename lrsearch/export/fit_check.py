"""A callback that says, once when `fit` begins, that the run is not as long as its schedule.

A schedule is sized in optimizer steps: fitted at batch 64, a schedule made at batch 32
runs half its steps, so a one-cycle never anneals. `ScheduleSpec.callback()` returns a
`FitLengthCheck` holding the steps the schedule was sized for; `on_train_begin` compares
them with the steps Keras is about to run (`self.params["steps"]` an epoch, `epochs`)
and logs one warning naming the batch size and epochs to use. Nothing runs per batch.
"""

from __future__ import annotations

import logging

import keras

from lrsearch.optimizers.base import unwrap

__all__ = ["FitLengthCheck", "length_mismatch"]

log = logging.getLogger(__name__)


def length_mismatch(*, steps_per_epoch: int | None, epochs: int | None, batch_size: int | None,
                    fit_steps: int | None, fit_epochs: int | None, accumulation: int = 1) -> str | None:
    """The warning for a fit of `fit_epochs` epochs of `fit_steps` batches of a schedule
    sized for `epochs` of `steps_per_epoch` updates at `batch_size`; None when they agree
    or either length is unknown. `accumulation` is the optimizer's gradient accumulation
    (k batches an update)."""
    if not steps_per_epoch or not epochs or not fit_steps or not fit_epochs:
        return None
    updates = fit_steps // max(1, int(accumulation))
    if (updates, fit_epochs) == (steps_per_epoch, epochs):
        return None
    sized = f"{epochs} epochs of {steps_per_epoch} steps"
    if batch_size:
        sized += f" at batch_size={batch_size}"
    told = f"this fit runs {fit_epochs} epochs of {updates} steps, but the schedule was sized for {sized}"
    if updates == steps_per_epoch:
        return f"{told}: fit with epochs={epochs}, or the schedule ends before the run does (or never anneals)"
    if batch_size:
        return (f"{told}: fit with batch_size={batch_size}, epochs={epochs}, or to train at another batch size "
                "rescale the peak rate with lrsearch.schedules.scale_lr and size a new schedule for its steps")
    return (f"{told}: batch the data so an epoch has {steps_per_epoch} steps and fit with epochs={epochs}, or "
            "rescale the rate with lrsearch.schedules.scale_lr and size a new schedule for your steps")


class FitLengthCheck(keras.callbacks.Callback):
    """Warns once when `fit` begins if it runs another number of steps than the schedule
    was sized for.

    ```python
    spec = lrsearch.load_schedule("schedule.json")
    model.compile(optimizer=spec.build_optimizer(), loss="mse")
    model.fit(x, y, batch_size=spec.batch_size, epochs=spec.epochs, callbacks=[spec.callback()])
    ```

    Args:
        steps_per_epoch, epochs, batch_size: what the schedule was sized for.
    """

    def __init__(self, steps_per_epoch: int | None, epochs: int | None, batch_size: int | None = None) -> None:
        super().__init__()
        self.steps_per_epoch, self.epochs, self.batch_size = steps_per_epoch, epochs, batch_size
        self.message: str | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        accumulation = getattr(unwrap(optimizer), "gradient_accumulation_steps", None) if optimizer else None
        self.message = length_mismatch(
            steps_per_epoch=self.steps_per_epoch, epochs=self.epochs, batch_size=self.batch_size,
            fit_steps=self.params.get("steps"), fit_epochs=self.params.get("epochs"),
            accumulation=int(accumulation or 1),
        )
        if self.message:
            log.warning("%s", self.message)
