"""The learning-rate range test: train briefly while the rate grows, record each batch's loss.

`range_test` runs the model's own `train_step` (its loss, regularization losses, loss
scaling, gradient accumulation, custom train steps) in one traced function of its own:

- the rate of each step comes from a table indexed by a step counter inside that
  function, so changing it every batch costs no Python and no retracing; the optimizer's
  own rate (a variable or the user's schedule) is put back afterwards, untouched;
- the metrics are reset inside the same function before each step, so the loss it
  returns is the loss of THAT batch under the weights before the update (Keras'
  `logs["loss"]` is the running mean since the epoch began);
- it never touches `model.train_function`, so the user's next `fit` traces (or reuses)
  its own step with the user's rate, exactly as without a range test;
- under a distribution strategy with several replicas (`MirroredStrategy`) each step
  runs on every replica's share of the global batch and records the mean over replicas,
  as `fit` does (BatchNorm statistics are per replica);
- with `restore=True` every model variable (weights, BatchNorm statistics, dropout seed
  states), every metric variable and every optimizer variable (iterations, slots, loss
  scale, the rate variable) is written back bit for bit in a `finally:` block, so also
  after an error or Ctrl-C.

An unbuilt model or optimizer is built first, as `fit` would build it (same initial
weights, zero optimizer slots); "restored" then means restored to that built state.

On JAX the step is the model's stateless `train_step`, jitted, with the state threaded
through it and written back when the test ends (`lrsearch.rangetest.steppers.jax_step`); on PyTorch it
is the model's `train_step`, eager or under `torch.compile` as `fit` runs it
(`lrsearch.rangetest.steppers.torch_step`). There the rate is read from the table by the optimizer's
own `iterations`, and the batches come through Keras' data adapters (`lrsearch.data.batches`).
`tf.distribute` strategies are TensorFlow's only; on JAX a `keras.distribution` splits each
global batch over its devices (the curve's loss is the global batch's).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import keras
import numpy as np
import pandas as pd

from lrsearch.core import checks, progress
from lrsearch.rangetest.analysis import UNREADABLE
from lrsearch.rangetest.curve import smooth_loss
from lrsearch.data.reader import num_samples
from lrsearch.core.defaults import MAX_RANGE_STEPS, RAMP_MODES
from lrsearch.core.errors import (ConfigError, CurveError, DataError, DivergenceError, argument_error, data_cause,
                                  first_line, raised_by)
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.rangetest.steppers.common import Snapshot, build_like_fit, replicas
from lrsearch.rangetest.steppers.dispatch import check_backend, open_source, open_stepper
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import group_meta, unmatched_warning
from lrsearch.optimizers.keras_classes import schedule_free_as_own
from lrsearch.optimizers.schedule_free_training import pause_warmup

__all__ = ["lr_sweep", "range_test", "require_trainable", "DEFAULT_MIN_STEPS",
           "DEFAULT_MAX_STEPS"]

logger = logging.getLogger(__name__)

DEFAULT_MIN_STEPS = 100
"""`steps=None` runs one pass over the data, but at least this many steps ..."""
DEFAULT_MAX_STEPS = 1000
"""... and at most this many."""

def lr_sweep(min_lr: float, max_lr: float, steps: int, mode: str = "exp") -> np.ndarray:
    """The rate of each step: `min_lr` at step 0, `max_lr` at step `steps - 1`.

        exp:    lr[i] = min_lr * (max_lr / min_lr) ** (i / (steps - 1))
        linear: lr[i] = min_lr + (max_lr - min_lr) * i / (steps - 1)

    Raises:
        ConfigError: rates not `0 < min_lr < max_lr`, fewer than 2 steps, unknown mode.
    """
    _check_sweep(min_lr, max_lr, steps, mode)
    t = np.arange(steps, dtype=np.float64) / (steps - 1)
    if mode == "exp":
        out = min_lr * (max_lr / min_lr) ** t
    else:
        out = min_lr + (max_lr - min_lr) * t
    out[0], out[-1] = min_lr, max_lr
    return out


def require_trainable(model: Any) -> None:
    """Refuse a built model without trainable weights: its loss does not depend on the
    rate, so any bounds read from it would be noise.

    Raises:
        ConfigError: `model.trainable_weights` is empty.
    """
    if getattr(model, "built", True) and not model.trainable_weights:
        raise ConfigError(
            "the model has no trainable weights, so the learning rate changes nothing; "
            "unfreeze some layers (layer.trainable = True) before searching a rate"
        )


def _check_sweep(min_lr: float, max_lr: float, steps: int | None, mode: str) -> None:
    min_lr, max_lr = checks.rate("min_lr", min_lr), checks.rate("max_lr", max_lr)
    if steps is not None:
        checks.number("steps", steps)
    if not max_lr > min_lr:
        raise ConfigError(
            f"Argument `max_lr` must be > min_lr. Received: min_lr={min_lr}, max_lr={max_lr}"
        )
    if steps is not None and (int(steps) != steps or steps < 2):
        raise argument_error("steps", "an integer >= 2", steps)
    if steps is not None and steps > MAX_RANGE_STEPS:
        raise ConfigError(f"Argument `steps` must be at most {MAX_RANGE_STEPS} (a few hundred steps find the "
                          f"bounds). Received: steps={steps}")
    if mode not in RAMP_MODES:
        raise argument_error("mode", f"one of {RAMP_MODES}", mode)


# ---------------------------------------------------------------------------- the test


@schedule_free_as_own  # Keras' ScheduleFreeAdamW collapses the weights: the test runs lrsearch's in its place
def range_test(
    model: keras.Model,
    data: Any,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int | None = None,
    mode: str = "exp",
    batch_size: int = 32,
    validation_data: Any = None,
    smooth: float = 0.98,
    diverge: float = 4.0,
    restore: bool = True,
    verbose: int = 1,
    step_budget: int | None = None,
) -> RangeTestResult:
    """Train with a growing learning rate and record the loss of each batch (Smith, 2017).

    The rate of step `i` (of `steps`), exponential or linear:

        exp:    min_lr * (max_lr / min_lr) ** (i / (steps - 1))
        linear: min_lr + (max_lr - min_lr) * i / (steps - 1)

    The curve's warnings (`suggestion.warnings`) are logged once, when the test returns.
    The test stops early once the debiased moving average of the loss exceeds `diverge`
    times its minimum, or at a NaN/inf loss. The recorded loss of a step is the model's
    total loss (regularization included) on that batch before the update; with gradient
    accumulation (`k` batches per optimizer step) it is the mean over the `k` batches.

    Example:

        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        result = lrsearch.range_test(model, (x, y), steps=200)
        result.suggestion.max_lr, result.frame.tail()

    Args:
        model: a compiled `keras.Model`; its optimizer, loss and metrics are used.
        data: `(x, y[, sample_weight])` arrays, a batched `tf.data.Dataset` (read in
            order, repeated when shorter than `steps`), a `keras.utils.PyDataset` or a
            `torch.utils.data.DataLoader` (on every backend, as `fit` takes them).
        min_lr: rate of the first step.
        max_lr: rate of the last step.
        steps: optimizer steps, run exactly. None: one pass over the data, but at
            least `DEFAULT_MIN_STEPS` (100) and at most `DEFAULT_MAX_STEPS` (1000); 100
            when the length of a dataset is unknown; and while the curve cannot be read
            well (`LRSuggestion.problems`: flat, noisy, no descent, a short descent, too
            few points, still falling at the top) the test runs again from the same
            starting state, up to `MAX_ROUNDS` rounds in all: `GROWTH` (3) times the
            steps over the range below the divergence, 100x lower rates when the loss
            blew up in the first third of the steps, 100x higher when it still fell at
            the top. Each round is logged
            and listed in `meta["rounds"]`; the last round's curve is returned.
        mode: "exp" (geometric spacing) or "linear".
        batch_size: batch size for arrays (a last partial batch is dropped, so that
            every step sees as many samples); the global batch under a distribution
            strategy or a `keras.distribution`, split among its replicas or devices (a
            multiple of their number).
        validation_data: data as above; when given, its mean loss after each step's
            update is recorded as `val_loss` (costs one pass over it per step: keep it
            to a few batches).
        smooth: moving-average factor of `smooth_loss`, in [0, 1).
        diverge: stop when `smooth_loss > diverge * min(smooth_loss)`; 0 disables.
        restore: put every model, metric and optimizer variable back afterwards.
        verbose: 0 silent (the caller reads `result.suggestion.warnings`), 1 the curve's
            warnings logged, and Keras' progress bar on a terminal or in a notebook (none
            into a file or a pipe).
        step_budget: with `steps=None`, the most steps all rounds may run together (a
            budgeted `auto`'s cap); a round that does not fit ends the test, in one line.

    Returns:
        A `RangeTestResult`.

    Raises:
        ConfigError: an argument out of range, or the model is not compiled.
        DataError: the data is of an unknown kind or does not fit the model.
        DivergenceError: the very first loss is NaN or infinite.
        CurveError: with `steps=None`, the last round's curve still shows no descent,
            a flat loss, or too few usable points to read.
    """
    _check_sweep(min_lr, max_lr, steps, mode)
    if not 0.0 <= checks.number("smooth", smooth) < 1.0:
        raise argument_error("smooth", "in [0, 1)", smooth)
    if diverge is None:
        diverge = 0.0
    if checks.number("diverge", diverge) != 0 and not diverge > 1:
        raise argument_error("diverge", "> 1 (or 0 to never stop)", diverge)
    if not isinstance(model, keras.Model):
        raise ConfigError(f"range_test needs a keras.Model; got {type(model).__name__}")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError("the model is not compiled; call model.compile(optimizer, loss) first")
    check_backend()

    source = open_source(data, batch_size, True, model)
    inner = unwrap(model.optimizer)
    accum = int(getattr(inner, "gradient_accumulation_steps", None) or 1)
    extend = steps is None
    if steps is None:
        per_pass = source.per_pass
        steps = (
            DEFAULT_MIN_STEPS
            if per_pass is None
            else int(np.clip(per_pass // accum, DEFAULT_MIN_STEPS, DEFAULT_MAX_STEPS))
        )
        steps = steps if step_budget is None else max(2, min(steps, int(step_budget)))
    val_batches = None
    if validation_data is not None:
        val_batches = open_source(validation_data, batch_size, False, model).all()

    build_like_fit(model, source.first())
    require_trainable(model)
    if unmatched := unmatched_warning(model.optimizer, [v.path for v in model.trainable_variables]):
        logger.warning(unmatched)
    # a test that may be rerun needs the starting state even when not restoring at the end
    snapshot = Snapshot(model) if restore or extend else None
    meta: dict[str, Any] = {
        "batch_size": int(batch_size) if num_samples(data) is not None else None,
        "smooth": float(smooth),
        "diverge": float(diverge),
        "optimizer": type(inner).__name__,
        "replicas": replicas(model),
        **group_meta(inner),  # a MultiOptimizer: the frame's lr is the reference group's, the others at a ratio
    }
    sweep = {"min_lr": float(min_lr), "max_lr": float(max_lr), "steps": int(steps)}
    rounds: list[dict[str, Any]] = []
    old_lr = inner._learning_rate
    resume_warmup = pause_warmup(inner)  # the curve is read at the ramp's rates
    started = time.perf_counter()
    try:
        while True:
            if rounds:
                snapshot.restore()
            lrs = lr_sweep(sweep["min_lr"], sweep["max_lr"], sweep["steps"], mode)
            meta.update(sweep, mode=mode, stopped="completed")
            rows = _round(model, source, lrs, accum, smooth, diverge, meta, val_batches, verbose)
            result = _result(lrs, rows, smooth, meta)
            if meta["stopped"] != "completed" and verbose:  # a quiet caller reads it in meta["stopped"]
                logger.info(
                    "range test stopped at step %d of %d (lr=%.3g): %s",
                    len(result.frame) - 1, sweep["steps"], result.frame["lr"].iloc[-1], meta["stopped"],
                )
            problems, error = _read(result)
            rounds.append({**sweep, "stopped": meta["stopped"], "problems": list(problems), "recorded": len(rows["loss"])})
            if not extend or not problems:
                break
            nxt = _next_sweep(sweep, result, problems, len(rounds))
            if nxt is not None and step_budget is not None:
                left = int(step_budget) - sum(r["recorded"] for r in rounds)
                if left < min(nxt["steps"], sweep["steps"]):  # shorter than the last round: no use
                    logger.info("range test: its step budget (%d) ends it after round %d (%s), %d steps left",
                                step_budget, len(rounds), ", ".join(problems), max(left, 0))
                    break
                nxt = {**nxt, "steps": min(nxt["steps"], left)}
            if nxt is None:
                if error is not None or set(problems) & set(UNREADABLE):
                    raise CurveError(
                        f"the range-test curve cannot be read after {len(rounds)} rounds "
                        f"({_describe(rounds)}); check the data, labels and loss, or run "
                        f"range_test with explicit min_lr, max_lr and steps"
                    ) from error
                break
            logger.info(
                "range test round %d (%s) -> round %d: %d steps from %.3g to %.3g",
                len(rounds), ", ".join(problems), len(rounds) + 1, nxt["steps"], nxt["min_lr"], nxt["max_lr"],
            )
            sweep = nxt
    except KeyboardInterrupt:  # the curve so far is on the exception as .range_test_result
        raise
    finally:
        inner._learning_rate = old_lr
        resume_warmup()
        if snapshot is not None and restore:
            snapshot.restore()
    meta["seconds"] = round(time.perf_counter() - started, 3)
    result.meta.update(seconds=meta["seconds"], rounds=rounds)
    if error is None and verbose:  # a caller that runs quietly (a sweep, auto) tells them itself, once
        for warning in result.suggestion.warnings:
            logger.warning("range-test curve: %s", warning)
    return result


MAX_ROUNDS = 3
"""`steps=None`: rounds a range test runs at most while its curve cannot be read well."""
GROWTH = 3
"""Each extra round runs this many times the steps of the one before."""


def _read(result: RangeTestResult) -> tuple[tuple[str, ...], CurveError | None]:
    """The problems of a round's curve (a curve too short to read counts as few points)."""
    try:
        return result.suggestion.problems, None
    except CurveError as exc:
        return ("few_points",), exc


def _next_sweep(
    sweep: dict[str, Any], result: RangeTestResult, problems: tuple[str, ...], done: int
) -> dict[str, Any] | None:
    """The sweep of the next round, or None when the rounds are used up.

    - the loss never fell, or too few points, and the round blew up in its first third:
      the usable rates lie below the range; start 100x lower (and stop where this round
      blew up);
    - still falling at the top: go 100x higher;
    - otherwise (flat, noisy, no descent over a slow ramp, a short descent, few
      points): `GROWTH` times the steps, over the range up to 3x the rate where this
      round blew up (what lies above is divergence): a model that needs more steps to
      move at all shows its descent on a slower ramp.
    """
    if done >= MAX_ROUNDS:
        return None
    lo, hi, steps = sweep["min_lr"], sweep["max_lr"], sweep["steps"]
    end = float(result.frame["lr"].iloc[-1]) if len(result.frame) else lo
    stopped = result.meta.get("stopped") in ("diverged", "nan")
    early = stopped and len(result.frame) < steps / 3  # blew up in the first third
    if early and ("no_descent" in problems or "few_points" in problems):
        return {"min_lr": max(lo / 100.0, checks.SMALLEST_RATE), "max_lr": min(hi, 3.0 * end), "steps": steps}
    if "still_falling" in problems:
        return {"min_lr": lo, "max_lr": min(hi * 100.0, checks.LARGEST_RATE), "steps": steps}
    top = min(hi, 3.0 * end) if stopped else hi
    return {"min_lr": lo, "max_lr": max(top, lo * 10.0), "steps": steps * GROWTH}


def _describe(rounds: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{r['steps']} steps {r['min_lr']:.3g} to {r['max_lr']:.3g}: {', '.join(r['problems']) or 'ok'}"
        for r in rounds
    )


def _round(model, source, lrs, accum, smooth, diverge, meta, val_batches, verbose) -> dict[str, list[float]]:
    """One sweep over `lrs` from the model's current state; fills `meta["stopped"]`."""
    steps = lrs.size
    rows: dict[str, list[float]] = {"loss": []}
    if val_batches is not None:
        rows["val_loss"] = []
    stepper = open_stepper(model, lrs, accum)
    bar = None
    try:
        watching = progress.current()
        if watching.live:  # the command line's live display, in place of Keras' bar
            bar = watching.bar(steps, "range test", unit="step")
        elif verbose and progress.interactive():  # not into a log file or a pipe
            bar = progress.KerasBar(keras.utils.Progbar(steps, stateful_metrics=["lr", "loss", "smooth_loss"]))
        iterator = stepper.iterator(source.take(steps * accum))
        _run(stepper, iterator, lrs, accum, smooth, diverge, rows, meta, val_batches, bar)
    except KeyboardInterrupt as exc:
        meta["stopped"] = "interrupted"
        exc.range_test_result = _result(lrs, rows, smooth, meta)  # type: ignore[attr-defined]
        raise
    except stepper.errors as exc:  # a bad batch found mid-run (a label, an image)
        step = len(rows["loss"])
        per_pass = source.per_pass
        batch = step % per_pass + 1 if per_pass else step + 1
        raise DataError(
            f"{data_cause(exc, _classes(model))} in batch {batch} of the training data (range-test step {step + 1}); "
            "fix or remove that data"
        ) from exc
    finally:
        if bar is not None:  # its line ends here, before the next log line, however the round ended
            bar.close()
        stepper.close()
    return rows


def _run(stepper, iterator, lrs, accum, smooth, diverge, rows, meta, val_batches, bar):
    """The step loop; fills `rows` and `meta["stopped"]` (split out to keep `finally` short)."""
    avg, best = 0.0, math.inf
    losses = rows["loss"]
    for i in range(lrs.size):
        try:
            vals = [stepper.step(iterator) for _ in range(accum)]
        except (ValueError, TypeError, *stepper.errors) as exc:
            if i == 0 and not isinstance(exc, ConfigError):
                raise DataError(f"the first training step raised {raised_by(exc)}; check the model's train_step, "
                                "its loss and the data's shapes") from exc
            raise
        loss = float(vals[0]) if accum == 1 else float(np.mean([float(v) for v in vals]))
        losses.append(loss)
        if val_batches is not None:
            rows["val_loss"].append(stepper.evaluate(val_batches))
        if not math.isfinite(loss):
            if i == 0:
                raise DivergenceError(
                    f"the loss is {loss} at the first step (lr={lrs[0]:.3g}); check the "
                    f"data for NaN or inf, the labels against the loss, or lower min_lr"
                )
            meta["stopped"] = "nan"
            break
        avg = smooth * avg + (1.0 - smooth) * loss
        sm = avg / (1.0 - smooth ** (i + 1))
        best = min(best, sm)
        if bar is not None:
            bar.update(i + 1, [("lr", lrs[i]), ("loss", loss), ("smooth_loss", sm)])
        if diverge and best > 0 and sm > diverge * best:
            meta["stopped"] = "diverged"
            break


def _classes(model: keras.Model) -> int | None:
    """The width of the model's (first) output: the number of classes a label indexes."""
    try:
        width = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return int(width) if width else None


def _result(lrs, rows, smooth, meta) -> RangeTestResult:
    n = len(rows["loss"])
    loss = np.asarray(rows["loss"], dtype=np.float64)
    frame = pd.DataFrame(
        {
            "step": np.arange(n, dtype=np.int64),
            "lr": lrs[:n],
            "loss": loss,
            "smooth_loss": smooth_loss(loss, smooth),
        }
    )
    if "val_loss" in rows:
        frame["val_loss"] = np.asarray(rows["val_loss"][:n], dtype=np.float64)
    return RangeTestResult(frame=frame, meta=dict(meta, recorded=n))
