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
    "MAX_RANGE_STEPS",
    "MAX_STUDY_NAME",
    "RAMP_MODES",
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
MAX_RANGE_STEPS = 1_000_000
"""The most steps a range test records (its rates and losses are kept in memory; a few
hundred steps find the bounds)."""
MAX_STUDY_NAME = 128
"""The longest study name: it names the run folder and a row in the study's storage."""

RAMP_MODES = ("exp", "linear")
"""How a range test spaces its rates from min_lr to max_lr: geometric or arithmetic."""
