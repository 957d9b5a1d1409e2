"""Momentum and weight-decay sweeps: one range test per value, ranked (Smith, 2018).

For each value a fresh `build_model()` gets the user's optimizer rebuilt with that
momentum (`beta_1` for Adam-family optimizers) or weight decay, through
`lrsearch.optimizers.rebuild`: weight decay is decoupled (`w -= lr * wd * w`) and skips
biases and normalization parameters. Every model starts from the first model's initial
weights and reads the data in the same order, so the curves differ only by the value.

The ranking, best first, orders values by the lowest smoothed loss their curve reaches
(`min_smooth_loss`), then by how late it diverges (`diverge_lr`, infinite when it never
did). A value whose test stopped early (its loss diverged or turned NaN inside the range)
or whose curve cannot be read ranks after every value that ran the whole range, whatever
its lowest loss: the lowest point of a curve that blew up is no evidence that the value
trains well at those rates. (When every value stopped early, as over a range wide enough
to diverge, they are ranked among themselves as above.) `candidates` are the values
whose lowest smoothed loss is within `tolerance` (relative) of the best, at least two
and at most `max_candidates`, in rank order: the values a study should still search.

`curve_warnings` tells what bears on the ranking: the values ranked last, and curves
whose loss does not fall at all. The bounds a curve suggests (and their warnings: noise,
a short descent) are not what a sweep reads, so it does not repeat them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from lrsearch.core import progress
from lrsearch.rangetest.analysis import UNREADABLE, LRSuggestion
from lrsearch.data.files import read_csv
from lrsearch.core.errors import ConfigError, CurveError, argument_error
from lrsearch.core.fileio import read_table, write_table
from lrsearch.rangetest.finder import range_test
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.rangetest.steppers.common import backend_rng_state, set_backend_rng_state

__all__ = ["PARAMS", "SweepResult", "sweep", "DEFAULT_VALUES"]

logger = logging.getLogger(__name__)

PARAMS = ("momentum", "weight_decay")
DEFAULT_VALUES = {
    "momentum": (0.99, 0.97, 0.95, 0.9, 0.85, 0.8),
    "weight_decay": (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 0.0),
}
FORMAT = "lrsearch.sweep"
VERSION = 1


def _suggestion(result: RangeTestResult) -> LRSuggestion | None:
    """A sweep curve's suggestion, or `None` for a curve that says nothing."""
    try:
        return result.suggestion
    except CurveError:
        return None


STOPPED_EARLY = ("diverged", "nan")
"""How a test ends when its loss blew up inside the range."""


