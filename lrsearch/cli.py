"""The `lrsearch` command line: one function per subcommand, one place for errors.

    lrsearch auto MODEL_FILE [--data PATH] [--epochs N] [--trials N] [--out DIR] ...
    lrsearch range-test MODEL_FILE [--min-lr --max-lr --steps --mode]
    lrsearch suggest CURVE.csv
    lrsearch tune MODEL_FILE [--epochs --trials --storage --study --out --backend --seed]
    lrsearch export --storage URL [--study NAME] -o schedule.json
    lrsearch plot PATH                  (range-test CSV, sweep CSV or schedule.json)
    lrsearch dashboard --storage URL    (optuna-dashboard on localhost)
    lrsearch report DIR

Results (suggestions as JSON, paths written) go to stdout; progress goes to stderr. A
mistake the user can fix ends with one line `lrsearch: error: ...` and exit status 1
(2 for a malformed command line); Ctrl-C ends with a line saying what was kept and exit
status 130. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lrsearch.errors import ConfigError, DataError, LRSearchError

__all__ = ["main", "build_parser"]

logger = logging.getLogger("lrsearch")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """A command line argparse could not make sense of."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one line, not usage plus a message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _State:
    """What a running command has recorded so far, for the Ctrl-C message."""

    def __init__(self) -> None:
        self.on_interrupt = "nothing was recorded"
        self.sigint = False


