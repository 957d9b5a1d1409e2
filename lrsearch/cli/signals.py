"""How the command line takes Ctrl-C and SIGTERM: both interrupt the command as Python's
Ctrl-C does (so a `kill` keeps what Ctrl-C keeps), one line says what was kept, and the
process then ends with 128 + the signal without the interpreter's teardown."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from lrsearch.core import interrupts

if TYPE_CHECKING:
    from lrsearch.cli.commands import State

__all__ = ["Signals", "exit_process", "interrupted", "watch_signals"]

EXIT_CTRL_C, EXIT_SIGTERM = 128 + int(signal.SIGINT), 128 + int(signal.SIGTERM)


class Signals:
    """The handlers `watch_signals` replaced, and the last signal it took."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.received = signal.SIGINT

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def interrupted(state: State, signals: Signals, exc: BaseException | None = None) -> int:
    """The one line saying what was kept (the stage's, then what the interrupted step saved:
    the exception's notes); exit status 128 + the signal (130 Ctrl-C, 143 SIGTERM)."""
    signum = signals.received
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    kept = "; ".join([state.on_interrupt, *getattr(exc, "__notes__", ())])
    print(f"lrsearch: {how}: {kept}", file=sys.stderr, flush=True)
    return 128 + int(signum)


def watch_signals(state: State) -> Signals:
    """Note every Ctrl-C, and take SIGTERM as one: both interrupt as Python does on Ctrl-C,
    so what a Ctrl-C keeps (the curve so far, the finished trials, the running trial
    marked failed at once) a `kill` keeps too."""
    signals = Signals()

    def handler(signum: int, frame: Any) -> None:
        state.sigint = True
        signals.received = signum
        interrupts.deliver(signum, frame)  # raised now, or once Optuna has booked the trial

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signals.previous[signum] = signal.signal(signum, handler)
    return signals


def exit_process(code: int) -> NoReturn:
    """End the process with `code` as `sys.exit` does, except after Ctrl-C or SIGTERM (130,
    143): then at once, without the interpreter's teardown. TensorFlow's runtime threads may
    still be winding down the step the signal stopped, and module teardown racing them can
    kill the process with SIGSEGV after the line saying what was kept, turning the status a
    job scheduler reads into a crash. Everything kept is on disk by then."""
    if code in (EXIT_CTRL_C, EXIT_SIGTERM):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)
