"""Live progress of a run: the range test's steps, each sweep value, the study's trials.

Library code tells the *current* reporter what it is doing (`current()`); unless a caller
installed another with `reporting(...)`, that is a `Progress` that shows nothing, so the
library never prints. The command line installs a `LiveProgress` (tqdm bars on stderr)
when stderr is a terminal and neither `-q` nor `-v` was given:

    range test:  62%|█████████▉      | 99/160 steps [00:03<00:02, lr=0.0813, loss=0.612]
    sweep momentum=0.9 (2/3): 100%|████████████████| 41/41 steps [00:01<00:00, lr=0.92, loss=0.544]
    study:  35%|█████▌          | 7/20 trials [00:28<00:52, trial 8/20, epoch 4/10, val_loss=0.312, best=0.287 (#3)]

Bars are drawn only where they are redrawn in place: the command line's on a terminal,
Keras' (`verbose=1` in Python) on a terminal or in a notebook (`interactive`); written to
a file or a pipe, a bar would leave its every redraw and colour code in the log. Every
bar ends its line when it is closed, also when its run stopped early (`KerasBar`), so a
line logged after it starts on its own.

`trial 8/20` counts this run's trials; `#3` is the study's number of the best trial (as
in `trials.csv` and the dashboard). A trial's value is its metric at its last epoch;
pruned and failed trials do not count toward the best. The reporter lives in a context variable,
so it follows the code that installed it and nothing else.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

__all__ = ["KerasBar", "LiveProgress", "Progress", "current", "interactive", "reporting", "wanted"]


class _NoBar:
    """A bar that shows nothing (the interface of `keras.utils.Progbar.update`)."""

    def update(self, current: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class Progress:
    """What library code reports to; this one shows nothing.

    `live` says whether anyone watches, so callers can skip their own display.
    """

    live = False

    def bar(self, total: int, desc: str, unit: str = "step") -> Any:
        """A bar over `total` units: `update(done, [(name, value), ...])`, `close()`."""
        return _NoBar()

    @contextlib.contextmanager
    def section(self, desc: str) -> Iterator[None]:
        """Bars opened inside are titled `desc` (e.g. the sweep value they test)."""
        yield

    def study_begin(self, trials: int, epochs: int, metric: str, direction: str,
                    best: float | None = None, best_trial: int | None = None) -> None:
        """A study starts `trials` trials of `epochs` epochs; `best` is a resumed study's."""

    def trial_begin(self, number: int | None = None) -> None:
        """A trial starts (`number` as the study counts it, when known)."""

    def trial_epoch(self, epoch: int, value: float) -> None:
        """The running trial finished `epoch` (1-based) with `value` of the metric."""

    def trial_end(self, value: float | None, state: str = "complete") -> None:
        """The running trial ended: `state` complete (with `value`), pruned or failed."""

    def close(self) -> None:
        """Close every open bar."""


_CURRENT: contextvars.ContextVar[Progress] = contextvars.ContextVar("lrsearch_progress", default=Progress())


def current() -> Progress:
    """The reporter library code tells its progress to (silent unless one is installed)."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Install `progress` as the current reporter while the block runs; close it after."""
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        progress.close()
        _CURRENT.reset(token)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def wanted(stream: TextIO, *, quiet: bool = False, verbose: int = 0) -> bool:
    """Whether to show live progress on `stream`: a terminal, and no `-q` (silence) or
    `-v` (Keras' and Optuna's own bars instead)."""
    if quiet or verbose:
        return False
    return _isatty(stream)


def interactive(stream: TextIO | None = None) -> bool:
    """Whether a bar redrawn in place shows as one line on `stream` (`sys.stdout`, where
    Keras prints its bars, by default): a terminal or a notebook, not a file or a pipe."""
    return _isatty(sys.stdout if stream is None else stream) or "ipykernel" in sys.modules


