"""Keras optimizers whose momentum (or `beta_1`) and weight decay can follow a schedule.

In Keras 3 an optimizer's `momentum`, `beta_1` and `weight_decay` are Python floats read
when the train step is traced, so a callback that sets them between batches does nothing.
lrsearch's `SGD`, `Adam`, `AdamW` and `RMSprop` accept a schedule (or a float) for them,
evaluated inside the compiled step; given floats they train exactly like Keras' own.
Also here: Schedule-Free AdamW and SGD, Prodigy, and `rebuild`, the way from a user's
optimizer to a schedulable one; any other Keras optimizer (Nadam, Lion, Adafactor, a
user's subclass, ...) trains as its own class, its rate on the schedule, its momentum
the model's constant.

Modules, each importing only those above it in this list: `base` (the shared mixin),
`mirrors` (the four Keras mirrors), `schedule_free`, `prodigy`, `keras_classes` (any
other Keras class, and Keras' own Schedule-Free), `schedule_free_training`, `groups` (a
`MultiOptimizer`'s parameter groups, their reference and ratios), `registry` (which
classes exist, `rebuild`).
"""

from lrsearch.optimizers.mirrors import SGD, Adam, AdamW, RMSprop
from lrsearch.optimizers.prodigy import ProdigyAdam
from lrsearch.optimizers.keras_classes import (
    class_record,
    from_record,
    is_keras_schedule_free,
    own_schedule_free,
    schedule_free_as_own,
    warn_keras_schedule_free,
)
from lrsearch.optimizers.registry import (
    SCHEDULABLE,
    constant_momentum_note,
    has_own_class,
    momentum_attribute,
    momentum_can_follow_a_schedule,
    momentum_name,
    rebuild,
    schedulable_class,
)
from lrsearch.optimizers.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from lrsearch.optimizers.schedule_free_training import (
    ScheduleFreeEval,
    as_schedule_free,
    is_schedule_free,
    pause_warmup,
    recompute_batchnorm,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "ProdigyAdam",
    "ScheduleFreeAdamW",
    "ScheduleFreeEval",
    "ScheduleFreeSGD",
    "as_schedule_free",
    "class_record",
    "constant_momentum_note",
    "from_record",
    "has_own_class",
    "is_keras_schedule_free",
    "own_schedule_free",
    "schedule_free_as_own",
    "warn_keras_schedule_free",
    "is_schedule_free",
    "momentum_attribute",
    "momentum_can_follow_a_schedule",
    "momentum_name",
    "pause_warmup",
    "rebuild",
    "recompute_batchnorm",
    "schedulable_class",
    "SCHEDULABLE",
]

# Public classes report this package as their module, so what Keras' serialization
# records (`"module"` in saved models and schedule.json) names the public path and does
# not change when a class moves between the modules inside.
for _name in __all__:
    if isinstance(globals().get(_name), type):
        globals()[_name].__module__ = __name__
del _name
