"""One self-contained HTML page per run: the chosen schedule first, then how it was found.

`write_report(folder)` reads what a run wrote into its folder (`lrsearch.run.report_data`)
and writes `report.html` next to it, in the order a user reads it: the schedule to take
away (the final fit's when the run had one) with its rates, the study (the rates it
searched, after any widening, and its best trial), the final fit's curve and files, the
range test and sweeps, the study's charts and the trials. Plots are embedded as base64
PNG, tables drawn by `lrsearch.viz.tables` (the notebook display's number format), no
external file or network access, so the page can be mailed or archived on its own. A
missing part becomes a short note, a missing value an empty cell.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrsearch.core.errors import DataError, first_line
from lrsearch.core.fileio import write_text
from lrsearch.run.report_data import (SWEEP_FILES, ChosenSchedule, ReportData, best_metrics, chosen_schedule,
                                      collect, last_epoch, searched_range, trial_columns)
from lrsearch.run.summary import fit_line
from lrsearch.viz.plots import figure_of, figure_to_base64, save_figure
from lrsearch.viz.tables import Html, cell, frame_table, pairs_table

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


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } table.trials td { white-space: nowrap; }
th { background: #f4f4f4; } tr.best td { background: #eaf6ea; font-weight: 600; }
table.chosen { font-size: 1em; } table.chosen td, table.summary td, table.files td { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; white-space: pre-wrap; }
.note { color: #8a5300; } .muted { color: #777; } .scroll { max-height: 32em; overflow-y: auto; }
ul.warnings { color: #8a5300; margin-top: 0; } details { margin: 0.6em 0; } summary { cursor: pointer; }
"""


FILE_ROLES = {  # the final fit's files (`lrsearch.study.final_fit.FILES`)
    "final_model.keras": "the model trained with the chosen schedule: keras.saving.load_model(...)",
    "final_schedule.json": "the schedule it was trained with: lrsearch.load_schedule(...)",
    "final_history.csv": "its metrics per epoch",
}


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _muted(text: str) -> str:
    return f'<p class="muted">{html.escape(text)}</p>'


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{figure_to_base64(figure_of(fig))}">'


def _safe_plot(what: str, draw: Callable[[], Any]) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _img(draw(), what)
    except Exception as exc:  # a plot that cannot be drawn must not cost the page
        logger.warning("report: cannot draw %s: %s", what, exc)
        return _note(f"Could not draw {what}: {exc}")


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
        return _note(f"Could not draw {what}: {exc}")
    data.charts += 1
    return f'<div class="chart" title="{html.escape(what)}">{div}</div>'


def _arrow(values: tuple[float, ...]) -> str:
    return " → ".join(cell(v) for v in values)