class KerasBar:
    """A `keras.utils.Progbar` whose `close()` ends its line when the run stopped before
    its last step (Keras ends it only at the target), so that what is printed next does
    not run on after the last values (`... smooth_loss: 0.3064DONE`).
    """

    def __init__(self, progbar: Any) -> None:
        self._bar = progbar
        self._done = 0

    def update(self, current: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        self._bar.update(current, values)
        self._done = int(current)  # what the bar shows

    def close(self) -> None:
        target = self._bar.target
        if target is not None and 0 < self._done < target:
            self._bar.update(self._done, finalize=True)  # the last values again, then a newline
        self._done = 0


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


_FORMAT = "{desc}: {percentage:3.0f}%|{bar:16}| {n_fmt}/{total_fmt} {unit}s [{elapsed}<{remaining}{postfix}]"


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class _Bar:
    """A tqdm bar behind `keras.utils.Progbar`'s `update(current, values)`."""

    def __init__(self, tqdm_bar: Any) -> None:
        self._bar = tqdm_bar

    def update(self, current: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        if values:
            self._bar.set_postfix_str(", ".join(f"{k}={_number(float(v))}" for k, v in values), refresh=False)
        self._bar.update(max(0, int(current) - self._bar.n))

    def close(self) -> None:
        self._bar.close()


class LiveProgress(Progress):
    """tqdm bars on `stream` (stderr by default); log lines of `loggers` are written above
    the bars instead of through them while it is installed.

    Args:
        stream: where the bars go.
        loggers: names of loggers whose stream handlers go through tqdm meanwhile.
        **tqdm_kwargs: passed to every `tqdm` (e.g. `mininterval`, `ncols`).
    """

    live = True

    def __init__(self, stream: TextIO | None = None, *, loggers: Sequence[str] = ("lrsearch", "optuna"),
                 **tqdm_kwargs: Any) -> None:
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.stream = stream if stream is not None else sys.stderr
        self._kwargs = {"dynamic_ncols": True, "mininterval": 0.2, "bar_format": _FORMAT, **tqdm_kwargs}
        if not _columns(self.stream):  # a terminal that reports no size (a bare pty): tqdm would hide the bars
            self._kwargs.update(dynamic_ncols=False, ncols=self._kwargs.get("ncols") or 100, nrows=24)
        self._open: list[Any] = []
        self._titles: list[str] = []
        self._study: Any = None
        self._redirect = logging_redirect_tqdm([logging.getLogger(name) for name in loggers])
        self._redirect.__enter__()
        self._reset_study(0, 0, "", "minimize")

    def _tqdm(self, **kwargs: Any) -> Any:
        from tqdm import tqdm

        return tqdm(file=self.stream, **self._kwargs, **kwargs)

    def _close_bars(self) -> None:
        while self._open:
            self._open.pop().close()

    # ------------------------------------------------------------ steps
    def bar(self, total: int, desc: str, unit: str = "step") -> Any:
        self._close_bars()
        title = self._titles[-1] if self._titles else desc
        bar = _Bar(self._tqdm(total=int(total), desc=title, unit=unit, leave=True))
        self._open.append(bar)
        return bar

    @contextlib.contextmanager
    def section(self, desc: str) -> Iterator[None]:
        self._titles.append(desc)
        try:
            yield
        finally:
            self._titles.pop()
            self._close_bars()

    # ------------------------------------------------------------ study
    def _reset_study(self, trials: int, epochs: int, metric: str, direction: str) -> None:
        self.trials, self.epochs, self.metric, self.direction = trials, epochs, metric, direction
        self.best: float | None = None
        self.best_trial: int | None = None
        self.started = 0  # trials begun in this run
        self.trial: int | None = None
        self.epoch = 0
        self.value: float | None = None

    def study_begin(self, trials: int, epochs: int, metric: str, direction: str,
                    best: float | None = None, best_trial: int | None = None) -> None:
        self._close_bars()
        if self._study is not None:
            self._study.close()
        self._reset_study(int(trials), int(epochs), metric, direction)
        self.best, self.best_trial = best, best_trial
        self._study = self._tqdm(total=self.trials, desc="study", unit="trial", leave=True)
        self._show()

    def trial_begin(self, number: int | None = None) -> None:
        self.started += 1
        self.trial = number if number is not None else self.started - 1
        self.epoch, self.value = 0, None
        self._show()

    def trial_epoch(self, epoch: int, value: float) -> None:
        self.epoch, self.value = int(epoch), float(value)
        self._show()

    def trial_end(self, value: float | None, state: str = "complete") -> None:
        if state == "complete" and value is not None and math.isfinite(value):
            better = (self.best is None or (value < self.best if self.direction == "minimize" else value > self.best))
            if better:
                self.best, self.best_trial = float(value), self.trial
        if self._study is not None:
            self._study.update(1)
            self._show()
            if self._study.n >= self._study.total:  # the last trial of this run: the bar is done
                self._study.close()
                self._study = None

    def status(self) -> str:
        """The study's line after the bar: trial, epoch, the metric, the best so far."""
        parts = []
        if self.trial is not None:
            parts.append(f"trial {self.started}/{self.trials}" if self.trials else f"trial {self.started}")
            if self.epochs:
                parts.append(f"epoch {self.epoch}/{self.epochs}")
            if self.value is not None:
                parts.append(f"{self.metric}={_number(self.value)}")
        if self.best is not None:
            parts.append(f"best={_number(self.best)} (#{self.best_trial})")
        return ", ".join(parts)

    def _show(self) -> None:
        if self._study is not None:
            self._study.set_postfix_str(self.status(), refresh=True)

    def close(self) -> None:
        self._close_bars()
        if self._study is not None:
            self._study.close()
            self._study = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
