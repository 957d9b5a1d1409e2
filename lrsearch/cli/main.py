"""The `lrsearch` command line: its parser and `main`, the one place that maps errors to
exit statuses. The commands themselves live in `lrsearch.cli.commands`.

    lrsearch auto MODEL_FILE [--data PATH] [--epochs N] [--trials N] [--out DIR] ...
    lrsearch range-test MODEL_FILE [--min-lr --max-lr --steps --mode]
    lrsearch suggest CURVE.csv
    lrsearch tune MODEL_FILE [--epochs --trials --storage --study --out --backend --seed]
    lrsearch export --from RUN_FOLDER [-o FILE]   (or --storage URL [--study NAME])
    lrsearch plot PATH                  (range-test CSV, sweep CSV or schedule.json)
    lrsearch dashboard --storage URL    (optuna-dashboard on localhost)
    lrsearch report DIR

Results (suggestions as JSON, paths written) go to stdout; progress goes to stderr (live
bars on a terminal, see `lrsearch.core.progress`), and the run's summary after it. A
mistake the user can fix ends with one line `lrsearch: error: ...` and exit status 1
(2 for a malformed command line); Ctrl-C ends with a line saying what was kept and exit
status 130, SIGTERM the same way with 143. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lrsearch.cli.commands import (
    State,
    cmd_auto,
    cmd_dashboard,
    cmd_export,
    cmd_plot,
    cmd_range_test,
    cmd_report,
    cmd_suggest,
    cmd_tune,
)
from lrsearch.cli.signals import exit_process, interrupted, watch_signals
from lrsearch.core.errors import LRSearchError, first_line
from lrsearch.core.progress import LiveProgress, Progress, reporting, wanted

__all__ = ["main", "build_parser"]

logger = logging.getLogger("lrsearch")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130  # SIGTERM: 143


class UsageError(Exception):
    """A command line argparse could not make sense of."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one line, not usage plus a message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    return _whole_number(text, least=1)


def _range_steps(text: str) -> int:
    """A range test's steps: a curve needs two points at least."""
    return _whole_number(text, least=2)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _rate(text: str) -> float:
    """A learning rate: a normal float32 number up to 1e6 (1e-320 would train at zero)."""
    from lrsearch.core.checks import rate_problem

    value = _positive_float(text)
    problem = rate_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"must be {problem}, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _whole_number(text: str, least: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _seed(text: str) -> int:
    """A seed NumPy and the backends take: 0 to 2**32 - 1."""
    value = _whole_number(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"must be at most {2**32 - 1}, got {value}")
    return value


def _budget(text: str) -> Any:
    from lrsearch.study.budget import Budget
    from lrsearch.core.errors import ConfigError

    try:
        return Budget.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number up to 65535, got {value}")
    return value


# --------------------------------------------------------------------------- parser


def _default(value: Any) -> str:
    """How every flag's help states its default: `(default 1e-06)`, `(default 160)`."""
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"(default {shown})"


