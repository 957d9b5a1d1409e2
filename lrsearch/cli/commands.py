"""The `lrsearch` commands, one function each: `cmd_<name>(args, state) -> exit status`.

A command reads its parsed flags, builds the study's options once (`StudyOptions`),
calls the library, prints results (paths, JSON) to stdout and leaves progress to
stderr. Errors are raised, never printed: `lrsearch.cli.main.main` turns them into one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lrsearch.core.errors import ConfigError
from lrsearch.core.fileio import meta_path, writable_folder

__all__ = [
    "State",
    "explicit_study_flags",
    "cmd_auto",
    "cmd_dashboard",
    "cmd_export",
    "cmd_plot",
    "cmd_range_test",
    "cmd_report",
    "cmd_suggest",
    "cmd_tune",
]

logger = logging.getLogger("lrsearch")

EXIT_OK = 0


class State:
    """What a running command has recorded so far, for the Ctrl-C message."""

    def __init__(self) -> None:
        self.on_interrupt = "nothing was recorded"
        self.sigint = False


def _emit(text: str) -> None:
    """A result line on stdout."""
    print(text, file=sys.stdout, flush=True)


@contextlib.contextmanager
def _progress_to_stderr() -> Iterator[None]:
    """Keras progress bars write to stdout; while working, stdout belongs to stderr."""
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        finally:
            sys.stdout.flush()
    out.flush()


def _quiet_import_keras() -> None:
    """Import TensorFlow with stderr closed at the descriptor level.

    Its runtime writes start-up lines (CUDA probing and the like) straight to file
    descriptor 2, past Python's logging; they would bury the progress and the one-line
    errors. Left open when the user set `TF_CPP_MIN_LOG_LEVEL` below 3 or passed `--debug`.
    """
    if "keras" in sys.modules and getattr(_quiet_import_keras, "done", False):
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":  # the user asked for them (--debug or a level)
        import keras  # noqa: F401

        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor (embedded, captured): import plainly
        import keras  # noqa: F401

        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        keras.ops.convert_to_numpy(keras.ops.zeros((1,)))  # device probing logs here too
        _quiet_import_keras.done = True  # type: ignore[attr-defined]
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 1 + args.verbose


def _prepare(args: argparse.Namespace) -> None:
    """Cheap checks first (the model file exists), then the slow TensorFlow import."""
    from lrsearch.run.modelfile import check_file

    check_file(args.model_file, "model file")
    _quiet_import_keras()
    from lrsearch import optimizers, schedules  # noqa: F401  (registered before the model file runs, as on import)


def _load_source(args: argparse.Namespace) -> Any:
    from lrsearch.run.modelfile import load_model_file

    _prepare(args)
    logger.debug("loading %s", args.model_file)
    return load_model_file(
        args.model_file,
        data=args.data,
        target=args.target,
        unsafe=args.unsafe,
        val_split=args.val_split,
        seed=args.seed,
        batch_size=args.batch_size,
    )


def _families(text: str) -> tuple[str, ...]:
    families = tuple(f.strip() for f in text.split(",") if f.strip())
    if not families:
        raise ConfigError("--families needs at least one family, e.g. one_cycle,cyclic")
    return families


def _storage_from(args: argparse.Namespace, *, required: bool = True) -> str | None:
    """`--storage`, or the `study.db` of `--out`/`DIR`."""
    if getattr(args, "storage", None):
        from lrsearch.study.storage import existing_storage

        return existing_storage(args.storage)
    folder = getattr(args, "out", None) or getattr(args, "dir", None)
    if folder:
        db = Path(folder) / "study.db"
        if not db.exists():
            raise ConfigError(f"{folder} holds no study.db; pass --storage URL")
        return f"sqlite:///{db.resolve()}"
    if required:
        raise ConfigError("name the study's storage with --storage URL (or --out DIR of a run)")
    return None


def _study_from(storage: str, name: str | None, folder: str | Path | None = None) -> str:
    """The study to read: `--study`, the storage's only one, or, of several, the one the
    run folder's latest `schedule.json` names (its model's study after a model change:
    `NAME-2` beside `NAME`), as `report` picks it; said in one line."""
    from lrsearch.study.storage import study_names

    names = study_names(storage)
    if name:
        if name not in names:
            raise ConfigError(
                f"storage holds no study {name!r} (studies: {', '.join(names) or 'none'}); check --study"
            )
        return name
    if len(names) == 1:
        return names[0]
    latest = _schedule_study(Path(folder) / "schedule.json") if folder is not None else None
    if latest in names:
        logger.info("exporting study %r, the one %s names (the folder holds %s; pass --study to pick another)",
                    latest, Path(folder) / "schedule.json", ", ".join(names))
        return latest
    if not names:
        raise ConfigError("the storage holds no study yet; run 'lrsearch tune' or 'lrsearch auto' first")
    raise ConfigError(f"the storage holds several studies ({', '.join(names)}); pick one with --study")


def _schedule_study(path: Path) -> str | None:
    """The study a `schedule.json` says it came from (None: no such file or field)."""
    try:
        study = json.loads(path.read_text(encoding="utf-8")).get("provenance", {}).get("study")
    except (OSError, ValueError, AttributeError):
        return None
    return study if isinstance(study, str) else None


def _print_suggestion(suggestion: Any) -> None:
    _emit(json.dumps(suggestion.to_dict(), indent=2, default=str))


# --------------------------------------------------------------------------- commands


def explicit_study_flags(args: argparse.Namespace) -> dict[str, int]:
    """`epochs` and `trials` as the user typed them (`--epochs`, `--trials`), left out when
    not given (their parser default is None): `auto` is handed exactly these as keywords,
    so a budget's plan can say which of them it overrides."""
    return {name: getattr(args, name) for name in ("epochs", "trials") if getattr(args, name, None) is not None}


