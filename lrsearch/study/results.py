"""A study's results: the tables of its trials, the winner's schedule, and loading them.

Both backends record each trial the same way (the attribute names below); the tables
(`trials_frame`, `history_frame`) and the winner (`best_trial`, `best_spec`) are built
from those records alone, so a study can be read back from its storage by another
process (`load_result`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from lrsearch.core.errors import StorageError
from lrsearch.core.fileio import write_csv
from lrsearch.export.spec import ScheduleSpec
from lrsearch.study.storage import open_storage, storage_url

__all__ = [
    "TuneResult",
    "best_spec",
    "best_trial",
    "history_frame",
    "load_result",
    "result_from_study",
    "result_from_trials",
    "save_tables",
    "trials_frame",
]

logger = logging.getLogger(__name__)

# Study / trial user attributes written by lrsearch (JSON values).
ATTR = "lrsearch"  # study: metric, direction, space, bounds, suggestion, backend
HISTORY = "history"  # trial: list of per-epoch rows
SPEC = "spec"  # trial: the trial's ScheduleSpec.to_dict()
EPOCHS_RUN = "epochs_run"
RUNG = "rung"  # trial of a schedule-halving bracket: {"index", "epochs", "top"} (lrsearch.study.halving)
FAILURE = "failure"
INTERRUPTED = "interrupted"  # trial: failed by Ctrl-C or SIGTERM (its parameters run again on a rerun)


@dataclass
class TuneResult:
    """What a study found.

    Attributes:
        study: the `optuna.study.Study` (or, with the KerasTuner backend, the tuner).
        trials: one row per trial: `number, state, value, epochs_run, pruned_at,
            duration_s, family, retry_of, failure, started, rung (schedule-halving rung,
            else empty), params_<name>...`.
        history: one row per trial and epoch: `trial, epoch, lr, momentum` and every
            metric Keras logged (`loss, val_loss, accuracy, ...`), at the epoch's end.
        best: the best complete trial's schedule as a `ScheduleSpec` (its provenance
            names the study, trial, metric and value), or `None` if no trial completed.
        metric, direction: what was optimized.
    """

    study: Any
    trials: pd.DataFrame
    history: pd.DataFrame
    best: ScheduleSpec | None
    metric: str = "val_loss"
    direction: str = "minimize"

    @property
    def best_trial(self) -> int | None:
        """Number of the best complete trial (`None` if none completed)."""
        if self.best is None:
            return None
        return (self.best.provenance or {}).get("trial")

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write `trials.csv`, `history.csv` and (if a trial completed) `schedule.json`.

        Returns:
            `{"trials": path, "history": path, "schedule": path}` of the files written.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"trials": out / "trials.csv", "history": out / "history.csv"}
        write_csv(self.trials, paths["trials"])
        write_csv(self.history, paths["history"])
        if self.best is not None:
            paths["schedule"] = out / "schedule.json"
            self.best.save(paths["schedule"])
        return paths

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import tune_html  # notebook display
        from lrsearch.viz.plots import png_tag
        return tune_html(self, png_tag(self.best.plot) if self.best is not None else "")


def save_tables(result: TuneResult, out_dir: str | Path) -> TuneResult:
    """`result.save(out_dir)`, logging (not raising) a folder that cannot be written: the
    trials are safe in the study's storage, and the tables can be written again."""
    try:
        result.save(out_dir)
    except OSError as exc:
        logger.warning("could not write the tables to %s: %s", out_dir, exc)
    return result


def load_result(storage: str | optuna.storages.BaseStorage, study_name: str) -> TuneResult:
    """Rebuild a study's `TuneResult` from its storage alone.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name.
    """
    opened = open_storage(storage, heartbeat_interval=None)
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError as exc:
        names = [s.study_name for s in opened.get_all_studies()]
        raise StorageError(
            f"no study {study_name!r} in {storage_url(storage)}; it holds: "
            + (", ".join(names) if names else "no studies")
        ) from exc
    return result_from_study(study)


def result_from_study(study: optuna.study.Study) -> TuneResult:
    """The tables and best schedule of an Optuna study run by `tune`."""
    meta = dict(study.user_attrs.get(ATTR, {}))
    if meta.get("storage"):  # where the study is now (a run folder may have moved), not where it was made
        meta["storage"] = storage_url(study._storage)
    metric = meta.get("metric", "value")
    direction = meta.get("direction", study.direction.name.lower())
    return result_from_trials(study, study.get_trials(deepcopy=False), study_name=study.study_name,
                              metric=metric, direction=direction, meta=meta)


