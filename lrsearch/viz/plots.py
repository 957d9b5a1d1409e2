"""All of lrsearch's drawing, with matplotlib; computing what to draw is separate.

`range_test_plot_data`, `sweep_plot_data` and `schedule_plot_data` return small
NamedTuples of arrays, marks and limits (tested without pixels); `plot_range_test`,
`plot_sweep` and `plot_schedule` only draw them. Figures are
`matplotlib.figure.Figure` objects, never shown and never registered with pyplot (no
global state; notebooks display a returned figure). Pass `ax=` to draw into an existing
axes; the figure of that axes is returned. `save_figure` and `figure_to_base64` write
a figure out (PNG file, or base64 for an HTML page) and release it.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lrsearch.core.errors import CurveError, LRSearchError
from lrsearch.core.fileio import atomic_write

if TYPE_CHECKING:
    from lrsearch.rangetest.result import RangeTestResult
    from lrsearch.export.spec import ScheduleSpec
    from lrsearch.rangetest.sweeps import SweepResult

__all__ = [
    "Mark",
    "RangeTestPlotData",
    "SchedulePlotData",
    "SweepCurve",
    "SweepPlotData",
    "figure_of",
    "figure_to_base64",
    "plot_range_test",
    "plot_schedule",
    "plot_sweep",
    "range_test_plot_data",
    "save_figure",
    "schedule_plot_data",
    "sweep_plot_data",
]


class Mark(NamedTuple):
    """A labelled point on a curve."""

    label: str
    lr: float
    loss: float


class RangeTestPlotData(NamedTuple):
    lr: np.ndarray
    loss: np.ndarray
    smooth_loss: np.ndarray
    val_loss: np.ndarray | None
    marks: tuple[Mark, ...]
    bounds: tuple[float, float] | None
    ylim: tuple[float, float]
    title: str
    warnings: tuple[str, ...]


class SweepCurve(NamedTuple):
    label: str
    lr: np.ndarray
    smooth_loss: np.ndarray
    best: bool
    minimum: Mark


class SweepPlotData(NamedTuple):
    curves: tuple[SweepCurve, ...]
    ylim: tuple[float, float]
    title: str


class SchedulePlotData(NamedTuple):
    step: np.ndarray
    lr: np.ndarray
    momentum: np.ndarray | None  # None when it does not change
    momentum_name: str
    epoch_lines: np.ndarray  # steps where a faint line marks an epoch's start
    xlabel: str
    title: str


def _fmt(v: float) -> str:
    return f"{v:.2g}"


def _at(lr: np.ndarray, y: np.ndarray, x: float) -> float:
    ok = np.isfinite(y)
    if not ok.any():
        return math.nan
    return float(np.interp(np.log10(x), np.log10(lr[ok]), y[ok]))


def _ylim(curves: list[np.ndarray]) -> tuple[float, float]:
    """From a bit below the lowest smoothed loss to a bit above the start of the curves.

    The raw losses after divergence are far larger; they are clipped so that the
    descent, which is what the plot is for, fills the axes.
    """
    lows, highs = [], []
    for sm in curves:
        sm = sm[np.isfinite(sm)]
        if sm.size == 0:
            continue
        i = int(np.argmin(sm))
        lows.append(sm[i])
        highs.append(np.max(sm[: i + 1]))
    if not lows:
        return (0.0, 1.0)
    lo, hi = min(lows), max(highs)
    pad = 0.1 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1.0)
    return (float(lo - pad), float(hi + 2 * pad))


def range_test_plot_data(result: RangeTestResult) -> RangeTestPlotData:
    """What `plot_range_test` draws: the curves, the suggested rates and bounds."""
    f = result.frame
    lr = f["lr"].to_numpy(dtype=float)
    sm = f["smooth_loss"].to_numpy(dtype=float)
    marks: list[Mark] = []
    bounds = None
    warnings: tuple[str, ...] = ()
    try:
        s = result.suggestion
    except CurveError as exc:
        warnings = (str(exc),)
    else:
        for label, x in (
            ("steepest", s.steepest_lr),
            ("valley", s.valley_lr),
            ("min loss", s.min_loss_lr),
        ):
            marks.append(Mark(f"{label} {_fmt(x)}", x, _at(lr, sm, x)))
        bounds = (s.base_lr, s.max_lr)
        warnings = s.warnings
    meta = result.meta
    title = "LR range test"
    if meta.get("optimizer"):
        title += f" ({meta['optimizer']}"
        title += f", batch {meta['batch_size']})" if meta.get("batch_size") else ")"
    if result.stopped not in ("completed",):
        title += f": stopped, {result.stopped}"
    return RangeTestPlotData(
        lr=lr,
        loss=f["loss"].to_numpy(dtype=float),
        smooth_loss=sm,
        val_loss=f["val_loss"].to_numpy(dtype=float) if "val_loss" in f else None,
        marks=tuple(marks),
        bounds=bounds,
        ylim=_ylim([sm]),
        title=title,
        warnings=warnings,
    )


WARNING_WIDTH = 100
"""Characters a line of the warnings drawn on a range-test plot holds."""


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_range_test(
    result: RangeTestResult, ax: Any = None, *, raw: bool = True, figsize=(7.0, 4.5)
) -> Any:
    """Loss against learning rate (log axis), bounds shaded, suggestions marked.

    Args:
        result: a `RangeTestResult`.
        ax: matplotlib axes to draw into; a new figure when None.
        raw: also draw the raw per-batch losses, faintly.
        figsize: size of a new figure.

    Returns:
        The matplotlib `Figure`.
    """
    d = range_test_plot_data(result)
    fig, ax = _axes(ax, figsize)
    if raw:
        ax.plot(d.lr, d.loss, color="0.75", lw=0.8, label="loss (per batch)")
    ax.plot(d.lr, d.smooth_loss, color="C0", lw=2, label="smoothed loss")
    if d.val_loss is not None:
        ax.plot(d.lr, d.val_loss, color="C1", lw=1.2, label="validation loss")
    if d.bounds is not None:
        ax.axvspan(*d.bounds, color="C2", alpha=0.15,
                   label=f"bounds {_fmt(d.bounds[0])} to {_fmt(d.bounds[1])}")
    for m, style in zip(d.marks, ("v", "o", "s")):
        ax.plot([m.lr], [m.loss], style, color="C3", ms=7, label=m.label)
    ax.set_xscale("log")
    ax.set_ylim(*d.ylim)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(d.title)
    if d.warnings:  # wrapped to the axes' width (about 130 characters at this size), never cut
        lines = [line for w in d.warnings for line in textwrap.wrap(f"! {w}", WARNING_WIDTH, subsequent_indent="  ")]
        ax.text(0.01, 0.01, "\n".join(lines), transform=ax.transAxes, fontsize=7, color="C3", va="bottom")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return fig


def sweep_plot_data(result: SweepResult) -> SweepPlotData:
    """What `plot_sweep` draws: one smoothed curve per value, the best one flagged."""
    best = result.best
    curves = []
    for v, r in result.results.items():
        lr = r.frame["lr"].to_numpy(dtype=float)
        sm = r.frame["smooth_loss"].to_numpy(dtype=float)
        ok = np.isfinite(sm)
        i = int(np.argmin(np.where(ok, sm, np.inf))) if ok.any() else 0
        curves.append(
            SweepCurve(
                label=f"{result.param}={v:g}",
                lr=lr,
                smooth_loss=sm,
                best=v == best,
                minimum=Mark(f"min {_fmt(float(sm[i]))}", float(lr[i]), float(sm[i])),
            )
        )
    return SweepPlotData(
        curves=tuple(curves),
        ylim=_ylim([c.smooth_loss for c in curves]),
        title=f"{result.param} sweep: best {best:g}, candidates "
        + ", ".join(f"{c:g}" for c in result.candidates),
    )


def plot_sweep(result: SweepResult, ax: Any = None, *, figsize=(7.0, 4.5)) -> Any:
    """Smoothed loss against learning rate (log axis), one curve per value.

    The best value is drawn thicker; each curve's lowest point is marked.

    Returns:
        The matplotlib `Figure`.
    """
    d = sweep_plot_data(result)
    fig, ax = _axes(ax, figsize)
    for k, c in enumerate(d.curves):
        color = f"C{k % 10}"
        ax.plot(c.lr, c.smooth_loss, color=color, lw=2.5 if c.best else 1.2,
                label=c.label + (" (best)" if c.best else ""))
        ax.plot([c.minimum.lr], [c.minimum.loss], "o", color=color, ms=5)
    ax.set_xscale("log")
    ax.set_ylim(*d.ylim)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed loss")
    ax.set_title(d.title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return fig


PLOT_POINTS = 4000
"""Steps a schedule's plot evaluates at most (sampled evenly over a longer run)."""