def _plot_history(frame: pd.DataFrame, title: str) -> Any:
    """Loss curves per epoch (left axis) and accuracies (right axis) of one training run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    epochs = frame["epoch"].to_numpy()
    lines = []
    for i, name in enumerate(c for c in frame.columns if "loss" in c):
        lines += ax.plot(epochs, frame[name], marker="o", ms=3, color=f"C{i}", label=name)
    accuracies = [c for c in frame.columns if "acc" in c]
    if accuracies:
        right = ax.twinx()
        for i, name in enumerate(accuracies):
            lines += right.plot(epochs, frame[name], ls="--", color=f"C{i + 4}", label=name)
        right.set_ylabel("accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="outside lower center",
               ncols=min(len(lines), 4))
    return fig


def _section_chosen(data: ReportData, chosen: ChosenSchedule | None) -> str:
    out = ["<h2>Chosen schedule</h2>"]
    if chosen is None:
        return out[0] + _muted("No schedule.json in this run.")
    spec = chosen.spec
    pairs: list[tuple[str, Any]] = [
        ("file", Html(f"<code>{html.escape(chosen.file)}</code>")),
        ("family", f"{chosen.family} ({type(spec.schedule).__name__})"
         if not isinstance(spec.schedule, float) else chosen.family),
        ("learning rate (start → peak → end)", _arrow((chosen.start_lr, chosen.peak_lr, chosen.end_lr))),
    ]
    if chosen.momentum:
        pairs.append((spec.momentum_name, _arrow(chosen.momentum)))
    pairs.append(("weight decay", _arrow(chosen.weight_decay) if any(chosen.weight_decay) else "none"))
    pairs += [("optimizer", chosen.optimizer), ("epochs", chosen.epochs), ("steps per epoch", chosen.steps_per_epoch)]
    if chosen.batch_size is not None:
        pairs.append(("batch size", chosen.batch_size))
    provenance = spec.provenance or {}
    if chosen.trial is not None:
        found = f"trial {chosen.trial} of study {provenance.get('study', data.title)}"
        if provenance.get("value") is not None:
            found += f", {provenance.get('metric', 'value')} {cell(provenance['value'])}"
        if chosen.file == "final_schedule.json" and data.schedule is not None:
            found += f" in {data.schedule.epochs}-epoch trials, trained again over {chosen.epochs} in the final fit"
        pairs.append(("found by", found))
    out.append(pairs_table([(k, v) for k, v in pairs if v is not None], cls="chosen"))
    out.append(_safe_plot("chosen schedule", spec.plot))
    name = chosen.file
    out.append(f"<p>Load it in a training script with <code>spec = lrsearch.load_schedule(\"{name}\")</code>, "
               "then <code>model.compile(optimizer=spec.build_optimizer(), ...)</code> and "
               f"<code>{html.escape(fit_line(spec))}</code>.</p>")
    out.append(f"<details><summary>{html.escape(name)}</summary>"
               f'<pre class="schedule-json">{html.escape(json.dumps(spec.to_dict(), indent=2, default=str))}</pre>'
               "</details>")
    return "".join(out)


def _section_study(data: ReportData) -> str:
    pairs: list[tuple[str, Any]] = [("study", data.title)]
    study, trials = data.study, data.trials
    if study is not None:
        states = pd.Series([t.state.name for t in study.trials], dtype=object).value_counts().to_dict()
        pairs.append(("trials", ", ".join(f"{n} {s.lower()}" for s, n in states.items()) or "none"))
    elif trials is not None and "state" in trials:
        pairs.append(("trials", ", ".join(f"{n} {str(s).lower()}" for s, n in trials["state"].value_counts().items())))
    provenance = getattr(data.schedule, "provenance", None) or {}
    metric = data.meta.get("metric") or provenance.get("metric")
    direction = data.meta.get("direction") or provenance.get("direction")
    if metric:
        pairs.append(("metric", f"{metric} ({direction})" if direction else metric))
    if provenance.get("trial") is not None:
        pairs += [("best trial", provenance["trial"]), ("best value", provenance.get("value"))]
    if data.schedule is not None and data.schedule.epochs:
        pairs.append(("epochs per trial", data.schedule.epochs))
    pairs += [(f"best trial: {name}", value) for name, value in best_metrics(data)]
    searched = searched_range(data)
    extra = ""
    if searched is not None:
        if searched.low is not None:
            pairs.append(("rates searched", f"{cell(searched.low)} to {cell(searched.high)}"
                          + (" (after widening)" if searched.widened else "")))
        for name, (low, high) in searched.params.items():
            pairs.append((f"{name} range", f"{cell(low)} to {cell(high)}"))
        if searched.tried is not None:
            pairs.append(("rates the trials drew", f"{cell(searched.tried[0])} to {cell(searched.tried[1])}"))
        if searched.suggested is not None:
            pairs.append(("range test suggested", f"{cell(searched.suggested[0])} to {cell(searched.suggested[1])}"))
        items = [f"after {e.get('after_trials', '?')} trials, the {e.get('side', '?')} of "
                 f"{e.get('param', '?')}'s range: {cell(e['old'][0])} to {cell(e['old'][1])} → "
                 f"{cell(e['new'][0])} to {cell(e['new'][1])}"
                 for e in searched.widened if e.get("old") and e.get("new")]
        if items:
            extra = ("<p>The best trials sat at an edge of the range, which was widened:</p><ul>"
                     + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    return "<h2>Study</h2>" + pairs_table(pairs, cls="summary") + extra


def _section_final_fit(data: ReportData) -> str:
    if not data.final_files and data.final_history is None:
        return ""
    out = ["<h2>Final fit</h2>"]
    final = data.final_schedule
    if final is not None:
        trial = (final.provenance or {}).get("trial")
        out.append(f"<p>The best trial{f' ({trial})' if trial is not None else ''}'s schedule trained on a "
                   f"fresh model over {cell(final.epochs)} epochs.</p>")
    rows = [(Html(f"<code>{html.escape(name)}</code>"), f"{path.stat().st_size / 1024:.1f} KiB",
             FILE_ROLES.get(name, "")) for name, path in data.final_files.items()]
    if rows:
        out.append(frame_table(pd.DataFrame(rows, columns=["file", "size", "what it is"]), cls="files"))
    history = data.final_history
    if history is not None and not history.empty and "epoch" in history:
        out.append(_safe_plot("final fit", lambda: _plot_history(history, "final fit")))
        out.append(pairs_table([(f"last epoch: {k}", v) for k, v in last_epoch(history)], cls="summary"))
    return "".join(out)


def _range_test_figure(result: Any) -> Any:
    """The range-test plot without its warnings, which the page lists in full beneath it."""
    fig = figure_of(result.plot())
    for ax in fig.axes:
        for text in list(ax.texts):
            text.remove()
    return fig


def _section_range_test(data: ReportData) -> str:
    out = ["<h2>Range test</h2>"]
    result = data.range_test
    if result is None:
        return out[0] + _muted("No range test in this run.")
    s = result.suggestion
    out.append(_safe_plot("range test", lambda: _range_test_figure(result)))
    if s.warnings:
        out.append('<ul class="warnings">' + "".join(f"<li>Warning: {html.escape(w)}</li>" for w in s.warnings)
                   + "</ul>")
    out.append(pairs_table([("base_lr (lower bound)", s.base_lr), ("max_lr (upper bound)", s.max_lr),
                            ("steepest descent", s.steepest_lr), ("valley", s.valley_lr),
                            ("minimum loss", s.min_loss_lr), ("steps", len(result.frame))], cls="bounds"))
    return "".join(out)


def _section_sweeps(data: ReportData) -> str:
    out = ["<h2>Sweeps</h2>"]
    if not data.sweeps:
        return out[0] + _muted("No momentum or weight-decay sweep in this run.")
    for param, result in data.sweeps.items():
        title = param.replace("_", " ")
        out.append(f"<h3>{html.escape(title)}</h3>")
        out.append(_safe_plot(f"{title} sweep", result.plot))
        out.append(f"<p>best: {cell(result.best)}; candidates for the study: "
                   f"{', '.join(cell(c) for c in result.candidates)}</p>")
        out.append(frame_table(result.ranking.reset_index(drop=True), cls="ranking", highlight=0))
    return "".join(out)


def _section_charts(data: ReportData) -> str:
    import optuna

    out = ["<h2>Optimization history</h2>"]
    study = data.study
    if study is None:
        return out[0] + _muted("No study found for this run.")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return out[0] + _muted("No finished trial yet.")
    interactive = optuna.visualization.is_available()  # plotly installed
    vis = optuna.visualization if interactive else optuna.visualization.matplotlib
    chart = (lambda what, draw: _chart(what, draw, data)) if interactive else _safe_plot
    out.append(chart("optimization history", lambda: vis.plot_optimization_history(study)))
    if any(t.intermediate_values for t in study.trials):
        out.append("<h3>Metric per epoch</h3>")
        out.append(chart("metric per epoch", lambda: vis.plot_intermediate_values(study)))
    out.append("<h2>Parameter importances</h2>")
    if len(done) >= MIN_TRIALS_FOR_IMPORTANCE:
        out.append(chart("parameter importances", lambda: vis.plot_param_importances(study)))
    else:
        out.append(_muted(f"{len(done)} finished trials; importances are drawn from "
                          f"{MIN_TRIALS_FOR_IMPORTANCE} on."))
    return "".join(out)


def _section_trials(data: ReportData) -> str:
    out = ["<h2>Trials</h2>"]
    frame = data.trials
    if frame is None or frame.empty:
        return out[0] + _muted("No trials.")
    highlight = None
    best = getattr(data.schedule, "provenance", None) or {}
    if best.get("trial") is not None and "number" in frame:
        matches = np.flatnonzero(frame["number"].to_numpy() == int(best["trial"]))
        highlight = int(matches[0]) if len(matches) else None
    main, rest = trial_columns(frame)
    out.append(f'<div class="scroll">{frame_table(main, cls="trials", highlight=highlight)}</div>')
    out.append("<details><summary>More columns (epochs run, pruning, retries, failures, start times)</summary>"
               f'<div class="scroll">{frame_table(rest, cls="trials-more", highlight=highlight)}</div></details>')
    return "".join(out)


def render_html(data: ReportData) -> str:
    """The report page as one self-contained HTML string."""
    import matplotlib

    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        chosen = chosen_schedule(data)
        body = [
            f"<h1>{html.escape(data.title)}</h1>",
            _muted(f"lrsearch report, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"),
            _section_chosen(data, chosen),
            _section_study(data),
            _section_final_fit(data),
            _section_range_test(data),
            _section_sweeps(data),
            _section_charts(data),
            _section_trials(data),
        ]
    if data.notes:
        body.append("<h2>Notes</h2>" + "".join(_note(n) for n in data.notes))
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