@dataclass
class SweepResult:
    """Range tests of one parameter at several values, and their ranking.

    Attributes:
        param: "momentum" or "weight_decay".
        results: value -> the `RangeTestResult` of that value, in sweep order.
        tolerance: relative distance to the best lowest loss within which a value is a
            candidate.
        max_candidates: most candidates returned.
    """

    param: str
    results: dict[float, RangeTestResult]
    tolerance: float = 0.05
    max_candidates: int = 3
    _ranking: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(self.results)

    @property
    def frame(self) -> pd.DataFrame:
        """Long table of every curve: `value, step, lr, loss, smooth_loss` (+ `val_loss`)."""
        parts = [r.frame.assign(value=v) for v, r in self.results.items()]
        frame = pd.concat(parts, ignore_index=True)
        return frame[["value", *[c for c in frame.columns if c != "value"]]]

    def curve_warnings(self) -> list[str]:
        """What bears on the ranking, for the caller to tell once (reading the ranking says
        nothing): one line naming the values ranked last and why, and one line per
        warning that the loss does not fall (`momentum=0.9, 0.85 curves: ...`)."""
        table = self.ranking
        lines = []
        last = table[~table["usable"]]
        if len(last) and table["usable"].any():
            why = []
            for row in last.itertuples():
                if row.stopped in STOPPED_EARLY:
                    what = "NaN" if row.stopped == "nan" else "diverged"
                    why.append(f"{row.value:g} ({what} at lr={row.diverge_lr:.3g})")
                else:
                    why.append(f"{row.value:g} (curve unreadable)")
            lines.append(f"{self.param} sweep: {', '.join(why)} ranked last, below every value whose loss held "
                         f"over the whole range; best {self.param}={self.best:g}")
        told: dict[str, list[float]] = {}
        for v, r in self.results.items():
            s = _suggestion(r)
            for code, warning in zip(s.problems, s.warnings) if s else ():
                if code in UNREADABLE:
                    told.setdefault(warning, []).append(v)
        for warning, values in told.items():
            names = ", ".join(f"{v:g}" for v in values)
            lines.append(f"{self.param}={names} curve{'s' if len(values) > 1 else ''}: {warning}")
        return lines

    @property
    def ranking(self) -> pd.DataFrame:
        """One row per value, best first.

        Columns: `rank, value, min_smooth_loss, min_loss_lr` (rate at the lowest smoothed
        loss), `diverge_lr` (rate of the step that stopped the test, inf when it ran to
        the end), `stopped`, `steps`, the suggested `base_lr, max_lr` (NaN where the
        curve says nothing) and `usable` (False: stopped early or unreadable, ranked
        after the values that ran the whole range; see the module docstring).
        """
        if self._ranking is None:
            rows = []
            for v, r in self.results.items():
                f = r.frame
                sm = f["smooth_loss"].to_numpy()
                finite = np.isfinite(sm)
                i = int(np.nanargmin(np.where(finite, sm, np.nan))) if finite.any() else 0
                s = _suggestion(r)
                rows.append(
                    {
                        "value": v,
                        "min_smooth_loss": float(sm[i]) if finite.any() else math.inf,
                        "min_loss_lr": float(f["lr"].iloc[i]) if len(f) else math.nan,
                        "diverge_lr": (
                            float(f["lr"].iloc[-1])
                            if r.stopped in ("diverged", "nan") and len(f)
                            else math.inf
                        ),
                        "stopped": r.stopped,
                        "steps": len(f),
                        "base_lr": s.base_lr if s else math.nan,
                        "max_lr": s.max_lr if s else math.nan,
                        "usable": s is not None and r.stopped not in STOPPED_EARLY,
                    }
                )
            table = pd.DataFrame(rows)
            table = table.sort_values(
                ["usable", "min_smooth_loss", "diverge_lr"], ascending=[False, True, False], kind="stable"
            ).reset_index(drop=True)
            table.insert(0, "rank", np.arange(1, len(table) + 1))
            self._ranking = table
        return self._ranking

    @property
    def best(self) -> float:
        """The value ranked first."""
        return float(self.ranking["value"].iloc[0])

    @property
    def candidates(self) -> tuple[float, ...]:
        """Values worth searching in a study, best first (see the module docstring)."""
        table = self.ranking
        best = float(table["min_smooth_loss"].iloc[0])
        limit = best + self.tolerance * max(abs(best), 1e-12)
        # a value ranked last is a candidate only to make up the two
        close = (table["min_smooth_loss"] <= limit) & (table["usable"] == table["usable"].iloc[0])
        n = int(np.clip(close.sum(), min(2, len(table)), self.max_candidates))
        return tuple(float(v) for v in table["value"].iloc[:n])

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Smoothed loss against log-lr, one curve per value; returns the figure.

        See `lrsearch.viz.plots.plot_sweep` for the keyword arguments.
        """
        from lrsearch.viz.plots import plot_sweep

        return plot_sweep(self, ax=ax, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the long frame as CSV at `path`, how each test ran as `<stem>.meta.json`."""
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "param": self.param,
            "values": list(self.values),
            "tolerance": self.tolerance,
            "max_candidates": self.max_candidates,
            "tests": [r.meta for r in self.results.values()],
            "best": self.best,
            "candidates": list(self.candidates),
        }
        return write_table(path, self.frame, meta)

    @classmethod
    def load(cls, path: str | Path) -> SweepResult:
        """Read a sweep written by `save` (its `.meta.json` is optional).

        Raises:
            DataError: the file is missing or not a sweep CSV.
        """
        frame, meta = read_table(path, lambda p: read_csv(p, "sweep file", ["value", "lr", "loss"], numeric=True,
                                 hint="a range-test CSV is read with RangeTestResult.load"))
        values = meta.get("values") or list(dict.fromkeys(frame["value"].tolist()))
        tests = meta.get("tests") or [{} for _ in values]
        results = {}
        for v, tmeta in zip(values, tests):
            part = frame[frame["value"] == v].drop(columns="value").reset_index(drop=True)
            results[float(v)] = RangeTestResult(frame=part, meta=dict(tmeta))
        return cls(
            param=str(meta.get("param", "momentum")),
            results=results,
            tolerance=float(meta.get("tolerance", 0.05)),
            max_candidates=int(meta.get("max_candidates", 3)),
        )

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import sweep_html  # notebook display
        from lrsearch.viz.plots import png_tag
        return sweep_html(self, png_tag(self.plot))


def _check_values(param: str, values: Sequence[float]) -> tuple[float, ...]:
    if param not in PARAMS:
        raise argument_error("param", f"one of {PARAMS}", param)
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise argument_error("values", "numbers", values) from exc
    if not vals:
        raise ConfigError("Argument `values` is empty; give at least one value to sweep")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"Argument `values` repeats a value. Received: values={vals}")
    for v in vals:
        ok = 0.0 <= v < 1.0 if param == "momentum" else (math.isfinite(v) and v >= 0.0)
        if not ok:
            rule = "in [0, 1)" if param == "momentum" else ">= 0"
            raise ConfigError(f"every {param} must be {rule}. Received: {param}={v}")
    return vals