def _options(args: argparse.Namespace) -> Any:
    """The study's options, built once from the flags (and checked there); `epochs` and
    `trials` not given keep `StudyOptions`' defaults (`lrsearch.core.defaults`)."""
    from lrsearch.study.options import StudyOptions

    return StudyOptions(
        **explicit_study_flags(args), families=_families(args.families), metric=args.metric,
        direction=args.direction,
        pruner=args.pruner, seed=args.seed, batch_size=args.batch_size, storage=args.storage,
        study_name=args.study, out_dir=args.out, backend=args.backend, min_lr=args.min_lr,
        max_lr=args.max_lr, range_steps=args.steps, mode=args.mode, fidelity=args.fidelity,
        reuse=not args.no_shared_model,
    )


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"data": args.data, "target": args.target, "unsafe": args.unsafe, "val_split": args.val_split,
            "verbose": _verbosity(args)}


def cmd_auto(args: argparse.Namespace, state: State) -> int:
    """Everything end to end on one model file."""
    options = _options(args)
    _prepare(args)
    from lrsearch.run.auto import auto

    state.on_interrupt = (
        "finished trials are kept in the study's storage; run the same command again to resume"
    )
    with _progress_to_stderr():
        result = auto(args.model_file, options=options, sweeps=not args.no_sweeps, reuse=not args.fresh,
                      budget=args.budget, final_epochs=args.final_epochs, keep_optimizer=args.keep_optimizer,
                      on_stage=lambda hint: setattr(state, "on_interrupt", hint), **_source_options(args),
                      **explicit_study_flags(args))
    for path in result.paths.values():
        _emit(str(path))
    if result.tune is not None:
        from lrsearch.run.summary import log_summary

        log_summary(result.tune, result.out_dir, result.final)
    return EXIT_OK


def cmd_range_test(args: argparse.Namespace, state: State) -> int:
    """One range test; bounds to stdout, curve to CSV and PNG."""
    from lrsearch.study.options import StudyOptions

    options = StudyOptions(min_lr=args.min_lr, max_lr=args.max_lr, range_steps=args.steps, mode=args.mode,
                           batch_size=args.batch_size, seed=args.seed)
    source = _load_source(args)
    from lrsearch.rangetest.finder import range_test
    from lrsearch.run.stages import seeded_build
    from lrsearch.viz.plots import save_figure

    out = writable_folder(args.out or Path("runs") / source.name)
    with _progress_to_stderr():
        try:
            result = range_test(seeded_build(source.build_model, options.seed)(), source.train,
                                verbose=_verbosity(args), **options.range_test_kwargs())
        except KeyboardInterrupt as exc:  # keep the curve recorded so far
            partial = getattr(exc, "range_test_result", None)
            if partial is not None and len(partial.frame):
                partial.save(out / "range_test.csv")
                state.on_interrupt = (f"the curve so far ({len(partial.frame)} steps) is saved in "
                                      f"{out / 'range_test.csv'}; 'lrsearch suggest' reads it")
            raise
    result.save(out / "range_test.csv")
    save_figure(result.plot(), out / "range_test.png")
    logger.info("wrote %s and %s", out / "range_test.csv", out / "range_test.png")
    _print_suggestion(result.suggestion)
    return EXIT_OK


def _read_curve(path: str | Path, loss_column: str = "loss") -> tuple[Any, Any]:
    from lrsearch.data.files import read_csv

    frame = read_csv(path, "curve file", ["lr", loss_column], numeric=True)
    return frame["lr"].to_numpy(float), frame[loss_column].to_numpy(float)


