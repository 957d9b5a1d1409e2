"""lrsearch: learning-rate schedules for Keras 3 models, found from evidence.

Range test -> bounds from the smoothed loss slope -> momentum / weight-decay sweeps ->
Optuna (or KerasTuner) study inside those bounds -> the chosen schedule as JSON.

`import lrsearch` imports the schedules and optimizers so that a model saved with
them loads back with `keras.saving`; the other public names load on first use. The
command line alone defers them (see `_command_line_import`) so that `lrsearch --help`
answers without loading TensorFlow.

The subpackages follow the pipeline, each importing only those before it in this list
(`tests/test_layers.py` is the one statement of that rule): `core` (errors, argument
checks, defaults, file writes, progress), `viz` (plot data, drawing, notebook HTML),
`schedules`, `optimizers`, `data` (the user's data, read as `fit` reads it), `export`
(`ScheduleSpec`, schedule.json), `rangetest` (range test, curve analysis, sweeps, one
stepper a backend), `study` (`tune`, its search space, trials, storage and backends),
`run` (`auto`, budgets, evidence, model files, report), `cli`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lrsearch.core.version import __version__
from lrsearch.core.errors import (
    ConfigError,
    CurveError,
    DataError,
    DivergenceError,
    LRSearchError,
    ModelFileError,
    ScheduleFormatError,
    StorageError,
)

if TYPE_CHECKING:  # what the lazy names are, for editors and type checkers
    from lrsearch.export.spec import ScheduleSpec, load_schedule
    from lrsearch.rangetest.analysis import LRSuggestion, suggest
    from lrsearch.rangetest.finder import range_test
    from lrsearch.rangetest.result import RangeTestResult
    from lrsearch.rangetest.sweeps import SweepResult, sweep
    from lrsearch.run.auto import AutoResult, auto
    from lrsearch.run.fine_tune import FineTuneFit, fine_tune
    from lrsearch.run.quick import OneCycleFit, fit_one_cycle
    from lrsearch.study.final_fit import FinalFit
    from lrsearch.study.options import StudyOptions
    from lrsearch.study.results import TuneResult
    from lrsearch.study.tune import tune

# public name -> module that defines it
_LAZY = {
    "suggest": "lrsearch.rangetest.analysis",
    "LRSuggestion": "lrsearch.rangetest.analysis",
    "range_test": "lrsearch.rangetest.finder",
    "RangeTestResult": "lrsearch.rangetest.result",
    "sweep": "lrsearch.rangetest.sweeps",
    "SweepResult": "lrsearch.rangetest.sweeps",
    "ScheduleSpec": "lrsearch.export.spec",
    "load_schedule": "lrsearch.export.spec",
    "tune": "lrsearch.study.tune",
    "TuneResult": "lrsearch.study.results",
    "auto": "lrsearch.run.auto",
    "AutoResult": "lrsearch.run.auto",
    "FinalFit": "lrsearch.study.final_fit",
    "StudyOptions": "lrsearch.study.options",
    "fit_one_cycle": "lrsearch.run.quick",
    "OneCycleFit": "lrsearch.run.quick",
    "fine_tune": "lrsearch.run.fine_tune",
    "FineTuneFit": "lrsearch.run.fine_tune",
}
_SUBMODULES = {"schedules": "lrsearch.schedules", "optimizers": "lrsearch.optimizers",
               "analysis": "lrsearch.rangetest.analysis"}

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
        return importlib.import_module(_SUBMODULES[name])
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
    return target in ("lrsearch", "lrsearch.__main__", "lrsearch.cli", "lrsearch.cli.__main__", "lrsearch.cli.main")


if not _command_line_import():
    from lrsearch import optimizers, schedules  # noqa: E402,F401  (registers them with keras.saving)
