"""The final fit: the chosen schedule trained at the length the user wants, and saved.

A study compares schedules of `epochs` epochs; a user often wants the winner over a
longer run. `final_fit` rebuilds the best trial's schedule from its parameters at
`epochs` (one-cycle and WSD span the new length, a cyclical schedule keeps its number of
cycles, as a schedule-halving rung does), trains a fresh model with it and writes
`final_model.keras`, `final_schedule.json` and `final_history.csv` into the run folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from lrsearch.optimizers.base import has_loss_scale
from lrsearch.data.fit_data import prepare_data
from lrsearch.core.errors import ConfigError
from lrsearch.core.fileio import write_csv
from lrsearch.study.halving import RungSpace
from lrsearch.study.space import SearchSpace
from lrsearch.study.trial import clear_keras_session, configure_model, trial_callbacks, trial_spec

__all__ = ["FILES", "FinalFit", "final_fit", "final_fit_of"]

logger = logging.getLogger(__name__)

FILES = ("final_model.keras", "final_schedule.json", "final_history.csv")


@dataclass(frozen=True)
class FinalFit:
    """What the final fit wrote: `paths` (name -> path), the `schedule` it trained with
    (`ScheduleSpec`), its per-epoch `history` (DataFrame) and `epochs`."""

    paths: dict[str, Path]
    schedule: Any
    history: pd.DataFrame
    epochs: int


def final_fit(build_model: Callable[[], keras.Model], train: Any, validation: Any, *, best: Any,
              space: Mapping[str, Any], epochs: int, out_dir: str | Path, seed: int | None = None,
              batch_size: int | None = None, steps_per_epoch: int | None = None) -> FinalFit:
    """Train `build_model()` with the best trial's schedule stretched to `epochs` and save it.

    Args:
        best: the study's best `ScheduleSpec` (its provenance holds the trial's params).
        space: the study's stored search space (`SearchSpace.to_dict()`).

    Raises:
        ConfigError: no best schedule, or one without the parameters it was drawn from.
    """
    if best is None or "params" not in (best.provenance or {}):
        raise ConfigError("no trial of the study completed: there is no schedule to train; run more trials")
    full = SearchSpace.from_dict(space)
    rung = RungSpace(**{**full.__dict__, "epochs": int(epochs), "full_epochs": full.epochs})
    setup = rung.build(dict(best.provenance["params"]))
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    model = build_model()
    optimizer = configure_model(model, setup)
    data = prepare_data(train, validation, batch_size, steps_per_epoch)
    logger.info("final fit: trial %s's schedule over %d epochs", best.provenance.get("trial"), epochs)
    history = model.fit(epochs=int(epochs), callbacks=trial_callbacks(setup), verbose=0, **data.fit_kwargs)
    spec = trial_spec(optimizer, setup, rung, data.batch_size, loss_scale=has_loss_scale(model))
    spec.provenance = {**best.provenance, "final_epochs": int(epochs)}
    out = Path(out_dir)
    paths = {name: out / name for name in FILES}
    frame = pd.DataFrame({"epoch": range(1, len(history.history.get("loss", [])) + 1),
                          **{k: [float(v) for v in vals] for k, vals in history.history.items()}})
    _save_model(model, paths["final_model.keras"])
    spec.save(paths["final_schedule.json"])
    write_csv(frame, paths["final_history.csv"])
    last = ", ".join(f"{k} {frame[k].iloc[-1]:.4g}" for k in frame.columns if k.startswith("val_"))
    logger.info("final fit: %d epochs%s; the model is in %s, its schedule in %s", epochs,
                f" ({last} at the end)" if last else "", paths["final_model.keras"], paths["final_schedule.json"])
    del model
    clear_keras_session()
    return FinalFit(paths=paths, schedule=spec, history=frame, epochs=int(epochs))


def _save_model(model: keras.Model, path: Path) -> None:
    """`model.save(path)` atomically (Keras wants the `.keras` suffix on the file it writes)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def final_fit_of(source: Any, tuned: Any, *, epochs: int, out_dir: str | Path, study_name: str,
                 seed: int | None = None, batch_size: int | None = None,
                 steps_per_epoch: int | None = None) -> FinalFit:
    """`final_fit` of a study's best schedule, on a `ModelSource`, with the study's stored space."""
    import optuna

    from lrsearch.study.results import ATTR

    if isinstance(tuned.study, optuna.study.Study):
        meta = dict(tuned.study.user_attrs.get(ATTR, {}))
    else:
        from lrsearch.study.backends import kerastuner_study as kt_backend

        meta = kt_backend.stored_meta(out_dir, study_name)
    if not meta.get("space"):
        raise ConfigError(f"study {study_name!r} keeps no search space: the final fit cannot rebuild its schedule")
    return final_fit(source.build_model, source.train, source.validation, best=tuned.best, space=meta["space"],
                     epochs=epochs, out_dir=out_dir, seed=seed, batch_size=batch_size,
                     steps_per_epoch=steps_per_epoch)
