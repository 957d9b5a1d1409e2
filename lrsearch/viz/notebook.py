"""Notebook display: the HTML that Jupyter shows for lrsearch's results.

Each result class has a short `_repr_html_` that calls one function here: a compact
table and, where the result has a curve, the plot inline. The image comes in as an
`<img>` tag made by the caller with `lrsearch.viz.plots.png_tag`, so this module stays at the
bottom of the import layers (plain strings and numbers; no Keras, no matplotlib) and
`LRSuggestion` can use it too. The tables are `lrsearch.viz.tables`' (the run report's
too): one number format, missing or non-finite values blank.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from lrsearch.core.errors import CurveError
from lrsearch.viz.tables import cell, frame_table, pairs_table

__all__ = ["one_cycle_html", "range_test_html", "schedule_html", "suggestion_html", "sweep_html",
           "tune_html"]

_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CELL = "text-align:left;padding:1px 8px"
_MAX_ROWS = 12


def _table(rows: Iterable[tuple[str, Any]], title: str) -> str:
    return pairs_table(rows, caption=title, style=_STYLE, cell_style=_CELL)


def _frame(frame: Any, title: str) -> str:
    """A DataFrame as an HTML table (first `_MAX_ROWS` rows), blank for missing values."""
    return frame_table(frame, max_rows=_MAX_ROWS, caption=title, style=_STYLE, cell_style=_CELL)


def _warnings(warnings: Iterable[str]) -> str:
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<ul style='color:#b00;font-size:12px'>{items}</ul>" if items else ""


def _div(*parts: str) -> str:
    return "<div class='lrsearch'>" + "".join(parts) + "</div>"


def _suggestion_rows(s: Any) -> list[tuple[str, Any]]:
    return [("base_lr", s.base_lr), ("max_lr", s.max_lr), ("steepest_lr", s.steepest_lr),
            ("valley_lr", s.valley_lr), ("min_loss_lr", s.min_loss_lr)]


def suggestion_html(s: Any) -> str:
    """`LRSuggestion`: its rates and warnings."""
    return _div(_table(_suggestion_rows(s), "LRSuggestion"), _warnings(s.warnings))


def range_test_html(result: Any, image: str = "") -> str:
    """`RangeTestResult`: how it ran, the suggested rates, the curve."""
    meta = result.meta
    rows = [("steps", len(result.frame)), ("stopped", result.stopped),
            ("tested from", meta.get("min_lr")), ("tested to", meta.get("max_lr")),
            ("optimizer", meta.get("optimizer")), ("batch_size", meta.get("batch_size"))]
    warnings: tuple[str, ...] = ()
    try:
        suggestion = result.suggestion
        rows += _suggestion_rows(suggestion)
        warnings = suggestion.warnings
    except CurveError as exc:  # a curve too short to read
        warnings = (str(exc),)
    return _div(_table(rows, "RangeTestResult"), _warnings(warnings), image)


def sweep_html(result: Any, image: str = "") -> str:
    """`SweepResult`: the ranking of the values, the candidates, the curves."""
    rows = [("param", result.param), ("best", result.best),
            ("candidates", ", ".join(f"{c:g}" for c in result.candidates))]
    return _div(_table(rows, "SweepResult"), _frame(result.ranking, "ranking"), image)


def _describe(value: Any) -> str:
    """A schedule as `Name(arg=value, ...)`, a constant as its number."""
    if value is None or isinstance(value, (int, float)):
        return cell(value)
    config = value.get_config() if hasattr(value, "get_config") else {}
    args = ", ".join(f"{k}={cell(v) if not isinstance(v, str) else v}" for k, v in config.items()
                     if not isinstance(v, (dict, list)))
    return f"{type(value).__name__}({args})"


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [row for k, v in value.items() for row in _flat(f"{prefix}{k}.", v)]
    return [(prefix[:-1], value if not isinstance(value, (list, tuple)) else
             ", ".join(str(v) for v in value))]


def schedule_html(spec: Any, image: str = "") -> str:
    """`ScheduleSpec`: optimizer, schedules, length, provenance, and the rate plotted."""
    rows = [("optimizer", spec.optimizer), ("learning_rate", _describe(spec.schedule)),
            (spec.momentum_name, _describe(spec.momentum)),
            ("weight_decay", _describe(spec.weight_decay)),
            ("steps_per_epoch", spec.steps_per_epoch), ("epochs", spec.epochs),
            ("total_steps", spec.total_steps)]
    rows += _flat("", dict(spec.provenance or {}))
    return _div(_table(rows, "ScheduleSpec"), image)


def tune_html(result: Any, image: str = "") -> str:
    """`TuneResult`: the study's outcome, the best trials, the best schedule plotted."""
    trials = result.trials
    states = trials["state"].value_counts().to_dict() if "state" in trials else {}
    rows: list[tuple[str, Any]] = [("metric", f"{result.metric} ({result.direction})"),
                                   ("trials", len(trials))]
    rows += [(f"  {state.lower()}", n) for state, n in states.items()]
    rows.append(("best trial", result.best_trial))
    if result.best is not None:
        rows.append(("best value", (result.best.provenance or {}).get("value")))
    ranked = trials
    if "value" in trials and len(trials):
        ranked = trials.sort_values("value", ascending=result.direction == "minimize",
                                    na_position="last")
    keep = [c for c in ranked.columns if c in ("number", "state", "value", "epochs_run", "family")
            or c.startswith("params_")]
    return _div(_table(rows, "TuneResult"), _frame(ranked[keep], "trials, best first"), image)


def one_cycle_html(run: Any, schedule_image: str = "", range_test_image: str = "") -> str:
    """`OneCycleFit`: the last epoch's metrics, the schedule trained with, the range test."""
    logs = run.history.history
    rows = [("epochs run", len(next(iter(logs.values()), [])))]
    rows += [(name, values[-1] if values else None) for name, values in logs.items()]
    return _div(_table(rows, "OneCycleFit: last epoch"), schedule_html(run.schedule, schedule_image),
                range_test_html(run.range_test, range_test_image))
