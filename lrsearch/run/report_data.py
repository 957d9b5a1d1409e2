"""What a run report shows, read from the run folder apart from how it is drawn.

`collect(folder)` reads the files a run wrote (`range_test.csv`, the sweeps,
`trials.csv`, `history.csv`, `schedule.json`, the final fit's `final_schedule.json` and
`final_history.csv`, and the study in `study.db`) into a `ReportData`; a file that cannot
be read becomes a note. Three readings the page leads with are computed here, from the
files themselves rather than from the trials' per-epoch records:

- `chosen_schedule`: the schedule the user takes away (`final_schedule.json` when the run
  had a final fit, else `schedule.json`), its rates from the spec's own step table;
- `searched_range`: the rates the study could draw, after any widening
  (`lrsearch.study.widening`, kept in the study's user attributes), and those it drew;
- `best_metrics`: what Keras logged at the best trial's last epoch.

`trial_columns` splits the trials table into the columns a user reads and the rest.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrsearch.core.errors import ConfigError, DataError, LRSearchError
from lrsearch.viz.tables import Html

__all__ = ["SWEEP_FILES", "TRIAL_COLUMNS", "ChosenSchedule", "ReportData", "SearchedRange",
           "best_metrics", "best_trial_number", "chosen_schedule", "collect", "last_epoch", "searched_range",
           "trial_columns"]

logger = logging.getLogger(__name__)

SWEEP_FILES = {"momentum": "sweep_momentum.csv", "weight_decay": "sweep_weight_decay.csv"}
FULL_TABLE_STEPS = 200_000
"""Schedules up to this many steps are evaluated at every step; longer ones at 4096 points."""
_NOT_METRICS = ("trial", "epoch", "lr", "momentum")  # the schedule's values, not what it achieved
TRIAL_COLUMNS = ("number", "state", "value")
"""The trials table's first columns; the schedule's parameters and the seconds follow,
every other column is behind a toggle."""


@dataclass
class ReportData:
    """Everything a report shows; any part may be missing.

    Attributes:
        title: the page's title (the study name).
        range_test: a `RangeTestResult`.
        sweeps: `param -> SweepResult`.
        schedule: the study's winner (`schedule.json`), a `ScheduleSpec`.
        final_schedule: the final fit's schedule (`final_schedule.json`).
        study: the `optuna.Study`.
        meta: the study's own record (its user attribute `lrsearch`: metric, space, widening).
        trials: one row per trial.
        history: one row per trial and epoch.
        final_history: the final fit's epochs (`final_history.csv`).
        final_files: name -> path of the final fit's files present in the folder.
        notes: extra lines (what could not be read or drawn).
    """

    title: str = "lrsearch run"
    range_test: Any = None
    sweeps: dict[str, Any] = field(default_factory=dict)
    schedule: Any = None
    final_schedule: Any = None
    study: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    trials: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    final_history: pd.DataFrame | None = None
    final_files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    charts: int = 0  # interactive (plotly) charts on the page, which then carries plotly.js


@dataclass(frozen=True)
class ChosenSchedule:
    """The schedule a run hands over, in the terms a user reads it in.

    `start_lr`, `peak_lr`, `end_lr` are the rate at the first step, its highest and the
    rate at the last step; `momentum` and `weight_decay` the values along the run
    (start, turning point, end; one value when constant)."""

    file: str
    spec: Any
    family: str
    start_lr: float
    peak_lr: float
    end_lr: float
    momentum: tuple[float, ...]
    weight_decay: tuple[float, ...]
    optimizer: str
    epochs: int | None
    steps_per_epoch: int | None
    batch_size: int | None  # the spec's, else the range test's
    trial: int | None


@dataclass(frozen=True)
class SearchedRange:
    """The rates a study searched.

    Attributes:
        low, high: the lowest and highest rate any rate parameter could take, after widening.
        params: each rate parameter's `(low, high)` at the end of the study.
        suggested: the range test's bounds the study started from.
        widened: the widening events (`after_trials`, `param`, `side`, `old`, `new`).
        tried: the lowest and highest rate the trials drew.
    """

    low: float | None
    high: float | None
    params: dict[str, tuple[float, float]]
    suggested: tuple[float, float] | None
    widened: list[dict[str, Any]]
    tried: tuple[float, float] | None


def _try(what: str, load: Callable[[], Any], notes: list[str]) -> Any:
    try:
        return load()
    except (LRSearchError, OSError, ValueError, KeyError) as exc:
        logger.warning("report: cannot read %s: %s", what, exc)
        notes.append(f"Could not read {what}: {exc}")
        return None


def _csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if "started" in frame:  # Optuna's start times, to the second on the page
        frame["started"] = pd.to_datetime(frame["started"], errors="coerce")
    return frame


def collect(
    folder: str | Path,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    study: Any = None,
) -> ReportData:
    """Read a run folder into a `ReportData` (the study from `study.db` unless given)."""
    from lrsearch.export.spec import load_schedule
    from lrsearch.study.final_fit import FILES

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
    for attr, name in (("schedule", "schedule.json"), ("final_schedule", "final_schedule.json")):
        if (folder / name).exists():
            setattr(data, attr, _try(name, lambda name=name: load_schedule(folder / name), notes))
    for attr, name in (("trials", "trials.csv"), ("history", "history.csv"), ("final_history", "final_history.csv")):
        if (folder / name).exists():
            setattr(data, attr, _try(name, lambda name=name: _csv(folder / name), notes))
    data.final_files = {name: folder / name for name in FILES if (folder / name).exists()}
    if study is None:
        if storage is None and (folder / "study.db").exists():
            storage = f"sqlite:///{(folder / 'study.db').resolve()}"
        if storage is not None:
            study = _try("the study", lambda: _load_study(storage, study_name, data.schedule), notes)
    data.study = study
    if study is not None:
        from lrsearch.study.results import ATTR

        data.title = study.study_name
        data.meta = dict(study.user_attrs.get(ATTR) or {})
        _locate(data.schedule, study)
        if data.trials is None:  # a study whose tables were not written here
            from lrsearch.study.results import trials_frame

            data.trials = _try("the study's trials", lambda: trials_frame(study.trials), notes)
    return data


def _locate(schedule: Any, study: Any) -> None:
    """The storage in `schedule`'s provenance as where its study is now: a run folder moved
    since `schedule.json` was written names its new place."""
    from lrsearch.study.storage import storage_url

    provenance = getattr(schedule, "provenance", None)
    if isinstance(provenance, dict) and provenance.get("storage") and provenance.get("study") == study.study_name:
        provenance["storage"] = storage_url(study._storage)


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


def _path(values: np.ndarray) -> tuple[float, ...]:
    """A series as its start, turning point and end; one value when constant."""
    start, end = float(values[0]), float(values[-1])
    if np.allclose(values, start, rtol=1e-9, atol=0.0):
        return (start,)
    low, high = float(values.min()), float(values.max())
    turn = low if low < min(start, end) else high if high > max(start, end) else None
    return (start, end) if turn is None else (start, turn, end)


def _table(spec: Any) -> pd.DataFrame | None:
    total = spec.total_steps
    if total is None:
        return None
    return spec.table(points=None if total <= FULL_TABLE_STEPS else 4096)


def chosen_schedule(data: ReportData) -> ChosenSchedule | None:
    """The schedule the run hands over: the final fit's when it had one, else the study's."""
    file, spec = ("final_schedule.json", data.final_schedule) if data.final_schedule is not None else (
        "schedule.json", data.schedule)
    if spec is None:
        return None
    provenance = spec.provenance or {}
    try:
        steps = _table(spec)
    except ConfigError as exc:
        data.notes.append(f"Could not evaluate {file}: {exc}")
        steps = None
    if steps is not None and len(steps):
        lr = steps["lr"].to_numpy()
        start, peak, end = float(lr[0]), float(lr.max()), float(lr[-1])
        momentum, decay = _path(steps["momentum"].to_numpy()), _path(steps["weight_decay"].to_numpy())
    else:  # a constant rate of no known length
        start = peak = end = float(spec.schedule) if isinstance(spec.schedule, float) else float("nan")
        momentum = () if not isinstance(spec.momentum, float) else (spec.momentum,)
        decay = () if not isinstance(spec.weight_decay, float) else (spec.weight_decay,)
    family = provenance.get("family") or type(spec.schedule).__name__
    batch = getattr(spec, "batch_size", None) or (getattr(data.range_test, "meta", None) or {}).get("batch_size")
    trial = provenance.get("trial")
    return ChosenSchedule(
        file=file, spec=spec, family=str(family).replace("_", "-"), start_lr=start, peak_lr=peak, end_lr=end,
        momentum=momentum, weight_decay=decay, optimizer=spec.optimizer, epochs=spec.epochs,
        steps_per_epoch=spec.steps_per_epoch, batch_size=None if batch is None else int(batch),
        trial=None if trial is None else int(trial))


def _is_rate(name: str) -> bool:
    """A study's learning-rate parameter (`oc_max_lr`, `clr_base_lr`, `sf_lr`, ...:
    `lrsearch.study.space` names them all `*_lr`)."""
    return name.endswith("_lr")


def _suggested(meta: dict[str, Any], provenance: dict[str, Any]) -> tuple[float, float] | None:
    for bounds in (meta.get("bounds"), meta.get("suggestion"), provenance.get("bounds")):
        if bounds and bounds.get("base_lr") is not None and bounds.get("max_lr") is not None:
            return float(bounds["base_lr"]), float(bounds["max_lr"])
    return None


def _tried(trials: pd.DataFrame | None) -> tuple[float, float] | None:
    if trials is None:
        return None
    columns = [c for c in trials.columns if str(c).startswith("params_") and _is_rate(str(c))]
    drawn = pd.to_numeric(trials[columns].stack(), errors="coerce").dropna() if columns else pd.Series([])
    return (float(drawn.min()), float(drawn.max())) if len(drawn) else None


def searched_range(data: ReportData) -> SearchedRange | None:
    """The rates the study searched: its space as last widened (the study's record, else
    the winner's provenance), and the rates its trials drew."""
    provenance = getattr(data.schedule, "provenance", None) or {}
    meta = data.meta
    widened = list(meta.get("widened") or provenance.get("widened") or [])
    suggested = _suggested(meta, provenance)
    params: dict[str, tuple[float, float]] = {}
    if meta.get("space"):
        from lrsearch.study.space import SearchSpace

        try:
            space = SearchSpace.from_dict(meta["space"])
        except (ConfigError, TypeError) as exc:
            data.notes.append(f"Could not read the study's search space: {exc}")
        else:
            params = {p.name: (float(p.low), float(p.high)) for p in space.params()
                      if p.kind == "float" and _is_rate(p.name)}
    if params:
        low, high = min(lo for lo, _ in params.values()), max(hi for _, hi in params.values())
    else:  # no study record: the suggested bounds and every widening's new range
        ranges = ([suggested] if suggested else []) + [tuple(e["new"]) for e in widened if e.get("new")]
        low = min((float(r[0]) for r in ranges), default=None)
        high = max((float(r[1]) for r in ranges), default=None)
    tried = _tried(data.trials)
    if low is None and tried is None:
        return None
    return SearchedRange(low=low, high=high, params=params, suggested=suggested, widened=widened, tried=tried)


def best_trial_number(data: ReportData) -> int | None:
    """The study's best complete trial, else the one the schedule names."""
    import optuna

    study = data.study
    if study is not None and any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        return int(study.best_trial.number)
    trial = (getattr(data.schedule, "provenance", None) or {}).get("trial")
    return None if trial is None else int(trial)


def last_epoch(history: pd.DataFrame | None, trial: int | None = None) -> list[tuple[str, Any]]:
    """`(metric, value)` at the last epoch of `history` (of one trial's rows when given),
    the schedule's own columns (`lr`, `momentum`) left out: they say where it ended, not
    what it achieved."""
    if history is None or "epoch" not in history:
        return []
    rows = history if trial is None or "trial" not in history else history[history["trial"] == trial]
    if rows.empty:
        return []
    last = rows.sort_values("epoch").iloc[-1]
    return [(name, last[name]) for name in history.columns if name not in _NOT_METRICS]


def best_metrics(data: ReportData) -> list[tuple[str, Any]]:
    """What Keras logged at the best trial's last epoch (`history.csv`), accuracy included."""
    number = best_trial_number(data)
    if number is None or data.history is None or "trial" not in data.history:
        return []
    return last_epoch(data.history, number)


def _header(name: Any) -> Html:
    """A parameter's name as a column header that may break after its underscores."""
    return Html(html.escape(str(name).removeprefix("params_")).replace("_", "_<wbr>"))


def trial_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials as a user reads them (number, state, value, the schedule's parameters
    without their `params_` prefix, whole seconds), and every other column by number."""
    params = [c for c in frame.columns if str(c).startswith("params_")]
    main = frame[[c for c in TRIAL_COLUMNS if c in frame] + params].rename(columns=_header)
    if "duration_s" in frame:
        main["seconds"] = pd.to_numeric(frame["duration_s"], errors="coerce").round().astype("Int64")
    rest = [c for c in frame.columns if c not in TRIAL_COLUMNS and c not in params]
    return main, frame[(["number"] if "number" in frame else []) + rest]
