"""One self-contained HTML page per run: evidence, study and the chosen schedule.

`write_report(folder)` reads what a run wrote into its folder (`range_test.csv`,
`sweep_momentum.csv`, `sweep_weight_decay.csv`, `trials.csv`, `history.csv`,
`schedule.json`, and the study in `study.db`) and writes `report.html` next to them:
plots embedded as base64 PNG, tables as HTML, no external file or network access, so
the page can be mailed or archived on its own. A missing part becomes a short note, a
missing value an empty cell.

The optimization history, the per-epoch values and the parameter importances are
Optuna's own interactive plotly charts (`optuna.visualization`), with plotly.js inlined
once in the page's head, so they zoom and show each trial on hover offline too; without
plotly installed they are Optuna's matplotlib pictures instead.
"""

from __future__ import annotations

import html
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrsearch.core.errors import DataError, LRSearchError, first_line
from lrsearch.core.fileio import write_text
from lrsearch.viz.plots import figure_of, figure_to_base64, save_figure

__all__ = [
    "ReportData",
    "collect",
    "render_html",
    "write_report",
    "figure_to_base64",
    "save_figure",
    "plot_file",
    "MIN_TRIALS_FOR_IMPORTANCE",
    "SWEEP_FILES",
]

logger = logging.getLogger(__name__)

MIN_TRIALS_FOR_IMPORTANCE = 4
"""Parameter importances are drawn from this many finished trials on (fewer say nothing)."""

SWEEP_FILES = {"momentum": "sweep_momentum.csv", "weight_decay": "sweep_weight_decay.csv"}


# --------------------------------------------------------------------------- figures


def plot_file(path: str | Path, output: str | Path | None = None) -> Path:
    """Draw a range-test CSV, a sweep CSV or a `schedule.json` into a PNG.

    Args:
        path: the file; its kind is read from its suffix and columns.
        output: the image to write; default `path` with suffix `.png`.

    Returns:
        The path written.

    Raises:
        DataError: the file is missing or of no known kind.
        ScheduleFormatError: a JSON file that is not a schedule lrsearch can read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a range-test CSV, a sweep CSV or a schedule.json")
    output = Path(output) if output else path.with_suffix(".png")
    if path.suffix.lower() == ".json":
        from lrsearch.export.spec import load_schedule

        fig = load_schedule(path).plot()
    else:
        try:
            columns = set(pd.read_csv(path, nrows=1).columns)
        except Exception as exc:
            raise DataError(f"cannot read {path} as CSV: {first_line(exc)}") from exc
        if {"value", "lr", "loss"} <= columns:
            from lrsearch.rangetest.sweeps import SweepResult

            fig = SweepResult.load(path).plot()
        elif {"lr", "loss"} <= columns:
            from lrsearch.rangetest.result import RangeTestResult

            fig = RangeTestResult.load(path).plot()
        else:
            raise DataError(
                f"{path} is neither a range-test CSV (lr, loss) nor a sweep CSV (value, lr, loss); "
                f"its columns are {', '.join(sorted(map(str, columns)))}"
            )
    return save_figure(figure_of(fig), output)


# --------------------------------------------------------------------------- data


@dataclass
class ReportData:
    """Everything a report shows; any part may be missing.

    Attributes:
        title: the page's title (the study name).
        range_test: a `RangeTestResult`.
        sweeps: `param -> SweepResult`.
        schedule: the chosen `ScheduleSpec`.
        study: the `optuna.Study`.
        trials: one row per trial.
        history: one row per trial and epoch.
        notes: extra lines (warnings of the suggestion, what was skipped).
    """

    title: str = "lrsearch run"
    range_test: Any = None
    sweeps: dict[str, Any] = field(default_factory=dict)
    schedule: Any = None
    study: Any = None
    trials: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    charts: int = 0  # interactive (plotly) charts on the page, which then carries plotly.js


def _try(what: str, load: Callable[[], Any], notes: list[str]) -> Any:
    try:
        return load()
    except (LRSearchError, OSError, ValueError, KeyError) as exc:
        logger.warning("report: cannot read %s: %s", what, exc)
        notes.append(f"Could not read {what}: {exc}")
        return None


def collect(
    folder: str | Path,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    study: Any = None,
) -> ReportData:
    """Read a run folder into a `ReportData` (the study from `study.db` unless given)."""
    folder = Path(folder)
    data = ReportData(title=study_name or folder.resolve().name)
    notes = data.notes
    if (folder / "range_test.csv").exists():
        from lrsearch.rangetest.result import RangeTestResult

        data.range_test = _try("range_test.csv", lambda: RangeTestResult.load(folder / "range_test.csv"), notes)
    for param, name in SWEEP_FILES.items():
        if (folder / name).exists():
            from lrsearch.rangetest.sweeps import SweepResult

            loaded = _try(name, lambda name=name: SweepResult.load(folder / name), notes)
            if loaded is not None:
                data.sweeps[param] = loaded
    if (folder / "schedule.json").exists():
        from lrsearch.export.spec import load_schedule

        data.schedule = _try("schedule.json", lambda: load_schedule(folder / "schedule.json"), notes)
    for attr in ("trials", "history"):
        if (folder / f"{attr}.csv").exists():
            setattr(data, attr, _try(f"{attr}.csv", lambda attr=attr: pd.read_csv(folder / f"{attr}.csv"), notes))
    if study is None:
        if storage is None and (folder / "study.db").exists():
            storage = f"sqlite:///{(folder / 'study.db').resolve()}"
        if storage is not None:
            study = _try("the study", lambda: _load_study(storage, study_name, data.schedule), notes)
    data.study = study
    if study is not None:
        data.title = study.study_name
    return data


def _load_study(storage: str, name: str | None, schedule: Any) -> Any:
    import optuna

    from lrsearch.study.storage import open_storage, study_names

    opened = open_storage(storage, heartbeat_interval=None)
    names = study_names(opened)
    if name is None:
        provenance = getattr(schedule, "provenance", None) or {}
        name = provenance.get("study") if provenance.get("study") in names else None
    if name is None:
        if len(names) != 1:
            raise DataError(f"the storage holds {len(names)} studies; name one with --study")
        name = names[0]
    return optuna.load_study(study_name=name, storage=opened)


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } tr.best td { background: #eaf6ea; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #8a5300; } .muted { color: #777; } .scroll { max-height: 32em; overflow: auto; }
"""


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{figure_to_base64(figure_of(fig))}">'


