"""Ctrl-C and SIGTERM held back while a study books its trials.

Optuna starts a trial's heartbeat thread before the objective's `try` and stops it after
the trial is told. A KeyboardInterrupt raised in between leaves that thread running with
nobody to stop it (the process then hangs at exit) and the trial RUNNING in the storage.
Inside `held()` a signal is noted instead of raised; it is raised when `interruptible()`
opens (where a trial trains, inside Optuna's `try`, so the trial is failed at once) or
when `held()` closes. Outside `held()` nothing changes.

The command line's signal handler ends in `deliver`; for a library caller `held()` routes
Ctrl-C through it while Python's own handler is in place. Both work in the main thread
only, where Python runs signal handlers.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["deliver", "held", "interruptible"]


class _Hold:
    """The open `held()` and `interruptible()` levels and the signal noted meanwhile."""

    depth = 0
    open = 0
    pending = False


_HOLD = _Hold()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def deliver(signum: int, frame: Any) -> None:
    """A signal handler's last step: raise KeyboardInterrupt now, or note it while held."""
    if _HOLD.depth and not _HOLD.open:
        _HOLD.pending = True
        return
    signal.default_int_handler(signum, frame)


def _raise_pending() -> None:
    if _HOLD.pending:
        _HOLD.pending = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Note Ctrl-C / SIGTERM instead of raising them, except inside `interruptible()`;
    one noted is raised as KeyboardInterrupt on leaving (unless one is already on its way)."""
    if not _main_thread():
        yield
        return
    own = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, deliver) if own else None
    outer_open, _HOLD.open = _HOLD.open, 0
    _HOLD.depth += 1
    interrupted = False
    try:
        yield
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        _HOLD.depth -= 1
        _HOLD.open = outer_open
        if own:
            signal.signal(signal.SIGINT, previous)
        if interrupted:
            _HOLD.pending = False
        elif not _HOLD.depth:
            _raise_pending()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside `held()`: signals raise at once again; one noted before is raised on entry."""
    if not _main_thread() or not _HOLD.depth:
        yield
        return
    _HOLD.open += 1
    try:
        _raise_pending()
        yield
    finally:
        _HOLD.open -= 1