def _recorded_optimizer(path: str | Path) -> str | None:
    """The optimizer class a range test saved beside its curve (`NAME.meta.json`), if any:
    a curve from another tool has none, and is read as from an unknown optimizer."""
    meta = meta_path(Path(path))
    try:
        name = json.loads(meta.read_text()).get("optimizer")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def cmd_suggest(args: argparse.Namespace, state: State) -> int:
    """Bounds from any loss curve."""
    from lrsearch.rangetest.analysis import suggest

    lr, loss = _read_curve(args.curve, args.loss_column)
    suggestion = suggest(lr, loss, optimizer=args.optimizer or _recorded_optimizer(args.curve))
    for warning in suggestion.warnings:  # told once, here
        logger.warning("%s: %s", args.curve, warning)
    _print_suggestion(suggestion)
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, state: State) -> int:
    """A study inside given, stored or freshly measured bounds."""
    if args.curve and args.bounds:
        raise ConfigError("give either --range-test CSV or --bounds, not both")
    options = _options(args)
    _prepare(args)
    from lrsearch.run.auto import run_tune

    state.on_interrupt = "finished trials are kept in the study's storage; run the same command again to resume"
    with _progress_to_stderr():
        result, out = run_tune(args.model_file, curve=args.curve, bounds=args.bounds, options=options,
                               on_stage=lambda hint: setattr(state, "on_interrupt", hint),
                               **_source_options(args))
    for name in ("trials.csv", "history.csv", "schedule.json"):
        if (out / name).exists() and (name != "schedule.json" or result.best is not None):
            _emit(str(out / name))
    if result.best is None:
        logger.warning("no trial completed, so no schedule.json was written; see %s", out / "trials.csv")
    else:
        from lrsearch.run.summary import log_summary

        log_summary(result, out)
    return EXIT_OK


def _export_source(args: argparse.Namespace) -> tuple[str, Path]:
    """The storage to export from and the file to write: `--from RUN_FOLDER` (alias
    `--out`) reads its study.db and writes into it; `--storage URL` writes ./schedule.json."""
    folder = args.run_folder
    if folder is not None and (Path(folder).suffix.lower() == ".json" or Path(folder).is_file()):
        raise ConfigError(
            f"--from/--out names the run folder to export from, not the file to write; write {folder} with "
            f"-o: lrsearch export --from runs/NAME -o {folder}"
        )
    if args.storage:
        from lrsearch.study.storage import existing_storage

        storage = existing_storage(args.storage)
    elif folder is not None:
        db = Path(folder) / "study.db"
        if not db.exists():
            raise ConfigError(f"{folder} holds no study.db; pass the run folder of 'lrsearch auto' or 'tune', "
                              "or --storage URL")
        storage = f"sqlite:///{db.resolve()}"
    else:
        raise ConfigError("name the study to export with --from RUN_FOLDER (or --storage URL)")
    default = Path(folder) / "schedule.json" if folder is not None else Path("schedule.json")
    return storage, Path(args.output) if args.output else default


def cmd_export(args: argparse.Namespace, state: State) -> int:
    """The best schedule of a stored study, as JSON."""
    storage, output = _export_source(args)
    name = _study_from(storage, args.study, None if args.storage else args.run_folder)
    _quiet_import_keras()
    from lrsearch.study.tune import load_result

    result = load_result(storage, name)
    if result.best is None:
        raise ConfigError(
            f"study {name!r} has no completed trial, so there is no schedule to export; "
            "run more trials ('lrsearch tune' or 'lrsearch auto') first"
        )
    result.best.save(output)
    trial = (result.best.provenance or {}).get("trial")
    logger.info("wrote the best schedule of study %s%s to %s", name, "" if trial is None else f" (trial #{trial})",
                output)
    _emit(str(output))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, state: State) -> int:
    """A PNG of a range-test CSV, a sweep CSV or a schedule file."""
    _quiet_import_keras()
    from lrsearch.run.report import plot_file

    output = plot_file(args.path, args.output)
    _emit(str(output))
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace, state: State) -> int:
    """optuna-dashboard on the study's storage, until Ctrl-C."""
    import optuna_dashboard

    from lrsearch.study.storage import open_storage

    storage = open_storage(_storage_from(args), heartbeat_interval=None)
    _check_port_free(args.host, args.port)
    from lrsearch.run.artifacts import artifact_store

    store = artifact_store(args.out, create=False) if args.out else None  # the run's attached files
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: anyone who can reach it can read and edit the study", args.host)
    state.on_interrupt = "dashboard stopped"
    logger.info("dashboard on http://%s:%d/ (Ctrl-C stops it)", args.host, args.port)
    _emit(f"http://{args.host}:{args.port}/")
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port, artifact_store=store)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); try another --port") from exc
    return EXIT_OK


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another program holds before saying where the dashboard listens."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); check --host") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); "
                              "try another --port") from exc


def cmd_report(args: argparse.Namespace, state: State) -> int:
    """report.html from a run folder."""
    from lrsearch.run.report import write_report

    folder = Path(args.dir)
    if not folder.is_dir():
        raise ConfigError(f"run folder {folder} does not exist; pass the --out folder of a run")
    if args.storage:
        from lrsearch.study.storage import existing_storage

        existing_storage(args.storage)
    _quiet_import_keras()
    path = write_report(folder, storage=args.storage, study_name=args.study)
    _emit(str(path))
    return EXIT_OK
