"""`lrsearch.auto`: range test -> sweeps -> study -> schedule.json -> report.html.

The defaults are sized for a laptop CPU: a 160-step range test from 1e-6 to 10, three
values per sweep, 20 trials of 10 epochs (as `tune`), median pruning. The stages
themselves are `lrsearch.run.stages`; the sweeps test only the window where the first
curve said something (`sweep_window`), so they cost a fraction of the first test each.
With a budget, `lrsearch.run.budgeted` plans and charges every stage (the range test is then
the self-extending one unless `range_steps` is given, and a short budget races
(`lrsearch.run.racing`)). Everything is
written into `runs/<study>/` (or `out_dir`) as soon as it exists, so an interrupted run
loses nothing: rerunning the same command reuses the range test and sweeps found there
(when `lrsearch.run.evidence` finds them whole and made from the same model, data and
settings; otherwise they are redone, with a line saying why) and resumes the study.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrsearch.core.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_MAX_LR,
    DEFAULT_MIN_LR,
    DEFAULT_RANGE_STEPS,
    DEFAULT_TRIALS,
)
from lrsearch.core.errors import ConfigError, DataError
from lrsearch.core.fileio import writable_folder
from lrsearch.run.stages import log_bounds, range_test_stage, study_stage, sweep_stage, sweep_window
from lrsearch.study.options import StudyOptions

__all__ = [
    "AutoResult",
    "auto",
    "run_tune",
    "asked_for",
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
        budget: with `budget=`, a `lrsearch.run.budgeted.BudgetReport`: planned against spent.
        final: with `final_epochs=`, the `lrsearch.study.final_fit.FinalFit`.
    """

    out_dir: Path
    paths: dict[str, Path]
    range_test: Any
    sweeps: dict[str, Any] = field(default_factory=dict)
    tune: Any = None
    budget: Any = None
    final: Any = None

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
    batch_size: int = DEFAULT_BATCH_SIZE,
    metric: str | None = None,
) -> Any:
    """A checked `ModelSource` from a model file path, a compiled model, or a `build_model`.

    For a model object or a builder, `data` is `(train, validation)` or a data file path.
    The data is checked against one model once (`lrsearch.study.preflight.check_data_fits`,
    with `metric` when given); a `ModelSource` is taken as already checked.
    """
    from lrsearch.data.files import load_data_file
    from lrsearch.run.modelfile import (
        ModelSource,
        load_model_file,
        make_builder,
        source_from_model,
    )
    from lrsearch.study.preflight import check_data_fits

    if isinstance(model_or_path, ModelSource):
        return model_or_path
    if isinstance(model_or_path, (str, Path)):
        return load_model_file(
            model_or_path, data=data, target=target, unsafe=unsafe, val_split=val_split, seed=seed,
            batch_size=batch_size, metric=metric,
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
    check_data_fits(model, source.train, source.validation, batch_size=batch_size, metric=metric)
    return source


def asked_for(options: StudyOptions, keywords: Mapping[str, Any]) -> dict[str, int]:
    """The `trials` and `epochs` the user set explicitly: given as keywords (the command
    line hands `auto` exactly the flags typed), or away from `StudyOptions`' defaults."""
    defaults = StudyOptions()
    return {name: getattr(options, name) for name in ("trials", "epochs")
            if name in keywords or getattr(options, name) != getattr(defaults, name)}


def _race(books: Any, range_test: Any, keep_optimizer: bool) -> Callable[[int], Any]:
    """The designed first rung of a short budget's race (`lrsearch.run.racing`), kept on `books`."""
    def points(n: int) -> Any:
        from lrsearch.run.racing import design_race

        books.design = design_race(range_test, keep_optimizer=keep_optimizer)
        books.points = books.design.points(n)
        return books.points

    return points


def _after_race(books: Any, tuned: Any, run_study: Callable[..., Any], options: StudyOptions) -> Any:
    """Probes past the race's edge (charged from the final fit), then its winner told."""
    from lrsearch.run.racing import probe_edges, tell_winner

    plan = books.study_plan
    probe = dataclasses.replace(options, epochs=plan.epochs, trials=1)
    tuned, ran = probe_edges(tuned, books.points, run_study, probe, epochs_left=int(books.final_epochs or 0))
    if ran:
        books.charge_probes(tuned, ran)
    tell_winner(tuned, books.design, options.metric, options.direction)
    return tuned


def _paths(out: Path, names: Sequence[str]) -> dict[str, Path]:
    return {name: out / name for name in names if (out / name).exists()}


def _prepare(model_or_path: Any, data: Any, options: StudyOptions, *, target: str | None, unsafe: bool,
             val_split: float) -> tuple[Any, Path]:
    """The checked model source and the run folder (made)."""
    if options.storage is not None:
        from lrsearch.study.storage import open_storage

        open_storage(options.storage, heartbeat_interval=None)  # an unknown URL fails before any training
    source = resolve_source(model_or_path, data, target=target, unsafe=unsafe, val_split=val_split,
                            seed=options.seed or 0, batch_size=options.array_batch_size,
                            metric=options.metric)
    out = Path(options.out_dir) if options.out_dir else Path("runs") / (options.study_name or source.name)
    writable_folder(out)  # a file, a read-only folder or a name too long: said before any training
    return source, out


def _start_over(source: Any, out: Path, options: StudyOptions) -> None:
    """`reuse=False` (--fresh): the study of this name is deleted from its storage and its
    tables from `out`, so that nothing of an earlier run is resumed."""
    from lrsearch.study.storage import default_storage_url, delete_study, storage_url

    name = options.study_name or source.name
    if options.backend == "optuna":
        storage = options.storage or default_storage_url(out)
        deleted = delete_study(storage, name)
        if deleted is not None:
            logger.info("--fresh: deleted study %r (%d trials) from %s", name, deleted, storage_url(storage))
    for table in ("trials.csv", "history.csv", "schedule.json"):
        (out / table).unlink(missing_ok=True)


def run_tune(
    model_or_path: Any,
    data: Any = None,
    *,
    curve: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    options: StudyOptions | None = None,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    verbose: int = 1,
    on_stage: Callable[[str], None] | None = None,
    **study_options: Any,
) -> tuple[Any, Path]:
    """A study inside bounds from `bounds`, a range-test CSV, or a fresh range test.

    Takes the options of `auto` but no sweeps and no report. A study of this name is
    resumed under `auto`'s rule: only while made from the same model and data
    (`lrsearch.run.evidence.study_name`), else the trials go to a study beside it.

    Returns:
        `(TuneResult, out_dir)`; the tables and `schedule.json` are written there.
    """
    if options is None:
        study_options.setdefault("seed", 0)
    options = StudyOptions.from_kwargs(options, **study_options)
    if curve is not None and bounds is not None:
        raise ConfigError("give either a range-test CSV or bounds, not both")
    if curve is not None and not Path(curve).is_file():
        raise DataError(f"range-test file {curve} does not exist; check --range-test")
    source, out = _prepare(model_or_path, data, options, target=target, unsafe=unsafe, val_split=val_split)
    from lrsearch.run.evidence import source_fingerprint, study_options as resumable_options

    # as auto: a stored study made from another model or data is left be, the run goes on beside it
    options = resumable_options(out, options, source.name, source_fingerprint(source, options, data=data))
    suggestion = None
    if curve is not None:
        from lrsearch.run.evidence import curve_suggestion

        suggestion = curve_suggestion(curve)  # an unreadable curve is refused, as range_test refuses it
    elif bounds is None:
        suggestion = range_test_stage(source, out, options, reuse=False, verbose=verbose).suggestion
    if suggestion is not None:
        log_bounds(suggestion)
    result = study_stage(source, out, options, suggestion=suggestion, bounds=bounds, verbose=verbose,
                    on_stage=on_stage)
    return result, out


def auto(
    model_or_path: Any,
    data: Any = None,
    *,
    options: StudyOptions | None = None,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    sweeps: bool = True,
    momentum_values: Sequence[float] = MOMENTUM_VALUES,
    weight_decay_values: Sequence[float] = WEIGHT_DECAY_VALUES,
    reuse: bool = True,
    report: bool = True,
    verbose: int = 1,
    on_stage: Callable[[str], None] | None = None,
    budget: Any = None,
    final_epochs: int | None = None,
    keep_optimizer: bool = False,
    **study_options: Any,
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
        options: a `StudyOptions` (built once, e.g. by the command line); the study
            options given as keywords replace its fields: `epochs`, `trials` (defaults
            10 and 20), `storage`, `study_name`, `out_dir` (default `runs/<study_name>`,
            with the study in `sqlite:///<out_dir>/study.db`; the name defaults to the
            model file's), `backend`, `families`, `metric`, `pruner`, `seed` (default
            0), `batch_size`, and the range test's `min_lr`, `max_lr`, `range_steps`, `mode`.
        target, unsafe, val_split: how a model file and a data file are read.
        sweeps: run the momentum and weight-decay sweeps (values given by
            `momentum_values`, `weight_decay_values`).
        reuse: take the range test and sweeps already in `out_dir` instead of redoing
            them, so a rerun resumes where the last one stopped; only those made from
            the same model, data and settings, and whole (`lrsearch.run.evidence`).
            `False` starts over: the study of this name is deleted from its storage
            (Optuna backend) and everything is redone.
        report: write `report.html`.
        verbose: 0 silent, 1 stage messages (logging), 2 also progress bars.
        on_stage: called with a sentence saying what is kept if the run stops now.
        budget: epochs (a number, or `"48"`) or seconds (`"600s"`) for everything: the
            range test and sweeps (a test of N batches costs N / steps per epoch), the
            trials (`epochs` and `trials` are planned to fit; sweeps shrink or are skipped
            past a tenth of it) and the final fit. The plan is logged before the start,
            the spend at the end; see `lrsearch.study.budget` and `lrsearch.run.budgeted`.
            `trials` / `epochs` asked for explicitly (as keywords, or in `options` away
            from their defaults) that the plan replaces are told in a warning.
        final_epochs: train the chosen schedule at this length and save the model
            (`final_model.keras`, `final_schedule.json`, `final_history.csv`); 0 for
            none. With a budget, `None` leaves it to the planner: none when four trials
            of `epochs` fit, else a race of short trials and a final fit of the winner
            over most of the budget (`lrsearch.study.budget`).
        keep_optimizer: a short budget's race holds a portfolio by default: a
            Schedule-Free twin of the user's optimizer and a WSD schedule beside one-cycle
            (`lrsearch.run.racing`); when the twin wins, it is exported and said in a
            warning. `True` races the user's optimizer only.

    Returns:
        An `AutoResult` with the paths written and the `TuneResult`.

    Raises:
        ModelFileError, DataError, DivergenceError, ConfigError, StorageError: a problem
            with the inputs, raised before any long computation where possible.
    """
    if options is None:
        study_options.setdefault("seed", 0)
    options = StudyOptions.from_kwargs(options, **study_options)
    asked = asked_for(options, study_options)
    stage = on_stage or (lambda hint: None)
    source, out = _prepare(model_or_path, data, options, target=target, unsafe=unsafe, val_split=val_split)
    logger.info("run folder %s", out)

    from lrsearch.run.evidence import source_fingerprint, study_options as resumable_options

    base = source_fingerprint(source, options, data=data)  # what the evidence in `out` must match
    options = resumable_options(out, options, source.name, base, reuse=reuse)  # a study of another model is left be
    if not reuse:
        _start_over(source, out, options)
    books = None
    if budget is not None:
        from lrsearch.run.budgeted import open_books
        from lrsearch.study.budget import Budget

        if (Budget.parse(budget).unit == "epochs" and "range_steps" not in study_options
                and options.range_steps == DEFAULT_RANGE_STEPS):  # not asked: the test extends itself
            options = dataclasses.replace(options, range_steps=None)

        wanted = {"momentum": len(momentum_values), "weight_decay": len(weight_decay_values)} if sweeps else {}
        books = open_books(budget, source, out, options, sweep_values=wanted, final_epochs=final_epochs,
                           asked=asked)
        logger.info("%s", books.start())

    stage("the range test was running, nothing else is recorded yet")
    csv = out / "range_test.csv"
    before, began = (csv.stat().st_mtime_ns if csv.exists() else None), time.monotonic()
    result = range_test_stage(source, out, options, reuse=reuse, verbose=verbose, fingerprint=base,
                              step_budget=books.range_step_budget if books else None)
    if books:
        fresh = before is None or csv.stat().st_mtime_ns != before
        rounds = result.meta.get("rounds") or ()  # a self-extending test is charged every round
        steps = sum(int(r.get("recorded", r["steps"])) for r in rounds) if books.extending and rounds else None
        books.charge_range_test(steps or len(result.frame), time.monotonic() - began if fresh else None)
    suggestion = result.suggestion
    log_bounds(suggestion)

    found: dict[str, Any] = {}
    if sweeps:
        window = sweep_window(result, mode=options.mode)
        chosen = ("momentum", "weight_decay")
        if books:
            planned = books.plan_sweeps(window["steps"])
            window["steps"], chosen = planned.sweep_steps, tuple(p for p, _ in planned.sweeps)
        if chosen:
            logger.info("sweep window: %.3g to %.3g over %d steps", window["min_lr"], window["max_lr"],
                        window["steps"])
        kwargs = dict(**window, mode=options.mode, batch_size=options.array_batch_size, verbose=0)
        for param, values in (("momentum", momentum_values), ("weight_decay", weight_decay_values)):
            if param not in chosen:
                continue
            stage(f"the range test is kept in {out}; the {param} sweep was running")
            swept = sweep_stage(source, out, param, values, reuse=reuse, seed=options.seed, fingerprint=base,
                           **kwargs)
            if swept is not None:
                found[param] = swept
                if books:
                    books.charge_sweep(len(swept.frame))

    def run_study(opts: StudyOptions, **extra: Any) -> Any:
        return study_stage(source, out, opts, suggestion=suggestion, sweeps=found, verbose=verbose, on_stage=stage,
                           **extra)

    if books:
        tuned = books.run_study(run_study, race_points=_race(books, result, keep_optimizer))
    else:
        tuned = run_study(options)
    final = None
    if books is not None:
        if books.race and books.design is not None:
            tuned = _after_race(books, tuned, run_study, options)
        final_epochs = books.final_epochs_in_time(tuned)  # the planner's, when left to it
    if final_epochs:
        from lrsearch.study.final_fit import final_fit_of

        stage(f"the study is kept in {out}; the final fit was running")
        final = final_fit_of(source, tuned, epochs=int(final_epochs), out_dir=out,
                             study_name=options.study_name or source.name, seed=options.seed,
                             batch_size=options.batch_size, steps_per_epoch=options.steps_per_epoch)
    spent = books.finish(final.epochs if final else 0) if books else None
    if spent is not None:
        from lrsearch.core.fileio import write_text

        write_text(out / "budget.json", json.dumps(spent.to_dict(), indent=2))
    if report:
        import optuna

        from lrsearch.run.report import write_report

        stage(f"everything but report.html is written to {out}; run 'lrsearch report {out}'")
        # the KerasTuner backend's study is a tuner: the report reads its tables instead
        study = tuned.study if isinstance(tuned.study, optuna.study.Study) else None
        write_report(out, study=study)
    names = ["range_test.csv", "range_test.png", "sweep_momentum.csv", "sweep_momentum.png",
             "sweep_weight_decay.csv", "sweep_weight_decay.png", "trials.csv", "history.csv", "study.db",
             "schedule.json", "report.html", "budget.json", "final_model.keras", "final_schedule.json",
             "final_history.csv"]
    return AutoResult(out_dir=out, paths=_paths(out, names), range_test=result, sweeps=found, tune=tuned,
                      budget=spent, final=final)
