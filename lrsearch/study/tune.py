"""`tune`: a study of schedules inside learning-rate bounds, run by Optuna or KerasTuner.

`tune` checks its arguments once (`StudyOptions`), prepares the data once
(`lrsearch.data.fit_data.prepare_data`), runs the pre-flight check (`lrsearch.study.preflight`), finds
or reuses the bounds, and hands a `Plan` to a backend (`lrsearch.study.backends.optuna_study`,
`lrsearch.study.backends.kerastuner_study`). Each trial is the same whichever backend runs it
(`lrsearch.study.trial`); the tables and the chosen schedule come from `lrsearch.study.results`.
The study's records live in its storage, so `load_result` rebuilds everything from the
storage alone, in another process or on another machine.

Example:

    result = lrsearch.tune(build_model, (x, y), validation_data=(xv, yv),
                           epochs=10, trials=20, study_name="digits")
    result = lrsearch.tune(build_model, (x, y), validation_data=(xv, yv),
                           bounds=(1e-3, 1e-1))      # bounds known from elsewhere
    result.trials            # one row per trial
    result.history           # one row per trial and epoch
    result.best.save("schedule.json")
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from lrsearch import optimizers as lr_optimizers
from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.rangetest.steppers.dispatch import check_distribution
from lrsearch.data.fit_data import FitData, prepare_data
from lrsearch.study.digests import architecture_fingerprint, data_fingerprint
from lrsearch.core.errors import ConfigError, argument_error
from lrsearch.study.options import BACKENDS, PRUNERS, StudyOptions, infer_direction
from lrsearch.study.backends.optuna_study import OptunaObjective, make_pruner
from lrsearch.study.backends.optuna_study import run as run_optuna
from lrsearch.study.backends.optuna_study import stored_meta as optuna_stored_meta
from lrsearch.study.preflight import build_checked, check_data_fits
from lrsearch.study.results import TuneResult, load_result, result_from_study
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import group_ratios, groups, is_multi, map_patterns, reference_index, unmatched_warning
from lrsearch.optimizers.schedule_free_training import is_schedule_free
from lrsearch.study.space import SearchSpace
from lrsearch.study.storage import default_storage_url, open_storage, storage_url
from lrsearch.study.trial import (
    EpochRecorder,
    Plan,
    clear_keras_session,
    compile_kwargs,
    configure_model,
    final_value,
    smoothed_loss,
    trial_spec,
)

__all__ = [
    "BACKENDS",
    "PRUNERS",
    "EpochRecorder",
    "OptunaObjective",
    "Plan",
    "StudyOptions",
    "TuneResult",
    "clear_keras_session",
    "configure_model",
    "final_value",
    "infer_direction",
    "load_result",
    "make_pruner",
    "result_from_study",
    "smoothed_loss",
    "trial_spec",
    "tune",
]

logger = logging.getLogger(__name__)


def tune(
    build_model: Callable[[], keras.Model],
    data: Any,
    *,
    validation_data: Any,
    suggestion: LRSuggestion | None = None,
    bounds: tuple[float, float] | None = None,
    sweeps: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    momentum_candidates: Sequence[float] | None = None,
    weight_decay_candidates: Sequence[float] | None = None,
    range_test_kwargs: Mapping[str, Any] | None = None,
    options: StudyOptions | None = None,
    preflight: bool = True,
    verbose: int = 0,
    opening_points: Sequence[Mapping[str, Any]] | None = None,
    **study_options: Any,
) -> TuneResult:
    """Search one-cycle / cyclical schedules inside the range-test bounds.

    Each trial trains a model of `build_model()` (one shared model, reset between
    trials, where only schedules differ: see `reuse`), rebuilds its optimizer (the
    same class and settings, as an lrsearch optimizer; any other Keras class as itself, its
    momentum the model's constant) around the trial's rate, momentum
    and weight-decay schedules, trains `epochs` epochs and reports `metric` after each;
    unpromising trials are pruned, a NaN/inf loss fails the trial (the study goes on).
    The trial's value is `metric` at its last epoch (where the schedule ends), or the
    best value of an `EarlyStopping(restore_best_weights=True)` in `callbacks` that
    monitors `metric` (the weights the trial ends with). Schedules are sized in optimizer
    updates: batches per epoch, divided by k for an optimizer that accumulates gradients
    over k batches.

    Args:
        build_model: returns a fresh compiled `keras.Model` per call.
        data: training `(x, y)` arrays (batched with `batch_size`, default 32, shuffled
            each epoch), a batched `tf.data.Dataset` or a `keras.utils.PyDataset`.
        validation_data: the same kinds; needed for `val_*` metrics.
        suggestion: the bounds (`LRSuggestion`); `None` runs `range_test` on a fresh
            model first, or reuses the bounds stored with a study being resumed.
        bounds: `(low, high)` rates to search inside, instead of `suggestion` (recorded
            as given in the schedule's provenance).
        families: schedule families to search (default `"one_cycle"`, `"cyclic"`; also
            `"wsd"`, `"schedule_free"`: see `lrsearch.study.space.ALL_FAMILIES`).
        epochs: epochs per trial; one-cycle spans exactly these epochs.
        trials: trials THIS call runs (each worker of a shared study runs its own);
            see `max_trials` for a cap on the whole study.
        metric: a name Keras logs (`val_loss`, `val_accuracy`, `loss`, ...).
        direction: `"minimize"` / `"maximize"`; inferred from `metric` when `None`.
        storage: an Optuna storage URL; `None` is `sqlite:///<out_dir>/study.db`.
            (The KerasTuner backend keeps its trials in `out_dir` and ignores it.)
        study_name: the same name in the same storage resumes the study; `None` makes
            `<model name>-<date>-<time>`.
        out_dir: where `trials.csv`, `history.csv`, `schedule.json` (and the default
            SQLite file) go; `None` is `runs/<study_name>`.
        pruner: `"median"` (default), `"hyperband"`, `"none"`/`None`, or an Optuna pruner.
        fidelity: `"truncate"` (default: trials of `epochs`, cut by the pruner) or
            `"schedule-halving"`: `trials` complete schedules at a fraction of `epochs`,
            the best `1/eta` promoted to longer complete schedules (`lrsearch.study.halving`).
        seed: seeds the sampler (offset by the number of trials already in the study,
            so a resumed study draws new points) and each trial's weights.
        reuse: `True` (default) trains the trials that differ only in schedules,
            momentum and weight decay on one shared model reset between trials, with
            one traced train step; they all start from the weights built under `seed`
            (`lrsearch.study.reuse`). `False` builds a fresh model per trial.
        backend: `"optuna"` or `"keras-tuner"` (same space, KerasTuner's Bayesian search;
            results in the same tables).
        sweeps: `SweepResult`s (one or a sequence, or `{param: result}`) whose
            candidates become `momentum_candidates` / `weight_decay_candidates`.
        callbacks: extra Keras callbacks for every trial's `fit` (the same instances
            each trial: a `ModelCheckpoint(save_best_only=True)` keeps the study's best
            model); not `ReduceLROnPlateau` or `LearningRateScheduler`.
        verbose: 0 silent; 1 a progress bar over trials.
        opening_points: the designed first rung of a new schedule-halving study (a race's
            bracket, `lrsearch.study.race.race_points`), in place of the suggested schedule;
            the peak range reaches their rates (`designed_opening`); kept as `opening`.
        options: a `StudyOptions`; the study options below, given as keywords, replace
            its fields (`tune(..., epochs=5)` is `tune(..., options=StudyOptions(epochs=5))`).
        preflight: evaluate one batch before any trial (`lrsearch.study.preflight`); `False`
            when the caller already checked this model and data, as `auto` does.
        momentum_candidates, weight_decay_candidates: candidate values directly.
        label_smoothing: also search a label smoothing in [0, 0.2] (crossentropy losses).
        max_trials: stop once the study holds this many finished (complete or pruned)
            trials, counting every worker's: a fleet of workers stops at N.
        timeout: stop starting trials after this many seconds.
        heartbeat_interval, grace_period: seconds; a trial whose worker stopped beating
            for `grace_period` is failed and retried once (see `lrsearch.study.storage`).
        range_test_kwargs: options for the range test run when `suggestion` is `None`.
        steps_per_epoch: batches per epoch of a `tf.data.Dataset` training set, which
            may then repeat forever; it is read on across epochs (repeated as needed), so
            every trial runs exactly `steps_per_epoch * epochs` batches.

    Returns:
        A `TuneResult`; its tables and `schedule.json` are also written to `out_dir`.

    Raises:
        ConfigError: invalid arguments (trials or epochs < 1, unknown family, backend or
            pruner, both `suggestion` and `bounds`, a metric the model does not produce, a callback that sets the rate,
            gradient accumulation over k batches with epochs not a multiple of k).
        DataError: data that cannot be used or does not fit the model.
        StorageError: a storage URL that cannot be opened.
    """
    opts = StudyOptions.from_kwargs(options, **study_options)
    if suggestion is not None and bounds is not None:
        raise ConfigError("give either suggestion= or bounds=, not both")
    if bounds is not None:
        bounds = _check_bounds(bounds)
    if opts.metric.startswith("val_") and validation_data is None:
        raise ConfigError(f"metric {opts.metric!r} needs validation_data (or use metric='loss')")
    for cb in callbacks or ():
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau | keras.callbacks.LearningRateScheduler):
            raise ConfigError(
                f"callback {type(cb).__name__} sets the learning rate, which each trial's "
                "schedule sets; leave it out of tune's callbacks"
            )
    tf = sys.modules.get("tensorflow")  # a tf.distribute scope means TensorFlow is imported
    if keras.backend.backend() != "tensorflow" and tf is not None and tf.distribute.has_strategy():
        raise ConfigError(
            f"tf.distribute strategies need KERAS_BACKEND=tensorflow (current: {keras.backend.backend()}); "
            "call tune outside strategy.scope() on this backend"
        )
    check_distribution()

    fit_data = prepare_data(data, validation_data, opts.batch_size, opts.steps_per_epoch)
    probe_model = build_checked(build_model)
    if opts.label_smoothing:
        smoothed_loss(compile_kwargs(probe_model).get("loss"), 0.1)
    if preflight:
        check_data_fits(probe_model, fit_data.probe, fit_data.validation, metric=opts.metric,
                        batch_size=opts.array_batch_size)
    study_name = opts.study_name or f"{probe_model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(opts.out_dir) if opts.out_dir is not None else Path("runs") / study_name
    storage = opts.storage
    if opts.backend == "keras-tuner":
        from lrsearch.study.backends import kerastuner_study as kt_backend

        if storage is not None:
            logger.warning("backend='keras-tuner' keeps its trials in %s; storage %s is not used",
                           kt_backend.project_dir(out, study_name), storage_url(storage))
            storage = None
        opened = None
        stored = kt_backend.stored_meta(out, study_name)
    else:
        if storage is None:
            storage = default_storage_url(out)
        opened = open_storage(storage, heartbeat_interval=opts.heartbeat_interval,
                              grace_period=opts.grace_period)
        stored = optuna_stored_meta(opened, study_name)
    made_from = {"architecture": architecture_fingerprint(probe_model),
                 "data": data_fingerprint((data, validation_data))}  # a resumed study must be of the same
    if stored:
        _check_made_from(study_name, stored.get("made_from"), made_from)

    updates = updates_per_epoch(probe_model.optimizer, fit_data.steps_per_epoch)
    lr_optimizers.warn_keras_schedule_free(probe_model.optimizer)  # its trials train lrsearch's class
    if stored.get("space"):
        space = SearchSpace.from_dict(stored["space"])
        given = bounds or (suggestion and (suggestion.base_lr, suggestion.max_lr))
        if given and tuple(given) != (space.base_lr, space.max_lr):
            logger.warning("study %s keeps its stored bounds [%g, %g]; the new ones are ignored",
                           study_name, space.base_lr, space.max_lr)
        if space.steps_per_epoch != updates or space.epochs != opts.epochs:
            raise ConfigError(
                f"study {study_name!r} was run with {space.epochs} epochs of "
                f"{space.steps_per_epoch} steps; resume it with the same data, batch size "
                "and epochs, or use a new study name"
            )
        meta = stored
    else:
        mom_c, wd_c = _candidates(sweeps, momentum_candidates, weight_decay_candidates)
        families = _families_for(probe_model.optimizer, opts.families)
        if families != opts.families:  # a Schedule-Free optimizer: its beta is sf_beta
            mom_c = None
        note = lr_optimizers.constant_momentum_note(probe_model.optimizer)
        if note:  # a momentum that cannot follow a schedule: no momentum dimensions, told once per study
            logger.info("%s", note)
            mom_c = None
        space_kwargs = dict(
            steps_per_epoch=updates, epochs=opts.epochs, families=families,
            momentum=has_momentum(probe_model.optimizer), momentum_candidates=mom_c,
            weight_decay_candidates=wd_c, label_smoothing=opts.label_smoothing,
            **_group_space(probe_model.optimizer),
        )
        if bounds is not None:
            space = SearchSpace(base_lr=bounds[0], max_lr=bounds[1], **space_kwargs)
        else:
            if suggestion is None:
                suggestion = _range_test(probe_model, data, fit_data, range_test_kwargs)
                for warning in suggestion.warnings:  # told once, here, by the caller
                    logger.warning("range test: %s", warning)
            space = SearchSpace.from_suggestion(suggestion, **space_kwargs)
        designed = None
        if opening_points:
            from lrsearch.study.race import designed_opening

            space, designed = designed_opening(space, opening_points)
        meta = {
            "metric": opts.metric,
            "direction": opts.direction,
            "space": space.to_dict(),
            "bounds": {"base_lr": bounds[0], "max_lr": bounds[1]} if bounds is not None else None,
            "suggestion": suggestion.to_dict() if hasattr(suggestion, "to_dict") else None,
            "backend": opts.backend,
            "storage": storage_url(storage) if storage is not None else None,
            "made_from": made_from,
            **({"opening": designed} if designed else {}),
        }
    if stored and (stored.get("metric"), stored.get("direction")) != (opts.metric, opts.direction):
        raise ConfigError(
            f"study {study_name!r} {stored.get('direction')}s {stored.get('metric')}: resume "
            "it with the same metric and direction, or use a new study name"
        )
    del probe_model
    clear_keras_session()

    plan = Plan(
        build_model=build_model, data=fit_data, space=space, metric=opts.metric,
        direction=opts.direction, epochs=int(opts.epochs), trials=int(opts.trials),
        study_name=study_name, out_dir=out, storage=opened, seed=opts.seed,
        callbacks=list(callbacks or []), verbose=verbose, meta=meta, pruner=opts.pruner,
        max_trials=opts.max_trials, timeout=opts.timeout, fidelity=opts.fidelity, eta=opts.eta,
        reuse=opts.reuse, opening=opts.opening,
    )
    if opts.backend == "keras-tuner":
        from lrsearch.study.backends import kerastuner_study as kt_backend

        return kt_backend.run(plan)
    if plan.fidelity == "schedule-halving":
        from lrsearch.study import halving

        return halving.run(plan)
    return run_optuna(plan)


def _check_made_from(study_name: str, recorded: Any, made_from: Mapping[str, str]) -> None:
    """Refuse to resume a study made from another model or data (its record: the digests of
    `lrsearch.study.digests`); one made before studies kept the record is resumed."""
    if not isinstance(recorded, Mapping):
        return
    changed = [what for key, what in (("architecture", "another model (layers, optimizer or loss)"),
                                      ("data", "other data")) if recorded.get(key) != made_from[key]]
    if changed:
        raise ConfigError(f"study {study_name!r} was made from {' and '.join(changed)}: its trials would mix with "
                          "this one's; use another study name, or delete that study to start over")


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise argument_error("bounds", "a pair (low, high) of rates", bounds) from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise argument_error("bounds", "(low, high) with 0 < low < high", bounds)
    return low, high


def _candidates(sweeps: Any, momentum: Any, weight_decay: Any) -> tuple[Any, Any]:
    found: dict[str, Any] = {}
    if sweeps is not None:
        items: list[tuple[str | None, Any]]
        if isinstance(sweeps, Mapping):
            items = list(sweeps.items())
        elif isinstance(sweeps, Sequence) and not isinstance(sweeps, str):
            items = [(None, s) for s in sweeps]
        else:
            items = [(None, sweeps)]
        for key, result in items:
            param = key or getattr(result, "param", None)
            if param not in ("momentum", "weight_decay"):
                raise ConfigError(
                    "sweeps must be SweepResults of param 'momentum' or 'weight_decay' "
                    "(or a dict {param: SweepResult})"
                )
            found[param] = tuple(float(v) for v in result.candidates)
    mom = tuple(momentum) if momentum is not None else found.get("momentum")
    wd = tuple(weight_decay) if weight_decay is not None else found.get("weight_decay")
    return mom, wd


def _families_for(optimizer: Any, families: tuple[str, ...]) -> tuple[str, ...]:
    """The families a study of this optimizer searches: a Schedule-Free optimizer trains
    at a constant rate (its averaging stands for the schedule, and its interpolation
    weight cannot follow one), so its study searches `schedule_free` only."""
    if not is_schedule_free(optimizer) or families == ("schedule_free",):
        return families
    logger.info("the model's optimizer is %s: the study searches the schedule_free family (its rate, "
                "warmup and interpolation weight) in place of %s", type(optimizer).__name__, ", ".join(families))
    return ("schedule_free",)


def _group_space(optimizer: Any) -> dict[str, Any]:
    """The search space's `groups` / `group_ratio` for a `MultiOptimizer` (`{}` for
    another): two groups search the other group's ratio around the compiled one; more
    keep their compiled ratios, told in one line.

    Raises:
        ConfigError: a callable selector, which no trial can rebuild.
    """
    if not is_multi(optimizer):
        return {}
    map_patterns(optimizer)
    if unmatched := unmatched_warning(optimizer, ()):
        logger.warning(unmatched)
    ratios, ref = group_ratios(optimizer), reference_index(optimizer)
    if len(ratios) == 2:
        return {"groups": 2, "group_ratio": ratios[1 - ref]}
    logger.info("the model's MultiOptimizer has %d groups: every trial keeps their compiled ratios to the "
                "reference group (%s) and searches its schedule only", len(ratios), ", ".join(f"{r:g}" for r in ratios))
    return {"groups": len(ratios)}


def has_momentum(optimizer: Any) -> bool:
    """Whether the user's optimizer has a momentum worth cycling (SGD momentum > 0,
    Adam-family beta_1); otherwise the schedules leave momentum alone: also when it must
    stay a float (a Schedule-Free optimizer's, searched as `sf_beta`; Prodigy's). A
    `MultiOptimizer`: when every group has one."""
    if is_multi(optimizer):
        return all(has_momentum(sub) for sub in groups(optimizer))
    if not lr_optimizers.momentum_can_follow_a_schedule(optimizer):
        return False
    try:
        name = lr_optimizers.momentum_name(optimizer)
    except Exception:
        return False
    inner = unwrap(optimizer)
    value = getattr(inner, name, None)
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return value is not None


def updates_per_epoch(optimizer: Any, batches: int) -> int:
    """Optimizer updates per epoch, the count lrsearch schedules run on: the batches, or
    batches / k when the optimizer accumulates gradients over k batches.

    Raises:
        ConfigError: the batches of an epoch are not a multiple of k (updates would
            straddle epochs, and no schedule in epochs could end with the run).
    """
    inner = unwrap(optimizer)
    k = int(getattr(inner, "gradient_accumulation_steps", None) or 1)
    if batches % k:
        raise ConfigError(
            f"the optimizer accumulates gradients over {k} batches but an epoch has "
            f"{batches} batches; choose a batch size (or data size) that gives a multiple "
            f"of {k} batches per epoch"
        )
    return batches // k


def _range_test(model: keras.Model, data: Any, fit_data: FitData,
                kwargs: Mapping[str, Any] | None) -> LRSuggestion:
    from lrsearch.rangetest.finder import range_test

    options = {"verbose": 0, **(kwargs or {})}
    if fit_data.batch_size is not None:
        options.setdefault("batch_size", fit_data.batch_size)
    result = range_test(model, data, **options)
    return result.suggestion
