"""Learning-rate (and momentum) schedules that run inside the compiled train step.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` of the optimizer's
update count, registered with `keras.saving` (a model compiled with one saves and loads
back after `import lrsearch`): `OneCycle` and `CyclicLR` with their momentum companions
(`lrsearch.schedules.cycles`), and the warmup / hold / decay shapes `RampSustainDecay`,
`WarmupCosine`, `WarmupStableDecay`, `LinearWarmup` (`lrsearch.schedules.decay`), and
`Scaled`, a schedule times a constant (a parameter group's rate, `lrsearch.schedules.scaled`).

Modules, each importing only those above it in this list: `formulas` (the arithmetic,
for NumPy and `keras.ops`), `base`, `decay`, `cycles`, `scaled`.
"""

from lrsearch.schedules.cycles import CyclicLR, CyclicMomentum, OneCycle, OneCycleMomentum
from lrsearch.schedules.decay import LinearWarmup, RampSustainDecay, WarmupCosine, WarmupStableDecay, scale_lr
from lrsearch.schedules.scaled import Scaled

__all__ = [
    "CyclicLR",
    "CyclicMomentum",
    "LinearWarmup",
    "OneCycle",
    "OneCycleMomentum",
    "RampSustainDecay",
    "Scaled",
    "WarmupCosine",
    "WarmupStableDecay",
    "scale_lr",
]

# Public classes report this package as their module, so what Keras' serialization
# records (`"module"` in saved models and schedule.json) names the public path and does
# not change when a class moves between the modules inside.
for _name in __all__:
    if isinstance(globals().get(_name), type):
        globals()[_name].__module__ = __name__
del _name
