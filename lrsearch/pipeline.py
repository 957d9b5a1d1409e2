"""`lrsearch.auto`: range test -> sweeps -> study -> schedule.json -> report.html.

The defaults are sized for a laptop CPU: a 160-step range test from 1e-6 to 10, three
values per sweep, 20 trials of 10 epochs (as `tune`), median pruning. The sweeps test
only the window where the first curve said something (`sweep_window`), at its density
of steps per decade, so they cost a fraction of the first test each. Everything is
written into `runs/<study>/` (or `out_dir`) as soon as it exists, so an interrupted run
loses nothing: rerunning the same command reuses the range test and sweeps found there
and resumes the study.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrsearch.errors import ConfigError, DataError

__all__ = [
    "AutoResult",
    "auto",
    "run_tune",
    "resolve_source",
    "DEFAULT_EPOCHS",
    "DEFAULT_TRIALS",
    "DEFAULT_RANGE_STEPS",
    "DEFAULT_MIN_LR",
    "DEFAULT_MAX_LR",
    "MOMENTUM_VALUES",
    "WEIGHT_DECAY_VALUES",
]

logger = logging.getLogger(__name__)

DEFAULT_EPOCHS = 10
DEFAULT_TRIALS = 20
DEFAULT_RANGE_STEPS = 160
DEFAULT_MIN_LR = 1e-6
DEFAULT_MAX_LR = 10.0
MOMENTUM_VALUES = (0.95, 0.9, 0.85)
WEIGHT_DECAY_VALUES = (0.0, 1e-4, 1e-3)


@dataclass(frozen=True)
class AutoResult:
    """What `auto` found and wrote.

    Attributes:
        out_dir: the run folder.
        paths: name -> path of every file written (`range_test.csv`, `schedule.json`,
            `report.html`, ...).
        range_test: the `RangeTestResult` whose bounds the study searched inside.
        sweeps: `"momentum"` / `"weight_decay"` -> `SweepResult`.
        tune: the `TuneResult` of the study.
        schedule: the chosen `ScheduleSpec` (`tune.best`).
    """

    out_dir: Path
    paths: dict[str, Path]
    range_test: Any
    sweeps: dict[str, Any] = field(default_factory=dict)
    tune: Any = None

    @property
    def schedule(self) -> Any:
        return None if self.tune is None else self.tune.best

    @property
    def suggestion(self) -> Any:
        return self.range_test.suggestion


def resolve_source(
    model_or_path: Any,
    data: Any = None,
    *,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    seed: int = 0,
    batch_size: int = 32,
) -> Any:
    """A `ModelSource` from a model file path, a compiled model, or a `build_model`.

    For a model object or a builder, `data` is `(train, validation)` or a data file path.
    """
    from lrsearch.modelfile import (
        ModelSource,
        check_data_fits,
        load_data_file,
        load_model_file,
        make_builder,
        source_from_model,
    )

    if isinstance(model_or_path, ModelSource):
        return model_or_path
    if isinstance(model_or_path, (str, Path)):
        return load_model_file(
            model_or_path, data=data, target=target, unsafe=unsafe, val_split=val_split, seed=seed,
            batch_size=batch_size,
        )
    if data is None:
        raise DataError("pass data=(train, validation) (or a data file) with a model or a build_model function")
    name = getattr(model_or_path, "name", None) or getattr(model_or_path, "__name__", "model")
    build = make_builder(model_or_path)
    model = build()
    if isinstance(data, (str, Path)):
        train, validation = load_data_file(data, target=target, model=model, val_split=val_split, seed=seed)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        train, validation = data
    else:
        raise DataError("data must be (train, validation), each (x, y) arrays or a batched dataset")
    source = source_from_model(build, train, validation, name=str(name))
    check_data_fits(model, source.train, source.validation, batch_size=batch_size)
    return source


def _paths(out: Path, names: Sequence[str]) -> dict[str, Path]:
    return {name: out / name for name in names if (out / name).exists()}


def _range_test(source: Any, out: Path, *, reuse: bool, min_lr: float, max_lr: float, steps: int | None,
                mode: str, batch_size: int, verbose: int) -> Any:
    from lrsearch.finder import RangeTestResult, range_test
    from lrsearch.report import save_figure

    csv = out / "range_test.csv"
    if reuse and csv.exists():
        logger.info("reusing the range test in %s", csv)
        return RangeTestResult.load(csv)
    logger.info("range test: %g to %g over %s steps", min_lr, max_lr, steps or "default")
    result = range_test(
        source.build_model(), source.train, min_lr=min_lr, max_lr=max_lr, steps=steps, mode=mode,
        batch_size=batch_size, verbose=int(verbose > 1),
    )
    result.save(csv)
    save_figure(result.plot(), out / "range_test.png")
    return result


def sweep_window(result: Any, *, mode: str = "exp", min_steps: int = 30) -> dict[str, Any]:
    """Range-test settings for the sweeps: from `base_lr / 10` to `10 * min_loss_lr`
    (inside the first test's range), at the first test's steps per decade.

    The curves of different momenta or weight decays differ only around the descent and
    the divergence; the decades below `base_lr` are flat for all of them. A linear sweep
    keeps the first test's settings.
    """
    lr = result.frame["lr"].to_numpy()
    lo_all, hi_all = float(result.meta.get("min_lr", lr.min())), float(result.meta.get("max_lr", lr.max()))
    steps_all = int(result.meta.get("steps", len(lr)))
    if mode != "exp" or steps_all < 2:
        return {"min_lr": lo_all, "max_lr": hi_all, "steps": steps_all}
    s = result.suggestion
    lo, hi = max(lo_all, s.base_lr / 10), min(hi_all, s.min_loss_lr * 10)
    density = (steps_all - 1) / math.log10(hi_all / lo_all)
    steps = max(min_steps, int(math.ceil(density * math.log10(hi / lo))) + 1)
    return {"min_lr": lo, "max_lr": hi, "steps": min(steps, steps_all)}


def _sweep(source: Any, out: Path, param: str, values: Sequence[float], *, reuse: bool, **kwargs: Any) -> Any:
    from lrsearch.report import SWEEP_FILES, save_figure
    from lrsearch.sweeps import SweepResult, sweep

    csv = out / SWEEP_FILES[param]
    if reuse and csv.exists():
        logger.info("reusing the %s sweep in %s", param, csv)
        return SweepResult.load(csv)
    logger.info("%s sweep over %s", param.replace("_", "-"), ", ".join(f"{v:g}" for v in values))
    try:
        result = sweep(source.build_model, source.train, param=param, values=tuple(values), **kwargs)
    except ConfigError as exc:  # e.g. an optimizer without momentum: the study does without
        logger.warning("skipping the %s sweep: %s", param, exc)
        return None
    result.save(csv)
    save_figure(result.plot(), csv.with_suffix(".png"))
    return result


def _suggestion_from_bounds(base_lr: float, max_lr: float) -> Any:
    from lrsearch.analysis import LRSuggestion

    if not 0 < base_lr < max_lr:
        raise ConfigError(f"bounds must satisfy 0 < BASE_LR < MAX_LR; got {base_lr:g} and {max_lr:g}")
    middle = (base_lr * max_lr) ** 0.5
    return LRSuggestion(base_lr=base_lr, max_lr=max_lr, steepest_lr=middle, valley_lr=middle,
                        min_loss_lr=max_lr, warnings=("bounds given by hand, not measured",))


def _study(
    source: Any, out: Path, suggestion: Any, sweeps: dict[str, Any], *, epochs: int | None, trials: int | None,
    storage: str | None, study_name: str, backend: str, families: Sequence[str], metric: str,
    pruner: str | None, seed: int | None, batch_size: int | None, verbose: int,
    on_stage: Callable[[str], None] | None,
) -> Any:
    from lrsearch.storage import default_storage_url, storage_url
    from lrsearch.study import tune

    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    trials = DEFAULT_TRIALS if trials is None else trials
    if epochs <= 0 or trials <= 0:
        raise ConfigError(f"epochs and trials must be at least 1; got epochs={epochs}, trials={trials}")
    storage = storage or default_storage_url(out)
    if on_stage:
        on_stage(
            f"finished trials are kept in {storage_url(storage)} (study {study_name!r}); "
            "run the same command again to resume"
        )
    logger.info("study %r: %d trials of %d epochs, %s", study_name, trials, epochs, backend)
    # tune writes trials.csv, history.csv and schedule.json into `out` (also when
    # interrupted: the finished trials stay in the storage and in the tables)
    return tune(
        source.build_model, source.train, validation_data=source.validation, suggestion=suggestion,
        families=tuple(families), epochs=epochs, trials=trials, batch_size=batch_size, metric=metric,
        storage=storage, study_name=study_name, out_dir=out, pruner=pruner or "none", seed=seed,
        backend=backend, sweeps=dict(sweeps) or None, verbose=int(verbose > 1),
    )


def run_tune(
    model_or_path: Any,
    data: Any = None,
    *,
    curve: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    epochs: int | None = None,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path | None = None,
    backend: str = "optuna",
    families: Sequence[str] = ("one_cycle", "cyclic"),
    metric: str = "val_loss",
    pruner: str | None = "median",
    seed: int | None = 0,
    batch_size: int = 32,
    min_lr: float = DEFAULT_MIN_LR,
    max_lr: float = DEFAULT_MAX_LR,
    range_steps: int | None = DEFAULT_RANGE_STEPS,
    mode: str = "exp",
    verbose: int = 1,
    on_stage: Callable[[str], None] | None = None,
) -> tuple[Any, Path]:
    """A study inside bounds from `bounds`, a range-test CSV, or a fresh range test.

    Returns:
        `(TuneResult, out_dir)`; the tables and `schedule.json` are written there.
    """
    from lrsearch.finder import RangeTestResult

    source = resolve_source(model_or_path, data, target=target, unsafe=unsafe, val_split=val_split, seed=seed or 0,
                            batch_size=batch_size)
    name = study_name or source.name
    out = Path(out_dir) if out_dir else Path("runs") / name
    out.mkdir(parents=True, exist_ok=True)
    if bounds is not None:
        suggestion = _suggestion_from_bounds(*bounds)
    elif curve is not None:
        if not Path(curve).is_file():
            raise DataError(f"range-test file {curve} does not exist; check --range-test")
        suggestion = RangeTestResult.load(curve).suggestion
    else:
        suggestion = _range_test(source, out, reuse=False, min_lr=min_lr, max_lr=max_lr, steps=range_steps,
                                 mode=mode, batch_size=batch_size, verbose=verbose).suggestion
    result = _study(source, out, suggestion, {}, epochs=epochs, trials=trials, storage=storage, study_name=name,
                    backend=backend, families=families, metric=metric, pruner=pruner, seed=seed,
                    batch_size=batch_size, verbose=verbose, on_stage=on_stage)
    return result, out


def auto(
    model_or_path: Any,
    data: Any = None,
    *,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    epochs: int | None = None,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path | None = None,
    backend: str = "optuna",
    families: Sequence[str] = ("one_cycle", "cyclic"),
    metric: str = "val_loss",
    pruner: str | None = "median",
    seed: int | None = 0,
    batch_size: int = 32,
    min_lr: float = DEFAULT_MIN_LR,
    max_lr: float = DEFAULT_MAX_LR,
    range_steps: int | None = DEFAULT_RANGE_STEPS,
    mode: str = "exp",
    sweeps: bool = True,
    momentum_values: Sequence[float] = MOMENTUM_VALUES,
    weight_decay_values: Sequence[float] = WEIGHT_DECAY_VALUES,
    reuse: bool = True,
    report: bool = True,
    verbose: int = 1,
    on_stage: Callable[[str], None] | None = None,
) -> AutoResult:
    """Run the whole search on one model and write everything into one folder.

    Range test -> bounds -> momentum and weight-decay sweeps (range tests per value) ->
    a study of one-cycle / cyclical schedules inside the bounds -> `trials.csv`,
    `history.csv`, `schedule.json` -> `report.html`.

    Example:

    ```python
    result = lrsearch.auto("studies/digits/model.py", out_dir="runs/digits")
    optimizer = result.schedule.build_optimizer()
    ```

    Args:
        model_or_path: a model file (`.py` with `build_model()`/`load_data()`, or a
            `.keras` model with `data`), a compiled `keras.Model` (trials fine-tune copies
            of it) or a `build_model` function.
        data: a data file (`.npz`, CSV with `target`, image folder) or
            `(train, validation)`; needed unless the model file has `load_data()`.
        epochs, trials: per-trial epochs (default 10) and trials this run adds (default 20).
        storage, study_name, out_dir: where the study lives (default
            `sqlite:///<out_dir>/study.db`), its name (default: the model file's name) and
            the run folder (default `runs/<study_name>`).
        backend, families, metric, pruner, seed, batch_size: passed to `tune`.
        min_lr, max_lr, range_steps, mode: the range test.
        sweeps: run the momentum and weight-decay sweeps (values given by
            `momentum_values`, `weight_decay_values`).
        reuse: take the range test and sweeps already in `out_dir` instead of redoing
            them, so a rerun resumes where the last one stopped.
        report: write `report.html`.
        verbose: 0 silent, 1 stage messages (logging), 2 also progress bars.
        on_stage: called with a sentence saying what is kept if the run stops now.

    Returns:
        An `AutoResult` with the paths written and the `TuneResult`.

    Raises:
        ModelFileError, DataError, DivergenceError, ConfigError, StorageError: a problem
            with the inputs, raised before any long computation where possible.
    """
    if min_lr >= max_lr:
        raise ConfigError(f"min_lr must be below max_lr; got min_lr={min_lr:g}, max_lr={max_lr:g}")
    for label, value in (("epochs", epochs), ("trials", trials)):
        if value is not None and value <= 0:
            raise ConfigError(f"{label} must be at least 1; got {label}={value}")
    if storage is not None:
        from lrsearch.storage import open_storage

        open_storage(storage, heartbeat_interval=None)  # an unknown URL fails before any training
    stage = on_stage or (lambda hint: None)
    source = resolve_source(model_or_path, data, target=target, unsafe=unsafe, val_split=val_split, seed=seed or 0,
                            batch_size=batch_size)
    name = study_name or source.name
    out = Path(out_dir) if out_dir else Path("runs") / name
    out.mkdir(parents=True, exist_ok=True)
    logger.info("run folder %s", out)

    stage("nothing recorded yet (the range test was running)")
    result = _range_test(source, out, reuse=reuse, min_lr=min_lr, max_lr=max_lr, steps=range_steps, mode=mode,
                         batch_size=batch_size, verbose=verbose)
    suggestion = result.suggestion
    logger.info("bounds: base_lr %.3g, max_lr %.3g", suggestion.base_lr, suggestion.max_lr)
    for warning in suggestion.warnings:
        logger.warning("range test: %s", warning)

    found: dict[str, Any] = {}
    if sweeps:
        window = sweep_window(result, mode=mode)
        logger.info("sweep window: %.3g to %.3g over %d steps", window["min_lr"], window["max_lr"], window["steps"])
        kwargs = dict(**window, mode=mode, batch_size=batch_size, verbose=0)
        for param, values in (("momentum", momentum_values), ("weight_decay", weight_decay_values)):
            stage(f"the range test is kept in {out}; the {param} sweep was running")
            swept = _sweep(source, out, param, values, reuse=reuse, **kwargs)
            if swept is not None:
                found[param] = swept

    tuned = _study(source, out, suggestion, found, epochs=epochs, trials=trials, storage=storage,
                   study_name=name, backend=backend, families=families, metric=metric, pruner=pruner,
                   seed=seed, batch_size=batch_size, verbose=verbose, on_stage=stage)
    if report:
        from lrsearch.report import write_report

        stage(f"everything but report.html is written to {out}; run 'lrsearch report {out}'")
        write_report(out, study=tuned.study)
    names = ["range_test.csv", "range_test.png", "sweep_momentum.csv", "sweep_momentum.png",
             "sweep_weight_decay.csv", "sweep_weight_decay.png", "trials.csv", "history.csv", "study.db",
             "schedule.json", "report.html"]
    return AutoResult(out_dir=out, paths=_paths(out, names), range_test=result, sweeps=found, tune=tuned)