def _range_flags(steps: int | None) -> argparse.ArgumentParser:
    """The range test's flags; `steps` is the command's default (None: the finder's own)."""
    from lrsearch.core.defaults import DEFAULT_MAX_LR, DEFAULT_MIN_LR, RAMP_MODES

    parent = _Parser(add_help=False)
    group = parent.add_argument_group("range test")
    group.add_argument("--min-lr", type=_rate, default=DEFAULT_MIN_LR, metavar="LR",
                       help=f"first rate of the range test {_default(DEFAULT_MIN_LR)}")
    group.add_argument("--max-lr", type=_rate, default=DEFAULT_MAX_LR, metavar="LR",
                       help=f"last rate of the range test {_default(DEFAULT_MAX_LR)}")
    told = _default(steps) if steps is not None else "(default: one pass over the data, extended while the curve " \
                                                     "cannot be read)"
    group.add_argument("--steps", type=_range_steps, default=steps, metavar="N",
                       help=f"optimizer steps of the range test, run exactly {told}")
    group.add_argument("--mode", choices=RAMP_MODES, default="exp",
                       help=f"spacing of the rates {_default('exp')}")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; shared flags live in parent parsers. Every default a flag
    states comes from `lrsearch.core.defaults` and is written by `_default`."""
    from lrsearch.core.defaults import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_RANGE_STEPS, DEFAULT_TRIALS

    common = _Parser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more progress on stderr (-vv: debug messages too)")
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
                       help=f"validation fraction of a CSV or image folder {_default(0.2)}")
    group.add_argument("--unsafe", action="store_true",
                       help="load a .keras model with Lambda layers (runs code from the file: "
                            "only for files you trust)")
    group.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                       help=f"batch size for arrays, recorded in schedule.json {_default(DEFAULT_BATCH_SIZE)}")
    group.add_argument("--seed", type=_seed, default=0, help=f"random seed {_default(0)}")

    study = _Parser(add_help=False)
    group = study.add_argument_group("study")
    # None when not given, so the library can tell what the user asked for from the defaults
    group.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                       help=f"epochs per trial {_default(DEFAULT_EPOCHS)}")
    group.add_argument("--trials", type=_positive_int, default=None, metavar="N",
                       help=f"trials this run adds to the study {_default(DEFAULT_TRIALS)}")
    group.add_argument("--storage", metavar="URL",
                       help="Optuna storage URL (default sqlite:///OUT/study.db); "
                            "the same URL and --study resume a study")
    group.add_argument("--study", metavar="NAME", help="study name (default: the model file's name)")
    group.add_argument("--out", metavar="DIR", help="output folder (default runs/STUDY)")
    group.add_argument("--backend", choices=("optuna", "keras-tuner"), default="optuna",
                       help=f"search backend {_default('optuna')}")
    group.add_argument("--families", default="one_cycle,cyclic", metavar="LIST",
                       help="schedule families to search, comma-separated, of one_cycle, cyclic, wsd, "
                            f"schedule_free {_default('one_cycle,cyclic')}")
    group.add_argument("--metric", default="val_loss", help=f"metric to optimize {_default('val_loss')}")
    group.add_argument("--direction", choices=("minimize", "maximize"), default=None,
                       help="whether --metric is minimized or maximized (default: told by its name)")
    group.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                       help=f"trial pruner {_default('median')}")
    group.add_argument("--fidelity", choices=("truncate", "schedule-halving"), default="truncate",
                       help="truncate: trials of --epochs cut by the pruner (default); schedule-halving: "
                            "complete schedules at 1/4, 1/2, 1 of --epochs, the best half promoted each time")
    group.add_argument("--no-shared-model", action="store_true",
                       help="build a fresh model for every trial instead of resetting one shared model (for a "
                            "train_step that keeps state in Python attributes, which the reset cannot see)")

    parser = _Parser(
        prog="lrsearch",
        description="Learning-rate schedules for Keras 3 models, found from evidence.",
        parents=[common],
    )
    from lrsearch.core.version import __version__

    parser.add_argument("--version", action="version", version=f"lrsearch {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable[..., int], help: str, parents: list[argparse.ArgumentParser]):
        p = sub.add_parser(name, help=help, description=help, parents=[common, *parents])
        p.set_defaults(func=func)
        return p

    studied = _range_flags(DEFAULT_RANGE_STEPS)
    p = add("auto", cmd_auto,
            "range test -> momentum and weight-decay sweeps -> study -> schedule.json -> report.html",
            [model, studied, study])
    p.add_argument("--no-sweeps", action="store_true", help="skip the momentum and weight-decay sweeps")
    p.add_argument("--fresh", action="store_true",
                   help="start over: redo the range test and sweeps, and delete the study of this name "
                        "from its storage, instead of resuming")
    p.add_argument("--budget", type=_budget, metavar="N|Ns",
                   help="epochs (e.g. 48) or seconds (e.g. 600s) for everything: range test, sweeps, trials and "
                        "final fit; trials and epochs are planned to fit it (the plan overrides --trials and "
                        "--epochs)")
    p.add_argument("--keep-optimizer", action="store_true",
                   help="race only your optimizer: a short budget's race otherwise also tries a Schedule-Free "
                        "twin of it and exports the twin when it wins")
    p.add_argument("--final-epochs", type=_whole_number, metavar="E",
                   help="train the chosen schedule over E epochs and save final_model.keras in the run folder "
                        "(0: none; with --budget the planner decides: a budget too short for four trials "
                        "races a few short ones and trains the winner over most of it)")

    add("range-test", cmd_range_test,
        "LR range test: writes range_test.csv and .png, prints the suggested bounds as JSON",
        [model, _range_flags(None)]).add_argument("--out", metavar="DIR", help="output folder (default runs/NAME)")

    p = add("suggest", cmd_suggest, "suggest rate bounds from a loss curve CSV (columns lr, loss)", [])
    p.add_argument("curve", metavar="CURVE.csv", help="a range-test CSV or any CSV with lr and loss columns")
    p.add_argument("--loss-column", default="loss", metavar="NAME", help=f"column of losses {_default('loss')}")
    p.add_argument("--optimizer", metavar="CLASS",
                   help="optimizer class that ran the test (sets the margin below the loss minimum: "
                        "3 for SGD, 1.5 for Adam-like); default: the one in the range test's .meta.json")

    p = add("tune", cmd_tune,
            "study of schedules inside the bounds of a range test (run first unless given)",
            [model, studied, study])
    p.add_argument("--range-test", dest="curve", metavar="CSV",
                   help="bounds from this range-test CSV instead of running a new test")
    p.add_argument("--bounds", nargs=2, type=_rate, metavar=("BASE_LR", "MAX_LR"),
                   help="search inside these bounds instead of running a range test")

    p = add("export", cmd_export, "write the best schedule of a stored study as schedule.json", [])
    p.add_argument("--from", "--out", dest="run_folder", metavar="RUN_FOLDER",
                   help="run folder of the study: its study.db is the storage (--out is the older name)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL of the study, instead of --from")
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    p.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="file to write (default RUN_FOLDER/schedule.json; with --storage, ./schedule.json)")

    p = add("plot", cmd_plot, "draw a range-test CSV, a sweep CSV or a schedule.json as PNG", [])
    p.add_argument("path", metavar="PATH",
                   help="range_test.csv, sweep_momentum.csv, sweep_weight_decay.csv or schedule.json of a run")
    p.add_argument("-o", "--output", metavar="PNG", help="image to write (default: PATH with .png)")

    p = add("dashboard", cmd_dashboard, "start optuna-dashboard on a study's storage (localhost)", [])
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL")
    p.add_argument("--out", metavar="DIR",
                   help="run folder: its study.db is the storage, its artifacts/ the files attached to the study")
    p.add_argument("--host", default="127.0.0.1", help=f"address to listen on {_default('127.0.0.1')}")
    p.add_argument("--port", type=_port, default=8080, help=f"port {_default(8080)}")

    p = add("report", cmd_report, "write DIR/report.html from a run folder", [])
    p.add_argument("dir", metavar="DIR", help="the run folder (the --out of auto or tune)")
    p.add_argument("--storage", metavar="URL", help="storage of the study (default DIR/study.db)")
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    return parser


# --------------------------------------------------------------------------- main


def _configure_logging(args: argparse.Namespace | None) -> None:
    level = logging.INFO
    if args is not None:
        level = logging.ERROR if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
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
    """Optuna's records without tracebacks, and without its "Trial N failed ..." lines:
    lrsearch says itself, in one line, why a trial failed."""
    record.exc_info = None
    record.exc_text = None
    return not (record.levelno == logging.WARNING and " failed with " in str(record.msg))


def _error(message: str) -> None:
    line = " ".join(str(message).split())  # always exactly one line
    print(f"lrsearch: error: {line}", file=sys.stderr, flush=True)


def _storage_failure(exc: BaseException) -> Exception | None:
    """The one-line error for a database failure in a running study (None: a bug)."""
    if "optuna" not in sys.modules and "sqlalchemy" not in sys.modules:
        return None
    from lrsearch.study.storage import storage_failure

    return storage_failure(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 error, 2 usage, 130 Ctrl-C, 143 SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not debug:  # TensorFlow's C++ start-up lines, unless the user set a level or asked
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    state = State()
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    _configure_logging(args)
    signals = watch_signals(state)
    live = wanted(sys.stderr, quiet=args.quiet, verbose=args.verbose)  # bars only on a terminal
    try:
        with reporting(LiveProgress() if live else Progress()):
            return args.func(args, state)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        return interrupted(state, signals, exc)
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
            return interrupted(state, signals)
        failure = _storage_failure(exc)
        if failure is not None:  # the study's database: locked, full, read-only, silent
            _error(str(failure))
            return EXIT_ERROR
        _error(f"unexpected {type(exc).__name__}: {first_line(exc)} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
    finally:
        signals.restore()


if __name__ == "__main__":  # pragma: no cover
    exit_process(main())