# --------------------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number up to 65535, got {value}")
    return value


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; shared flags live in parent parsers."""
    common = _Parser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more progress on stderr")
    group.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    group.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    model = _Parser(add_help=False)
    group = model.add_argument_group("model and data")
    group.add_argument("model_file", metavar="MODEL_FILE",
                       help="a .py file with build_model() and load_data(), or a saved .keras model")
    group.add_argument("--data", metavar="PATH",
                       help="data for a .keras model (or instead of load_data()): an .npz with "
                            "x_train, y_train, x_val, y_val; a CSV (with --target); or an image "
                            "folder with one sub-folder per class")
    group.add_argument("--target", metavar="COLUMN", help="label column of a CSV --data")
    group.add_argument("--val-split", type=_fraction, default=0.2, metavar="F",
                       help="validation fraction of a CSV or image folder (default 0.2)")
    group.add_argument("--unsafe", action="store_true",
                       help="load a .keras model with Lambda layers (runs code from the file: "
                            "only for files you trust)")
    group.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                       help="batch size for arrays (default 32)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    lr_range = _Parser(add_help=False)
    group = lr_range.add_argument_group("range test")
    group.add_argument("--min-lr", type=_positive_float, default=1e-7, metavar="LR",
                       help="first rate of the range test (default 1e-7)")
    group.add_argument("--max-lr", type=_positive_float, default=10.0, metavar="LR",
                       help="last rate of the range test (default 10)")
    group.add_argument("--steps", type=_positive_int, default=None, metavar="N",
                       help="optimizer steps of the range test (default: the finder's)")
    group.add_argument("--mode", choices=("exp", "linear"), default="exp",
                       help="spacing of the rates (default exp)")

    study = _Parser(add_help=False)
    group = study.add_argument_group("study")
    group.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                       help="epochs per trial")
    group.add_argument("--trials", type=_positive_int, default=None, metavar="N",
                       help="trials this run adds to the study")
    group.add_argument("--storage", metavar="URL",
                       help="Optuna storage URL (default sqlite:///OUT/study.db); "
                            "the same URL and --study resume a study")
    group.add_argument("--study", metavar="NAME", help="study name (default: the model file's name)")
    group.add_argument("--out", metavar="DIR", help="output folder (default runs/STUDY)")
    group.add_argument("--backend", choices=("optuna", "keras-tuner"), default="optuna",
                       help="search backend (default optuna)")
    group.add_argument("--families", default="one_cycle,cyclic", metavar="LIST",
                       help="schedule families to search, comma-separated (default one_cycle,cyclic)")
    group.add_argument("--metric", default="val_loss", help="metric to optimize (default val_loss)")
    group.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                       help="trial pruner (default median)")

    parser = _Parser(
        prog="lrsearch",
        description="Learning-rate schedules for Keras 3 models, found from evidence.",
        parents=[common],
    )
    from lrsearch import __version__

    parser.add_argument("--version", action="version", version=f"lrsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable[..., int], help: str, parents: list[argparse.ArgumentParser]):
        p = sub.add_parser(name, help=help, description=help, parents=[common, *parents])
        p.set_defaults(func=func)
        return p

    p = add("auto", cmd_auto,
            "range test -> momentum and weight-decay sweeps -> study -> schedule.json -> report.html",
            [model, lr_range, study])
    p.add_argument("--no-sweeps", action="store_true", help="skip the momentum and weight-decay sweeps")
    _study_defaults(p)

    add("range-test", cmd_range_test,
        "LR range test: writes range_test.csv and .png, prints the suggested bounds as JSON",
        [model, lr_range]).add_argument("--out", metavar="DIR", help="output folder (default runs/NAME)")

    p = add("suggest", cmd_suggest, "suggest rate bounds from a loss curve CSV (columns lr, loss)", [])
    p.add_argument("curve", metavar="CURVE.csv", help="a range-test CSV or any CSV with lr and loss columns")
    p.add_argument("--loss-column", default="loss", metavar="NAME", help="column of losses (default loss)")

    p = add("tune", cmd_tune,
            "study of schedules inside the bounds of a range test (run first unless given)",
            [model, lr_range, study])
    p.add_argument("--range-test", dest="curve", metavar="CSV",
                   help="bounds from this range-test CSV instead of running a new test")
    p.add_argument("--bounds", nargs=2, type=_positive_float, metavar=("BASE_LR", "MAX_LR"),
                   help="search inside these bounds instead of running a range test")
    _study_defaults(p)

    p = add("export", cmd_export, "write the best schedule of a stored study as schedule.json", [])
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL of the study")
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    p.add_argument("--out", metavar="DIR", help="run folder: its study.db is the storage")
    p.add_argument("-o", "--output", default="schedule.json", metavar="PATH",
                   help="file to write (default schedule.json)")

    p = add("plot", cmd_plot, "draw a range-test CSV, a sweep CSV or a schedule.json as PNG", [])
    p.add_argument("path", metavar="PATH")
    p.add_argument("-o", "--output", metavar="PNG", help="image to write (default PATH with .png)")

    p = add("dashboard", cmd_dashboard, "start optuna-dashboard on a study's storage (localhost)", [])
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL")
    p.add_argument("--out", metavar="DIR", help="run folder: its study.db is the storage")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default 8080)")

    p = add("report", cmd_report, "write DIR/report.html from a run folder", [])
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--storage", metavar="URL", help="storage of the study (default DIR/study.db)")
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    return parser


# --------------------------------------------------------------------------- helpers


def _study_defaults(p: argparse.ArgumentParser) -> None:
    """`auto` and `tune` use range-test and study defaults sized for a CPU."""
    from lrsearch.pipeline import DEFAULT_EPOCHS, DEFAULT_MAX_LR, DEFAULT_MIN_LR, DEFAULT_RANGE_STEPS, DEFAULT_TRIALS

    p.set_defaults(min_lr=DEFAULT_MIN_LR, max_lr=DEFAULT_MAX_LR, steps=DEFAULT_RANGE_STEPS,
                   epochs=DEFAULT_EPOCHS, trials=DEFAULT_TRIALS)
    p.epilog = (f"defaults: --min-lr {DEFAULT_MIN_LR:g} --max-lr {DEFAULT_MAX_LR:g} --steps {DEFAULT_RANGE_STEPS} "
                f"--epochs {DEFAULT_EPOCHS} --trials {DEFAULT_TRIALS}")


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
    descriptor 2, past Python's logging and `TF_CPP_MIN_LOG_LEVEL`; they would bury the
    progress and the one-line errors.
    """
    if "keras" in sys.modules and getattr(_quiet_import_keras, "done", False):
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
    from lrsearch.modelfile import _check_file

    _check_file(args.model_file, "model file")
    _quiet_import_keras()


def _load_source(args: argparse.Namespace) -> Any:
    from lrsearch.modelfile import load_model_file

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


def _check_range(args: argparse.Namespace) -> None:
    if args.min_lr >= args.max_lr:
        raise ConfigError(
            f"--min-lr must be below --max-lr; got --min-lr {args.min_lr:g} and --max-lr {args.max_lr:g}"
        )


def _families(text: str) -> tuple[str, ...]:
    families = tuple(f.strip() for f in text.split(",") if f.strip())
    if not families:
        raise ConfigError("--families needs at least one family, e.g. one_cycle,cyclic")
    return families