def _with_value(model: keras.Model, param: str, value: float) -> None:
    """Recompile `model` with its optimizer rebuilt to use `value` for `param`."""
    from lrsearch.optimizers import rebuild

    config = getattr(model, "_compile_config", None)
    if config is None:
        raise ConfigError("build_model() must return a compiled model; call model.compile(...)")
    kwargs = dict(config.config)
    # under a distribution strategy the optimizer's variables are made in its scope
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow's only
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        try:
            kwargs["optimizer"] = rebuild(model.optimizer, **{param: value})
        except ConfigError as exc:
            raise ConfigError(f"cannot sweep {param}: {exc}") from exc
        model.compile(**kwargs)


def sweep(
    build_model: Callable[[], keras.Model],
    data: Any,
    param: str = "momentum",
    values: Sequence[float] = DEFAULT_VALUES["momentum"],
    *,
    tolerance: float = 0.05,
    max_candidates: int = 3,
    **range_test_kwargs: Any,
) -> SweepResult:
    """One range test per value of momentum or weight decay, ranked best first.

    Smith's recipe ("A disciplined approach to neural network hyper-parameters", 2018):
    run the range test at a few momentum or weight-decay values; the value whose curve
    falls lowest and diverges latest trains best at high rates.

    Example:

        s = lrsearch.sweep(build_model, (x, y), param="weight_decay", steps=150)
        s.ranking, s.best, s.candidates

    Args:
        build_model: returns a fresh compiled `keras.Model` each call.
        data: as for `range_test`.
        param: "momentum" (`beta_1` for Adam-family optimizers) or "weight_decay"
            (decoupled; biases and normalization parameters are not decayed).
        values: the values to test; for `param="weight_decay"` the default becomes
            `DEFAULT_VALUES["weight_decay"]` (1e-2 ... 1e-4 and 0).
        tolerance: relative distance to the best lowest loss for a candidate.
        max_candidates: most candidates.
        **range_test_kwargs: `min_lr, max_lr, steps, mode, batch_size, smooth, diverge,
            validation_data, verbose` of `range_test` (`restore` is always False: each
            model is thrown away).

    Returns:
        A `SweepResult`.

    Raises:
        ConfigError: unknown param, bad values, a model that is not compiled, or an
            optimizer without that parameter.
    """
    if param == "weight_decay" and values is DEFAULT_VALUES["momentum"]:
        values = DEFAULT_VALUES["weight_decay"]
    vals = _check_values(param, values)
    if not callable(build_model):
        raise ConfigError(f"Argument `build_model` must be a function returning a compiled model. "
                          f"Received: build_model={build_model!r}")
    if not 0 <= tolerance:
        raise argument_error("tolerance", ">= 0", tolerance)
    if max_candidates < 1:
        raise argument_error("max_candidates", ">= 1", max_candidates)
    range_test_kwargs.pop("restore", None)
    range_test_kwargs.setdefault("verbose", 0)
    results: dict[float, RangeTestResult] = {}
    initial: list[np.ndarray] | None = None
    rng: Any = None  # the backend's global random state (PyTorch's dropout), one for every value
    for k, v in enumerate(vals, 1):
        model = build_model()
        if not isinstance(model, keras.Model):
            raise ConfigError(f"build_model() must return a keras.Model. Received: {type(model).__name__}")
        _with_value(model, param, v)
        # same initial weights (and dropout seed states) for every value
        if initial is None:
            initial = [np.array(w.numpy(), copy=True) for w in model.variables]
            rng = backend_rng_state()
        elif [w.shape for w in initial] != [tuple(w.shape) for w in model.variables]:
            raise ConfigError(
                "build_model() returned models of different shapes; it must build the same "
                "architecture each call"
            )
        else:
            for w, value in zip(model.variables, initial):
                w.assign(value)
            set_backend_rng_state(rng)
        if not progress.current().live:  # a live display titles the value's bar with it instead
            logger.info("sweep %s=%g", param, v)
        try:
            with progress.current().section(f"sweep {param}={v:g} ({k}/{len(vals)})"):
                results[v] = range_test(model, data, restore=False, **range_test_kwargs)
        except KeyboardInterrupt as exc:
            if results:
                exc.sweep_result = SweepResult(  # type: ignore[attr-defined]
                    param, dict(results), tolerance, max_candidates
                )
                logger.debug(
                    "sweep interrupted after %d of %d values; the finished tests are on the "
                    "exception as .sweep_result", len(results), len(vals),
                )
            raise
    return SweepResult(param=param, results=results, tolerance=tolerance, max_candidates=max_candidates)
