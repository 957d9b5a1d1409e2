"""Defaults that several layers share, defined once (plain constants, no imports).

The command line reads them to build its parser before the slow imports; `data`,
`storage`, `options` and the studies take them from here.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_LR",
    "DEFAULT_MIN_LR",
    "DEFAULT_RANGE_STEPS",
    "DEFAULT_TRIALS",
]

DEFAULT_BATCH_SIZE = 32
"""Batch size of arrays (datasets come batched)."""
DEFAULT_EPOCHS = 10
"""Epochs per trial."""
DEFAULT_TRIALS = 20
"""Trials a run adds to a study."""
DEFAULT_HEARTBEAT_INTERVAL = 10
"""Seconds between a running trial's heartbeats in the study's storage."""
DEFAULT_RANGE_STEPS = 160
"""Steps of the range test `auto` runs."""
DEFAULT_MIN_LR = 1e-6
DEFAULT_MAX_LR = 10.0
"""The rates `auto`'s range test spans."""