def _storage_from(args: argparse.Namespace, *, required: bool = True) -> str | None:
    """`--storage`, or the `study.db` of `--out`/`DIR`."""
    if getattr(args, "storage", None):
        return args.storage
    folder = getattr(args, "out", None) or getattr(args, "dir", None)
    if folder:
        db = Path(folder) / "study.db"
        if not db.exists():
            raise ConfigError(f"{folder} holds no study.db; pass --storage URL")
        return f"sqlite:///{db.resolve()}"
    if required:
        raise ConfigError("name the study's storage with --storage URL (or --out DIR of a run)")
    return None


def _study_from(storage: str, name: str | None) -> str:
    from lrsearch.storage import study_names

    names = study_names(storage)
    if name:
        if name not in names:
            raise ConfigError(
                f"storage holds no study {name!r} (studies: {', '.join(names) or 'none'}); check --study"
            )
        return name
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError("the storage holds no study yet; run 'lrsearch tune' or 'lrsearch auto' first")
    raise ConfigError(f"the storage holds several studies ({', '.join(names)}); pick one with --study")


def _print_suggestion(suggestion: Any) -> None:
    _emit(json.dumps(suggestion.to_dict(), indent=2, default=str))


# --------------------------------------------------------------------------- commands


def cmd_auto(args: argparse.Namespace, state: _State) -> int:
    """Everything end to end on one model file."""
    _check_range(args)
    _prepare(args)
    from lrsearch.pipeline import auto

    study = args.study
    state.on_interrupt = (
        "finished trials are kept in the study's storage; run the same command again to resume"
    )
    with _progress_to_stderr():
        result = auto(
            args.model_file,
            data=args.data,
            target=args.target,
            unsafe=args.unsafe,
            val_split=args.val_split,
            epochs=args.epochs,
            trials=args.trials,
            storage=args.storage,
            study_name=study,
            out_dir=args.out,
            backend=args.backend,
            families=_families(args.families),
            metric=args.metric,
            pruner=None if args.pruner == "none" else args.pruner,
            seed=args.seed,
            batch_size=args.batch_size,
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            range_steps=args.steps,
            mode=args.mode,
            sweeps=not args.no_sweeps,
            verbose=_verbosity(args),
            on_stage=lambda hint: setattr(state, "on_interrupt", hint),
        )
    for path in result.paths.values():
        _emit(str(path))
    return EXIT_OK


def cmd_range_test(args: argparse.Namespace, state: _State) -> int:
    """One range test; bounds to stdout, curve to CSV and PNG."""
    _check_range(args)
    source = _load_source(args)
    from lrsearch.finder import range_test
    from lrsearch.report import save_figure

    out = Path(args.out or Path("runs") / source.name)
    out.mkdir(parents=True, exist_ok=True)
    with _progress_to_stderr():
        result = range_test(
            source.build_model(),
            source.train,
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            steps=args.steps,
            mode=args.mode,
            batch_size=args.batch_size,
            verbose=_verbosity(args),
        )
    result.save(out / "range_test.csv")
    save_figure(result.plot(), out / "range_test.png")
    logger.info("wrote %s and %s", out / "range_test.csv", out / "range_test.png")
    _print_suggestion(result.suggestion)
    return EXIT_OK


def _read_curve(path: str | Path, loss_column: str = "loss") -> tuple[Any, Any]:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"curve file {path} does not exist; check the path")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in ("lr", loss_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} has no column {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))}); "
            "it needs lr and loss"
        )
    return frame["lr"].to_numpy(float), frame[loss_column].to_numpy(float)