def schedule_plot_data(spec: ScheduleSpec, steps: int | None = None) -> SchedulePlotData:
    """What `plot_schedule` draws: the rate and momentum per step, the epoch lines (at
    most ~50), the labels."""
    table = spec.table(steps, points=PLOT_POINTS)
    step = table["step"].to_numpy()
    total = int(step[-1]) + 1 if len(step) else 0
    lines = np.array([], dtype=int)
    xlabel = "step"
    if spec.steps_per_epoch and total:
        count = (total - 1) // spec.steps_per_epoch  # epoch boundaries inside the run
        stride = max(1, count // 50)
        lines = spec.steps_per_epoch * np.arange(stride, count + 1, stride)
        xlabel = f"step ({spec.steps_per_epoch} per epoch; lines mark epochs)"
    momentum = None
    if table["momentum"].nunique() > 1 or spec.momentum is not None:
        momentum = table["momentum"].to_numpy(dtype=float)
    name = type(spec.schedule).__name__ if not isinstance(spec.schedule, float) else f"constant {spec.schedule:g}"
    return SchedulePlotData(step=step, lr=table["lr"].to_numpy(dtype=float), momentum=momentum,
                            momentum_name=spec.momentum_name, epoch_lines=lines, xlabel=xlabel,
                            title=f"{name} with {spec.optimizer}")


def plot_schedule(spec: ScheduleSpec, ax: Any = None, steps: int | None = None, *,
                  figsize=(7.0, 3.5)) -> Any:
    """The rate (left axis) and the momentum (right axis) over the steps, with a faint
    line at each epoch boundary when steps per epoch are known.

    Returns:
        The matplotlib `Figure`.
    """
    d = schedule_plot_data(spec, steps)
    fig, ax = _axes(ax, figsize)
    ax.plot(d.step, d.lr, color="C0", label="learning rate")
    ax.set_xlabel(d.xlabel)
    ax.set_ylabel("learning rate", color="C0")
    ax.margins(x=0)
    for x in d.epoch_lines:
        ax.axvline(x, color="0.85", linewidth=0.8, zorder=0)
    if d.momentum is not None:
        twin = ax.twinx()
        twin.plot(d.step, d.momentum, color="C1", linestyle="--", label=d.momentum_name)
        twin.set_ylabel(d.momentum_name, color="C1")
    ax.set_title(d.title)
    return fig


# --------------------------------------------------------------------------- figure I/O


def figure_of(drawn: Any) -> Any:
    """The figure of what a plotting function returned (a figure, an Axes, or an array
    of Axes as Optuna's matplotlib plots return)."""
    if isinstance(drawn, np.ndarray):
        drawn = drawn.flat[0]
    return getattr(drawn, "figure", drawn)


def _release(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)  # a no-op for our figures; Optuna's are registered with pyplot


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure (or the figure of an Axes) as PNG and release it."""
    fig = figure_of(fig)
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    finally:
        _release(fig)
    return path


def png_tag(draw: Callable[[], Any]) -> str:
    """The figure `draw()` returns as an inline `<img>` tag (for notebook display); empty
    when the result has nothing to draw (a curve too short to plot still shows its table)."""
    try:
        data = figure_to_base64(draw())  # closes the figure
    except (LRSearchError, ValueError):
        return ""
    return f"<img src='data:image/png;base64,{data}' style='max-width:640px'/>"


def figure_to_base64(fig: Any) -> str:
    """A figure as a base64 PNG (for a `data:` URI), then released."""
    fig = figure_of(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _release(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
