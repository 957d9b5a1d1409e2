"""The few lines a finished run ends with: what was chosen, how good it is, where it is,
what to do next.

    schedule: one-cycle, lr 0.00173 -> 0.0432 -> 1.73e-07 (peak at 30%, cos), momentum 0.95 -> 0.85 -> 0.95, weight decay 0.0001, SGD, 10 epochs
    val_loss 0.183 (first trial 0.212), val_accuracy 0.947 (first trial 0.931): trial #7, best of 20 (14 complete, 6 pruned)
    files in runs/digits: schedule.json, report.html, trials.csv, history.csv, range_test.csv, range_test.png, study.db
    next: lrsearch dashboard --out runs/digits
          spec = lrsearch.load_schedule("runs/digits/schedule.json"); model.compile(optimizer=spec.build_optimizer(), ...); model.fit(..., batch_size=32, epochs=10, callbacks=[spec.callback()])

"First trial" is the study's trial #0: in a new Optuna study, the schedule suggested
from the range test alone, so the line says what the search added to it. Numbers come
from the run's tables (`TuneResult.trials`, `.history`) and its `ScheduleSpec`; nothing
here trains or reads a storage. The `model.fit` line names the batch size and epochs the
schedule was sized for (a schedule counts steps: another batch size runs another number);
a schedule of data that came batched has no batch size to name.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrsearch.core import progress

__all__ = ["FILE_ORDER", "describe_schedule", "fit_line", "log_summary", "summary_lines"]

FILE_ORDER = ("final_model.keras", "final_schedule.json", "schedule.json", "report.html", "trials.csv",
              "history.csv", "final_history.csv", "range_test.csv", "range_test.png", "sweep_momentum.csv",
              "sweep_momentum.png", "sweep_weight_decay.csv", "sweep_weight_decay.png", "study.db", "budget.json")
"""The files a run folder may hold, most useful first."""

logger = logging.getLogger("lrsearch")

_FAMILIES = {"one_cycle": "one-cycle", "cyclic": "cyclic", "wsd": "warmup-stable-decay",
             "schedule_free": "schedule-free"}


def _g(value: Any) -> str:
    """A number in 3 significant digits; blank for a missing one."""
    if value is None:
        return ""
    v = float(value)
    return f"{v:.3g}" if math.isfinite(v) else ""


def _config(value: Any) -> dict[str, Any]:
    return dict(value.get_config()) if hasattr(value, "get_config") else {}


def _rate(spec: Any) -> str:
    """The learning-rate schedule in words, by the family the study recorded."""
    sched, family = spec.schedule, (spec.provenance or {}).get("family")
    c = _config(sched)
    name = type(sched).__name__
    if name == "OneCycle":
        start = c["max_lr"] / c["div_factor"]
        end = start / c["final_div_factor"]
        return (f"one-cycle, lr {_g(start)} -> {_g(c['max_lr'])} -> {_g(end)} "
                f"(peak at {c['pct_start']:.0%}, {c['anneal_strategy']})")
    if name == "CyclicLR":
        half = c["step_size_up"] / spec.steps_per_epoch if spec.steps_per_epoch else None
        cycle = f", half cycle {half:g} epochs" if half else f", half cycle {c['step_size_up']} steps"
        return f"cyclic ({c['mode']}), lr {_g(c['base_lr'])} <-> {_g(c['max_lr'])}{cycle}"
    if name == "WarmupStableDecay":
        total = c.get("total_steps") or 0
        warm = f"warmup {c['warmup_steps'] / total:.0%}, " if total and c.get("warmup_steps") else ""
        return (f"warmup-stable-decay, lr {_g(c['max_lr'])} ({warm}{c['decay_shape']} decay over the last "
                f"{c['decay_fraction']:.0%} to {_g(c.get('min_lr', 0.0)) or 0})")
    if isinstance(sched, (int, float)):
        label = _FAMILIES.get(family, "constant")
        warmup = spec.optimizer_config.get("warmup_steps")
        return f"{label}, lr {_g(sched)}" + (f" (warmup {warmup} steps)" if warmup else "")
    args = ", ".join(f"{k}={_g(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v}"
                     for k, v in c.items() if not isinstance(v, (dict, list)))
    return f"{_FAMILIES.get(family, name)}, {name}({args})"


def _momentum(spec: Any) -> str:
    value, name = spec.momentum, spec.momentum_name
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return f"{name} {_g(value)}"
    c = _config(value)
    if "max_momentum" in c and "base_momentum" in c:
        hi, lo = _g(c["max_momentum"]), _g(c["base_momentum"])
        return f"{name} {hi} -> {lo} -> {hi}" if type(value).__name__ == "OneCycleMomentum" else f"{name} {hi} <-> {lo}"
    return f"{name} {type(value).__name__}"


def _weight_decay(spec: Any) -> str:
    value = spec.weight_decay
    if value is None or (isinstance(value, (int, float)) and value == 0):
        return "no weight decay"
    return f"weight decay {_g(value)}" if isinstance(value, (int, float)) else f"weight decay {type(value).__name__}"


def describe_schedule(spec: Any) -> str:
    """A `ScheduleSpec` in one line: family and rates, momentum, weight decay, optimizer,
    each other parameter group's patterns and ratio, epochs (e.g. `one-cycle, lr 0.00173 ->
    0.0432 -> 1.73e-07 (peak at 30%, cos), ...`)."""
    parts = [_rate(spec), _momentum(spec), _weight_decay(spec), spec.optimizer]
    for group in getattr(spec, "groups", None) or ():  # a MultiOptimizer's other groups
        parts.append(f"{' '.join(group['patterns']) or 'a group'} at {_g(group['ratio'])}x the rate")
    if spec.epochs:
        parts.append(f"{spec.epochs} epoch{'s' if spec.epochs != 1 else ''}")
    return ", ".join(p for p in parts if p)


def _accuracy_column(columns: Any, metric: str) -> str | None:
    """The accuracy a classifier's user looks for, on the metric's side (val_ or not)."""
    side = "val_" if metric.startswith("val_") else ""
    names = [c for c in columns if isinstance(c, str) and "acc" in c
             and c.startswith("val_") == bool(side) and c != metric]
    for preferred in (f"{side}accuracy", f"{side}acc"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def _last_epoch(history: Any, trial: int) -> Mapping[str, Any]:
    rows = history[history["trial"] == trial] if "trial" in history else history.iloc[0:0]
    return rows.sort_values("epoch").iloc[-1].to_dict() if len(rows) else {}


def _quality(tune: Any) -> str:
    """The best trial's metric and accuracy against the first trial's, and the trial counts."""
    metric, trials, history = tune.metric, tune.trials, tune.history
    best = tune.best_trial
    best_row = _last_epoch(history, best)
    acc = _accuracy_column(history.columns, metric)
    first = int(trials["number"].min()) if len(trials) else None
    first_state = trials.loc[trials["number"] == first, "state"].iloc[0] if first is not None else None
    first_row = _last_epoch(history, first) if first is not None else {}
    value = (tune.best.provenance or {}).get("value")

    def against(name: str, mine: Any) -> str:
        text = f"{name} {_g(mine)}"
        if first is None or first == best:
            return text
        if first_state != "COMPLETE":
            return f"{text} (first trial {first_state.lower()})"
        theirs = first_row.get(name)
        if name == metric:
            theirs = trials.loc[trials["number"] == first, "value"].iloc[0]
        return f"{text} (first trial {_g(theirs)})" if _g(theirs) else text

    parts = [against(metric, value)]
    if acc is not None and _g(best_row.get(acc)):
        parts.append(against(acc, best_row.get(acc)))
    states = trials["state"].value_counts() if "state" in trials else {}
    counts = ", ".join(f"{int(n)} {state.lower()}" for state, n in states.items())
    won = "the first trial (the suggested schedule), best" if first == best else f"trial #{best}, best"
    return f"{', '.join(parts)}: {won} of {len(trials)} ({counts})"


def _dashboard(out: Path, storage: str | None) -> str | None:
    """The command that shows the study: `--out` for the run folder's own SQLite file,
    `--storage URL` (password hidden) for another storage; none for a KerasTuner folder."""
    local = (out / "study.db").resolve()
    if storage is None or storage == f"sqlite:///{local}":
        return f"lrsearch dashboard --out {shlex.quote(str(out))}" if local.exists() else None
    if "://" not in storage:
        return None
    return f"lrsearch dashboard --storage {shlex.quote(storage)}"


def summary_lines(tune: Any, out_dir: str | Path, final: Any = None) -> list[str]:
    """The end of a run in a few lines: the schedule, its quality against the first trial,
    the final fit's schedule and scores, the files in `out_dir`, and the next commands.

    Args:
        tune: the run's `TuneResult`.
        out_dir: the run folder its tables and `schedule.json` were written to.
        final: the run's `lrsearch.study.final_fit.FinalFit`, if any: the schedule to train
            with is then `final_schedule.json`.
    """
    out = Path(out_dir)
    files = [name for name in FILE_ORDER if (out / name).exists()]
    lines: list[str] = []
    if tune.best is None:
        lines.append(f"no trial completed, so no schedule was chosen; see {out / 'trials.csv'} and run more trials")
    else:
        lines.append(f"schedule: {describe_schedule(tune.best)}")
        lines.append(_quality(tune))
    if final is not None:
        last = final.history.iloc[-1] if len(final.history) else {}
        scores = ", ".join(f"{k} {last[k]:.3g}" for k in final.history.columns if k.startswith("val_"))
        lines.append(f"final fit: {describe_schedule(final.schedule)}" + (f"; {scores} at the end" if scores else ""))
    if files:
        lines.append(f"files in {out}: {', '.join(files)}")
    steps = []
    dashboard = _dashboard(out, None if tune.best is None else (tune.best.provenance or {}).get("storage"))
    if dashboard:
        steps.append(dashboard)
    if tune.best is not None and not (out / "report.html").exists():
        steps.append(f"lrsearch report {shlex.quote(str(out))}")
    if tune.best is not None:
        chosen = out / ("final_schedule.json" if final is not None else "schedule.json")
        steps.append(f"spec = lrsearch.load_schedule({json.dumps(str(chosen))}); "
                     f"model.compile(optimizer=spec.build_optimizer(), ...); {fit_line(final.schedule if final else tune.best)}")
    for i, step in enumerate(steps):
        lines.append(("next: " if i == 0 else "      ") + step)
    return lines


def fit_line(spec: Any) -> str:
    """`model.fit(...)` with the batch size and epochs `spec` was sized for, and its check."""
    sized = [f"batch_size={spec.batch_size}"] if getattr(spec, "batch_size", None) else []
    sized.append(f"epochs={spec.epochs}" if spec.epochs else "epochs=spec.epochs")
    return f"model.fit(..., {', '.join(sized)}, callbacks=[spec.callback()])"


def log_summary(tune: Any, out_dir: str | Path, final: Any = None) -> None:
    """Close the live progress bars, then log `summary_lines` (INFO, so `-q` hides them)
    after a blank line."""
    progress.current().close()
    for line in ["", *summary_lines(tune, out_dir, final)]:
        logger.info("%s", line)