def cmd_suggest(args: argparse.Namespace, state: _State) -> int:
    """Bounds from any loss curve."""
    from lrsearch.analysis import suggest

    lr, loss = _read_curve(args.curve, args.loss_column)
    _print_suggestion(suggest(lr, loss))
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, state: _State) -> int:
    """A study inside given, stored or freshly measured bounds."""
    _check_range(args)
    _prepare(args)
    from lrsearch.pipeline import run_tune

    if args.curve and args.bounds:
        raise ConfigError("give either --range-test CSV or --bounds, not both")
    state.on_interrupt = "finished trials are kept in the study's storage; run the same command again to resume"
    with _progress_to_stderr():
        result, out = run_tune(
            args.model_file,
            data=args.data,
            target=args.target,
            unsafe=args.unsafe,
            val_split=args.val_split,
            curve=args.curve,
            bounds=args.bounds,
            epochs=args.epochs,
            trials=args.trials,
            storage=args.storage,
            study_name=args.study,
            out_dir=args.out,
            backend=args.backend,
            families=_families(args.families),
            metric=args.metric,
            pruner=None if args.pruner == "none" else args.pruner,
            seed=args.seed,
            batch_size=args.batch_size,
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            range_steps=args.steps,
            mode=args.mode,
            verbose=_verbosity(args),
            on_stage=lambda hint: setattr(state, "on_interrupt", hint),
        )
    for name in ("trials.csv", "history.csv", "schedule.json"):
        _emit(str(out / name))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, state: _State) -> int:
    """The best schedule of a stored study, as JSON."""
    storage = _storage_from(args)
    name = _study_from(storage, args.study)
    _quiet_import_keras()
    from lrsearch.study import load_result

    result = load_result(storage, name)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    result.best.save(output)
    _emit(str(output))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, state: _State) -> int:
    """A PNG of a range-test CSV, a sweep CSV or a schedule file."""
    _quiet_import_keras()
    from lrsearch.report import plot_file

    output = plot_file(args.path, args.output)
    _emit(str(output))
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace, state: _State) -> int:
    """optuna-dashboard on the study's storage, until Ctrl-C."""
    import optuna_dashboard

    from lrsearch.storage import open_storage

    storage = open_storage(_storage_from(args), heartbeat_interval=None)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: anyone who can reach it can read and edit the study", args.host)
    state.on_interrupt = "dashboard stopped"
    logger.info("dashboard on http://%s:%d/ (Ctrl-C stops it)", args.host, args.port)
    _emit(f"http://{args.host}:{args.port}/")
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); try another --port") from exc
    return EXIT_OK


def cmd_report(args: argparse.Namespace, state: _State) -> int:
    """report.html from a run folder."""
    from lrsearch.report import write_report

    folder = Path(args.dir)
    if not folder.is_dir():
        raise ConfigError(f"run folder {folder} does not exist; pass the --out folder of a run")
    _quiet_import_keras()
    path = write_report(folder, storage=args.storage, study_name=args.study)
    _emit(str(path))
    return EXIT_OK


# --------------------------------------------------------------------------- main


def _configure_logging(args: argparse.Namespace | None) -> None:
    level = logging.INFO
    if args is not None:
        level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("lrsearch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("optuna", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level > logging.DEBUG else logging.INFO)
    if args is None or not args.debug:
        # Optuna logs a failed (e.g. interrupted) trial with its traceback; keep the line only
        import optuna

        optuna.logging.get_verbosity()  # creates Optuna's own stderr handler
        for h in logging.getLogger("optuna").handlers:
            if _drop_traceback not in h.filters:
                h.addFilter(_drop_traceback)


def _drop_traceback(record: logging.LogRecord) -> bool:
    record.exc_info = None
    record.exc_text = None
    return True


def _error(message: str) -> None:
    line = " ".join(str(message).split())  # always exactly one line
    print(f"lrsearch: error: {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 error, 2 usage, 130 Ctrl-C)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    state = _State()
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    _configure_logging(args)
    previous = _watch_sigint(state)
    try:
        return args.func(args, state)
    except KeyboardInterrupt:
        if debug:
            raise
        return _interrupted(state)
    except LRSearchError as exc:
        if debug:
            raise
        _error(str(exc))
        return EXIT_ERROR
    except UsageError as exc:
        if debug:
            raise
        _error(str(exc))
        return EXIT_USAGE
    except Exception as exc:  # a bug, not the user's doing: still one line unless --debug
        if debug:
            raise
        if state.sigint:  # Ctrl-C inside TensorFlow's C++ code arrives as another error
            return _interrupted(state)
        first = (str(exc).strip().splitlines() or [""])[0]
        _error(f"unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _interrupted(state: _State) -> int:
    print(f"lrsearch: interrupted: {state.on_interrupt}", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _watch_sigint(state: _State) -> Any:
    """Note every Ctrl-C, then interrupt as Python does; returns the handler it replaced."""

    def handler(signum: int, frame: Any) -> None:
        state.sigint = True
        signal.default_int_handler(signum, frame)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
