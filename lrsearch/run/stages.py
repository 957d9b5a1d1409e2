"""The stages of `lrsearch.auto`: range test, sweeps, study, each written into the run folder.

Each stage takes a checked `ModelSource` and the run folder, writes what it found there
as soon as it exists, and, given the fingerprint of the model, data and settings
(`lrsearch.run.evidence`), takes what an earlier run of the same command left instead of
redoing it. The sweeps test only the window where the first curve said something
(`sweep_window`), at its density of steps per decade, so they cost a fraction of the
first test each. `lrsearch.run.auto` strings them together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lrsearch.core.errors import ConfigError
from lrsearch.study.options import StudyOptions

__all__ = ["log_bounds", "range_test_stage", "seeded_build", "study_stage", "sweep_stage", "sweep_window"]

logger = logging.getLogger(__name__)


def seeded_build(build: Callable[[], Any], seed: int | None) -> Callable[[], Any]:
    """`build`, seeding Python, NumPy and the backend with `seed` before each model is made,
    so the weights' initialization and dropout repeat from run to run (unseeded if None)."""
    if seed is None:
        return build

    def build_seeded() -> Any:
        import keras

        keras.utils.set_random_seed(int(seed))
        return build()

    return build_seeded


def range_test_stage(source: Any, out: Path, options: StudyOptions, *, reuse: bool, verbose: int,
                     fingerprint: dict[str, Any] | None = None, step_budget: int | None = None) -> Any:
    """A range test of a model from `source` (seeded with `options.seed`), saved into `out`
    as `range_test.csv` and `.png`; or the one already there when `fingerprint` (see
    `lrsearch.run.evidence`) still holds and `reuse` is set. `step_budget`: the most steps
    a self-extending test (`options.range_steps` None) may run in all its rounds."""
    from lrsearch.run import evidence
    from lrsearch.rangetest.finder import range_test
    from lrsearch.rangetest.result import RangeTestResult
    from lrsearch.viz.plots import save_figure

    csv = out / "range_test.csv"
    fp = None if fingerprint is None else evidence.range_fingerprint(fingerprint, options)
    if fp is not None and step_budget is not None:
        fp["step_budget"] = int(step_budget)
    if fp is not None and evidence.reusable(out, csv.name, fp, what="range test", reuse=reuse):
        return RangeTestResult.load(csv)
    if options.range_steps is None and step_budget:
        logger.info("range test: %g to %g, extending itself over at most %d steps", options.min_lr,
                    options.max_lr, step_budget)
    else:
        logger.info("range test: %g to %g over %s steps", options.min_lr, options.max_lr,
                    options.range_steps or "default")
    model = seeded_build(source.build_model, options.seed)()
    try:
        result = range_test(model, source.train, verbose=int(verbose > 1), step_budget=step_budget,
                            **options.range_test_kwargs())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the curve so far is kept
        evidence.keep_interrupted(exc, csv, "range test")
        raise
    result.save(csv)
    save_figure(result.plot(), out / "range_test.png")
    if fp is not None:
        evidence.record(out, csv.name, fp, [csv.name, "range_test.meta.json"])
    return result


def log_bounds(suggestion: Any) -> None:
    """The bounds and the curve's warnings, told once by the caller of `suggest`."""
    logger.info("bounds: base_lr %.3g, max_lr %.3g", suggestion.base_lr, suggestion.max_lr)
    for warning in suggestion.warnings:
        logger.warning("range test: %s", warning)


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


def sweep_stage(source: Any, out: Path, param: str, values: Sequence[float], *, reuse: bool,
                seed: int | None = None, fingerprint: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """The `param` sweep over `values` (`lrsearch.rangetest.sweeps.sweep` with `kwargs`),
    saved into `out`, or the one there that still holds; `None` when the model cannot take
    the sweep (an optimizer without momentum, say), which the study then does without."""
    from lrsearch.run import evidence
    from lrsearch.viz.plots import save_figure
    from lrsearch.run.report import SWEEP_FILES
    from lrsearch.rangetest.sweeps import SweepResult, sweep

    csv = out / SWEEP_FILES[param]
    fp = None
    if fingerprint is not None:
        window = {k: kwargs.get(k) for k in ("min_lr", "max_lr", "steps", "mode")}
        fp = evidence.sweep_fingerprint(fingerprint, values, window, out / "range_test.csv")
        if evidence.reusable(out, csv.name, fp, what=f"{param.replace('_', '-')} sweep", reuse=reuse):
            return _told(SweepResult.load(csv))
    logger.info("%s sweep over %s", param.replace("_", "-"), ", ".join(f"{v:g}" for v in values))
    try:
        result = sweep(seeded_build(source.build_model, seed), source.train, param=param, values=tuple(values),
                       **kwargs)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the values finished are kept
        evidence.keep_interrupted(exc, csv, f"{param.replace('_', '-')} sweep")
        raise
    except ConfigError as exc:  # e.g. an optimizer without momentum: the study does without
        logger.warning("skipping the %s sweep: %s", param, exc)
        return None
    result.save(csv)
    save_figure(result.plot(), csv.with_suffix(".png"))
    if fp is not None:
        evidence.record(out, csv.name, fp, [csv.name, csv.stem + ".meta.json"])
    return _told(result)


def _told(result: Any) -> Any:
    """`result` after its curves' warnings are told, once per run."""
    for line in result.curve_warnings():
        logger.info("%s", line)
    return result


def study_stage(source: Any, out: Path, options: StudyOptions, *, suggestion: Any = None, bounds: Any = None,
                sweeps: dict[str, Any] | None = None, verbose: int,
                on_stage: Callable[[str], None] | None, opening_points: Any = None) -> Any:
    """The study (`lrsearch.study.tune.tune` with `options`) in the storage of `out`, its
    tables and `schedule.json` written there; the evidence attached to an Optuna study.
    `opening_points`: a race's designed first rung (`tune(opening_points=)`)."""
    from lrsearch.study.storage import default_storage_url, storage_url
    from lrsearch.study.tune import tune

    name = options.study_name or source.name
    storage = options.storage or default_storage_url(out)
    if on_stage:
        on_stage(
            f"finished trials are kept in {storage_url(storage)} (study {name!r}); "
            "run the same command again to resume"
        )
    logger.info("study %r: %d trials of %d epochs, %s", name, options.trials, options.epochs, options.backend)
    # tune writes trials.csv, history.csv and schedule.json into `out` (also when
    # interrupted: the finished trials stay in the storage and in the tables)
    result = tune(
        source.build_model, source.train, validation_data=source.validation, suggestion=suggestion,
        bounds=bounds, sweeps=dict(sweeps or {}) or None, preflight=False, verbose=int(verbose > 1),
        options=options, storage=storage, study_name=name, out_dir=out, opening_points=opening_points,
    )
    if options.backend == "optuna":  # the evidence beside the trials in optuna-dashboard
        from lrsearch.run.artifacts import attach_evidence

        attach_evidence(result.study, out)
    return result