def result_from_trials(study: Any, frozen: Sequence[Any], *, study_name: str, metric: str,
                       direction: str, meta: Mapping[str, Any]) -> TuneResult:
    """A `TuneResult` from trials recorded as `FrozenTrial`s (or objects with the same
    fields): what both backends return."""
    winner = best_trial(frozen, direction)
    best = None if winner is None else best_spec(
        winner.user_attrs[SPEC], study_name, winner.number, metric, winner.value, direction, meta)
    return TuneResult(study=study, trials=trials_frame(frozen), history=history_frame(frozen),
                      best=best, metric=metric, direction=direction)


def best_trial(frozen: Sequence[Any], direction: str) -> Any:
    """The complete trial with the best finite value and a recorded schedule (`None` if
    there is none); the first of equals wins. A trial of a lower schedule-halving rung ran
    a shorter schedule than the study's and is never the best."""
    complete = [t for t in frozen if t.state == optuna.trial.TrialState.COMPLETE
                and t.value is not None and math.isfinite(t.value) and SPEC in t.user_attrs
                and t.user_attrs.get(RUNG, {}).get("top", True)]
    if not complete:
        return None
    pick = min if direction == "minimize" else max
    return pick(complete, key=lambda t: t.value)


def best_spec(spec_dict: Mapping[str, Any], study_name: str, number: int, metric: str,
              value: float, direction: str, meta: Mapping[str, Any]) -> ScheduleSpec:
    """The winning trial's `ScheduleSpec` with provenance naming where it came from."""
    spec = ScheduleSpec.from_dict(dict(spec_dict))
    provenance = dict(spec.provenance or {})
    provenance.update(
        study=study_name,
        trial=int(number),
        metric=metric,
        value=float(value),
        direction=direction,
        backend=meta.get("backend", "optuna"),
    )
    space = meta.get("space") or {}
    if meta.get("bounds"):
        provenance["bounds"] = dict(meta["bounds"])
    elif space:
        provenance["bounds"] = {"base_lr": space.get("base_lr"), "max_lr": space.get("max_lr")}
    if meta.get("suggestion"):
        provenance["suggestion"] = meta["suggestion"]
    if meta.get("widened"):
        provenance["widened"] = list(meta["widened"])
    if meta.get("storage"):
        provenance["storage"] = meta["storage"]
    spec.provenance = provenance
    return spec


def trials_frame(frozen: Sequence[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """One row per trial (see `TuneResult.trials`)."""
    rows = []
    param_names: list[str] = []
    for t in frozen:
        for name in t.params:
            if name not in param_names:
                param_names.append(name)
    for t in frozen:
        pruned_at = max(t.intermediate_values) if (
            t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values
        ) else None
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs_run": t.user_attrs.get(EPOCHS_RUN, len(t.user_attrs.get(HISTORY, []))),
            "pruned_at": pruned_at,
            "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            "family": t.params.get("family"),
            "retry_of": t.system_attrs.get("failed_trial"),
            "failure": t.user_attrs.get(FAILURE),
            "started": t.datetime_start,
            "rung": t.user_attrs.get(RUNG, {}).get("index"),
        }
        for name in param_names:
            row[f"params_{name}"] = t.params.get(name)
        rows.append(row)
    columns = ["number", "state", "value", "epochs_run", "pruned_at", "duration_s", "family",
               "retry_of", "failure", "started", "rung", *(f"params_{n}" for n in param_names)]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("value", "duration_s", "pruned_at", "retry_of", "rung"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["rung"] = frame["rung"].astype("Int64")
    frame["pruned_at"] = frame["pruned_at"].astype("Int64")
    frame["retry_of"] = frame["retry_of"].astype("Int64")
    frame["epochs_run"] = frame["epochs_run"].astype("int64")
    return frame.sort_values("number", ignore_index=True)


def history_frame(frozen: Sequence[Any]) -> pd.DataFrame:
    """One row per trial and epoch (see `TuneResult.history`)."""
    rows = []
    for t in frozen:
        for rec in t.user_attrs.get(HISTORY, []):
            rows.append({"trial": t.number, **rec})
    first = ["trial", "epoch", "lr", "momentum"]
    if not rows:
        return pd.DataFrame(columns=first)
    frame = pd.DataFrame(rows)
    rest = sorted(c for c in frame.columns if c not in first)
    frame = frame[[c for c in first if c in frame.columns] + rest]
    return frame.sort_values(["trial", "epoch"], ignore_index=True)