def _fmt(value: Any) -> str:
    """A value as cell text: floats to 6 significant digits; missing (None, NaN, NaT, NA) blank."""
    try:
        if value is None or (np.ndim(value) == 0 and pd.isna(value)):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def _table(frame: pd.DataFrame, *, cls: str = "", highlight: int | None = None) -> str:
    """An HTML table; row `highlight` (position) gets class `best`."""
    rows = []
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    for i, (_, row) in enumerate(frame.iterrows()):
        mark = ' class="best"' if highlight is not None and i == highlight else ""
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row.to_numpy())
        rows.append(f"<tr{mark}>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _kv(pairs: list[tuple[str, Any]], cls: str = "") -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in pairs
    )
    return f'<table class="{cls}">{rows}</table>'


def _safe_plot(what: str, draw: Callable[[], Any], notes: list[str]) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _img(draw(), what)
    except Exception as exc:  # a plot that cannot be drawn must not cost the page
        logger.warning("report: cannot draw %s: %s", what, exc)
        return f'<p class="note">Could not draw {html.escape(what)}: {html.escape(str(exc))}</p>'


def _chart(what: str, draw: Callable[[], Any], data: ReportData) -> str:
    """An interactive plotly chart as a `<div>` and its drawing script; plotly.js itself
    comes once, in the page's head (`render_html`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = draw()
        div = fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%", default_height="420px",
                          config={"displaylogo": False, "responsive": True})
    except Exception as exc:  # a chart that cannot be drawn must not cost the page
        logger.warning("report: cannot draw %s: %s", what, exc)
        return f'<p class="note">Could not draw {html.escape(what)}: {html.escape(str(exc))}</p>'
    data.charts += 1
    return f'<div class="chart" title="{html.escape(what)}">{div}</div>'


def _section_summary(data: ReportData) -> str:
    pairs: list[tuple[str, Any]] = [("study", data.title)]
    study = data.study
    if study is not None:
        import optuna

        states = pd.Series([t.state.name for t in study.trials]).value_counts().to_dict()
        pairs.append(("trials", ", ".join(f"{n} {s.lower()}" for s, n in states.items()) or "none"))
        pairs.append(("direction", study.direction.name.lower()))
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            best = study.best_trial
            pairs += [("best trial", best.number), ("best value", best.value)]
    elif data.trials is not None and "value" in data.trials and data.trials["value"].notna().any():
        pairs.append(("trials", len(data.trials)))
    provenance = getattr(data.schedule, "provenance", None) or {}
    pairs += _best_metrics(data, provenance)
    if "metric" in provenance:
        pairs.append(("metric", provenance["metric"]))
    bounds = provenance.get("bounds") or {}
    if bounds.get("base_lr") is not None and bounds.get("max_lr") is not None:
        pairs.append(("searched rates", f"{_fmt(float(bounds['base_lr']))} to {_fmt(float(bounds['max_lr']))}"))
    return "<h2>Summary</h2>" + _kv(pairs, "summary")


def _best_trial_number(data: ReportData, provenance: dict[str, Any]) -> int | None:
    import optuna

    study = data.study
    if study is not None and any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        return int(study.best_trial.number)
    trial = provenance.get("trial")
    return None if trial is None else int(trial)


def _best_metrics(data: ReportData, provenance: dict[str, Any]) -> list[tuple[str, Any]]:
    """What Keras logged at the best trial's last epoch (`history.csv`), accuracy included:
    `best trial: val_accuracy` and the like."""
    history, number = data.history, _best_trial_number(data, provenance)
    if history is None or number is None or "trial" not in history or "epoch" not in history:
        return []
    rows = history[history["trial"] == number].sort_values("epoch")
    if rows.empty:
        return []
    last = rows.iloc[-1]
    names = [c for c in history.columns if c not in ("trial", "epoch")]
    return [("epochs run", int(last["epoch"]))] + [(f"best trial: {name}", last[name]) for name in names]


def _section_range_test(data: ReportData) -> str:
    out = ["<h2>Range test</h2>"]
    result = data.range_test
    if result is None:
        return out[0] + '<p class="muted">No range test in this run.</p>'
    s = result.suggestion
    out.append(_safe_plot("range test", result.plot, data.notes))
    out.append(
        _kv(
            [
                ("base_lr (lower bound)", s.base_lr),
                ("max_lr (upper bound)", s.max_lr),
                ("steepest descent", s.steepest_lr),
                ("valley", s.valley_lr),
                ("minimum loss", s.min_loss_lr),
                ("steps", len(result.frame)),
            ],
            "bounds",
        )
    )
    for warning in s.warnings:
        out.append(f'<p class="note">Warning: {html.escape(warning)}</p>')
    return "".join(out)


def _section_sweeps(data: ReportData) -> str:
    out = ["<h2>Sweeps</h2>"]
    if not data.sweeps:
        return out[0] + '<p class="muted">No momentum or weight-decay sweep in this run.</p>'
    for param, result in data.sweeps.items():
        title = param.replace("_", " ")
        out.append(f"<h3>{html.escape(title)}</h3>")
        out.append(_safe_plot(f"{title} sweep", result.plot, data.notes))
        out.append(f"<p>best: {html.escape(_fmt(result.best))}; candidates for the study: "
                   f"{html.escape(', '.join(_fmt(c) for c in result.candidates))}</p>")
        out.append(_table(result.ranking.reset_index(drop=True), cls="ranking", highlight=0))
    return "".join(out)


def _section_schedule(data: ReportData) -> str:
    out = ["<h2>Chosen schedule</h2>"]
    spec = data.schedule
    if spec is None:
        return out[0] + '<p class="muted">No schedule.json in this run.</p>'
    out.append(_safe_plot("chosen schedule", spec.plot, data.notes))
    out.append("<p>The file <code>schedule.json</code>; load it in a training script with "
               "<code>lrsearch.load_schedule(\"schedule.json\").build_optimizer()</code>.</p>")
    schedule = spec.to_dict().get("schedule") or {}
    config = schedule.get("config") if isinstance(schedule, dict) else None
    if isinstance(config, dict):
        out.append(_kv([("schedule", schedule.get("class_name", "?"))]
                       + [(k, v) for k, v in config.items() if not isinstance(v, (dict, list))], "schedule"))
    out.append("<details><summary>schedule.json</summary>"
               f'<pre class="schedule-json">{html.escape(json.dumps(spec.to_dict(), indent=2, default=str))}</pre>'
               "</details>")
    return "".join(out)


def _section_study(data: ReportData) -> str:
    import optuna

    out = ["<h2>Optimization history</h2>"]
    study = data.study
    if study is None:
        return out[0] + '<p class="muted">No study found for this run.</p>'
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return out[0] + '<p class="muted">No finished trial yet.</p>'
    interactive = optuna.visualization.is_available()  # plotly installed
    vis = optuna.visualization if interactive else optuna.visualization.matplotlib
    chart = (lambda what, draw: _chart(what, draw, data)) if interactive else (
        lambda what, draw: _safe_plot(what, draw, data.notes))
    out.append(chart("optimization history", lambda: vis.plot_optimization_history(study)))
    if any(t.intermediate_values for t in study.trials):
        out.append("<h3>Metric per epoch</h3>")
        out.append(chart("metric per epoch", lambda: vis.plot_intermediate_values(study)))
    out.append("<h2>Parameter importances</h2>")
    if len(done) >= MIN_TRIALS_FOR_IMPORTANCE:
        out.append(chart("parameter importances", lambda: vis.plot_param_importances(study)))
    else:
        out.append(f'<p class="muted">{len(done)} finished trials; importances are drawn from '
                   f"{MIN_TRIALS_FOR_IMPORTANCE} on.</p>")
    return "".join(out)


def _section_trials(data: ReportData) -> str:
    out = ["<h2>Trials</h2>"]
    frame = data.trials
    if frame is None and data.study is not None:
        frame = data.study.trials_dataframe()
    if frame is None or frame.empty:
        return out[0] + '<p class="muted">No trials.</p>'
    highlight = None
    if data.study is not None and "number" in frame:
        try:
            matches = np.flatnonzero(frame["number"].to_numpy() == data.study.best_trial.number)
            highlight = int(matches[0]) if len(matches) else None
        except ValueError:  # no finished trial
            highlight = None
    out.append(f'<div class="scroll">{_table(frame, cls="trials", highlight=highlight)}</div>')
    return "".join(out)


def render_html(data: ReportData) -> str:
    """The report page as one self-contained HTML string."""
    import matplotlib

    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        body = [
            f"<h1>{html.escape(data.title)}</h1>",
            f'<p class="muted">lrsearch report, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>',
            _section_summary(data),
            _section_range_test(data),
            _section_sweeps(data),
            _section_schedule(data),
            _section_study(data),
            _section_trials(data),
        ]
    if data.notes:
        body.append("<h2>Notes</h2>" + "".join(f'<p class="note">{html.escape(n)}</p>' for n in data.notes))
    script = ""
    if data.charts:  # plotly.js once, inlined: the charts work offline
        from plotly.offline import get_plotlyjs

        script = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(data.title)} - lrsearch</title><style>{CSS}</style>{script}</head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(
    folder: str | Path,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    study: Any = None,
    output: str | Path | None = None,
) -> Path:
    """Write `report.html` for a run folder.

    Args:
        folder: the run's output folder.
        storage: the study's storage URL; default `folder/study.db` when it exists.
        study_name: which study of the storage (default: the one `schedule.json` names,
            or the storage's only study).
        study: an `optuna.Study` to use instead of reading the storage.
        output: the page to write; default `folder/report.html`.

    Returns:
        The path of the page.
    """
    folder = Path(folder)
    data = collect(folder, storage=storage, study_name=study_name, study=study)
    path = Path(output) if output else folder / "report.html"
    write_text(path, render_html(data))
    logger.info("wrote %s", path)
    return path
