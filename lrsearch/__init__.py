"""lrsearch: learning-rate schedules for Keras 3 models, found from evidence.

Range test -> bounds from the smoothed loss slope -> momentum / weight-decay sweeps ->
Optuna (or KerasTuner) study inside those bounds -> the chosen schedule as JSON.

`import lrsearch` imports the schedules and optimizers so that a model saved with
them loads back with `keras.saving`; the other public names load on first use. The
command line alone defers them (see `_command_line_import`) so that `lrsearch --help`
answers without loading TensorFlow.

Layout (imports point down this list, never up): `formulas`, `analysis`, `space` (pure
math); `errors`, `options`; `schedule_base`, `decay_schedules`, `schedules`, `schedule_free`, `prodigy`, `optimizers`, `spec`, `data`; `finder`,
`sweeps`, `plots`; `preflight`, `trial`, `results`, `optuna_backend`, `kt_backend`,
`storage`, `study`; `modelfile`, `datafiles`, `pipeline`, `report`; `cli`, `commands`.
"""

from __future__ import annotations

import importlib
from typing import Any

from lrsearch.errors import (
    ConfigError,
    CurveError,
    DataError,
    DivergenceError,
    LRSearchError,
    ModelFileError,
    ScheduleFormatError,
    StorageError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "suggest": "lrsearch.analysis",
    "LRSuggestion": "lrsearch.analysis",
    "range_test": "lrsearch.finder",
    "RangeTestResult": "lrsearch.finder",
    "sweep": "lrsearch.sweeps",
    "SweepResult": "lrsearch.sweeps",
    "ScheduleSpec": "lrsearch.spec",
    "load_schedule": "lrsearch.spec",
    "tune": "lrsearch.study",
    "TuneResult": "lrsearch.study",
    "auto": "lrsearch.pipeline",
    "StudyOptions": "lrsearch.options",
    "fit_one_cycle": "lrsearch.quick",
    "OneCycleFit": "lrsearch.quick",
}
_SUBMODULES = {"schedules", "optimizers", "analysis"}

__all__ = [
    "LRSearchError",
    "ConfigError",
    "CurveError",
    "DataError",
    "DivergenceError",
    "ModelFileError",
    "ScheduleFormatError",
    "StorageError",
    "schedules",
    "optimizers",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"lrsearch.{name}")
    raise AttributeError(f"module 'lrsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _command_line_import() -> bool:
    """Whether the command line is importing the package: the `lrsearch` console script
    (`lrsearch_main` sets `_DEFER_KERAS`), or `python -m lrsearch` (or `-m lrsearch.cli`),
    which imports the package while `sys.argv[0]` is still `"-m"`. The command line then
    imports the schedules and optimizers itself before it touches Keras, so `--help` and
    usage errors answer without loading TensorFlow. Any other import is eager."""
    import sys

    if globals().get("_DEFER_KERAS"):
        return True
    if sys.argv[:1] != ["-m"]:
        return False
    argv = list(getattr(sys, "orig_argv", []))
    target = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    return target in ("lrsearch", "lrsearch.cli", "lrsearch.__main__")


if not _command_line_import():
    from lrsearch import optimizers, schedules  # noqa: E402,F401  (registers them with keras.saving)
