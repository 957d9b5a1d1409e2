"""Live progress: what the range test, sweeps and studies report, and how it is shown."""

from __future__ import annotations

import io
import sys

import keras
import numpy as np
import pytest

import lrsearch
from lrsearch.core import progress


class Recorder(progress.Progress):
    """Keeps every call, as (name, args)."""

    live = True

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.titles: list[str] = []

    def bar(self, total, desc, unit="step"):
        recorder = self
        recorder.calls.append(("bar", self.titles[-1] if self.titles else desc, total, unit))

        class Bar:
            def update(self, current, values=None):
                recorder.calls.append(("update", current, tuple(name for name, _ in values or ())))

            def close(self):
                pass

        return Bar()

    def section(self, desc):
        import contextlib

        @contextlib.contextmanager
        def titled():
            self.titles.append(desc)
            yield
            self.titles.pop()

        return titled()

    def study_begin(self, trials, epochs, metric, direction, best=None, best_trial=None):
        self.calls.append(("study_begin", trials, epochs, metric, direction, best, best_trial))

    def trial_begin(self, number=None):
        self.calls.append(("trial_begin", number))

    def trial_epoch(self, epoch, value):
        self.calls.append(("trial_epoch", epoch))

    def trial_end(self, value, state="complete"):
        self.calls.append(("trial_end", state))


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x.sum(axis=1) > 0).astype("int32")


def _build():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def test_silent_by_default_and_installed_for_a_block():
    assert not progress.current().live
    recorder = Recorder()
    with progress.reporting(recorder):
        assert progress.current() is recorder
    assert not progress.current().live


def test_range_test_and_sweep_report_their_steps():
    recorder = Recorder()
    with progress.reporting(recorder):
        lrsearch.range_test(_build(), _data(), steps=12, min_lr=1e-3, max_lr=1.0, diverge=0, batch_size=16)
        lrsearch.sweep(_build, _data(), param="momentum", values=(0.9, 0.8), steps=5, min_lr=1e-3, max_lr=1.0,
                       diverge=0, batch_size=16)
    bars = [c for c in recorder.calls if c[0] == "bar"]
    assert bars == [("bar", "range test", 12, "step"), ("bar", "sweep momentum=0.9 (1/2)", 5, "step"),
                    ("bar", "sweep momentum=0.8 (2/2)", 5, "step")]
    first = recorder.calls[1:13]
    assert first == [("update", i, ("lr", "loss", "smooth_loss")) for i in range(1, 13)]


def test_a_study_reports_trials_and_epochs(tmp_path):
    recorder = Recorder()
    with progress.reporting(recorder):
        lrsearch.tune(_build, _data(), validation_data=_data(32), bounds=(0.01, 0.3), epochs=2, trials=2,
                      batch_size=16, out_dir=tmp_path, study_name="p", seed=0)
    assert recorder.calls == [
        ("study_begin", 2, 2, "val_loss", "minimize", None, None),
        ("trial_begin", 0), ("trial_epoch", 1), ("trial_epoch", 2), ("trial_end", "complete"),
        ("trial_begin", 1), ("trial_epoch", 1), ("trial_epoch", 2), ("trial_end", "complete"),
    ]
    # resumed: the stored best is where "best so far" starts
    recorder = Recorder()
    with progress.reporting(recorder):
        result = lrsearch.tune(_build, _data(), validation_data=_data(32), bounds=(0.01, 0.3), epochs=2, trials=1,
                               batch_size=16, out_dir=tmp_path, study_name="p", seed=0)
    first_two = result.trials[result.trials["number"] < 2]
    best = first_two.loc[first_two["value"].idxmin()]
    assert recorder.calls[0] == ("study_begin", 1, 2, "val_loss", "minimize", pytest.approx(best["value"]),
                                 int(best["number"]))
    assert recorder.calls[1] == ("trial_begin", 2)


def test_live_progress_lines():
    stream = io.StringIO()
    live = progress.LiveProgress(stream, loggers=(), ncols=160)
    bar = live.bar(4, "range test")
    for i in range(1, 5):
        bar.update(i, [("lr", 0.001 * 10 ** i), ("loss", 2.0 / i)])
    live.study_begin(3, 2, "val_loss", "minimize")
    live.trial_begin(0)
    live.trial_epoch(1, 0.9)
    assert live.status() == "trial 1/3, epoch 1/2, val_loss=0.9"
    live.trial_epoch(2, 0.5)
    live.trial_end(0.5)
    live.trial_begin(1)
    live.trial_epoch(1, 0.7)
    live.trial_end(0.7, "pruned")  # pruned: never the best
    live.trial_begin(2)
    live.trial_epoch(2, 0.4)
    assert live.status() == "trial 3/3, epoch 2/2, val_loss=0.4, best=0.5 (#0)"
    live.trial_end(0.4)
    assert live.status() == "trial 3/3, epoch 2/2, val_loss=0.4, best=0.4 (#2)"
    live.close()
    text = stream.getvalue()
    assert "range test: 100%" in text and "4/4 steps" in text and "lr=10, loss=0.5" in text
    assert "study: 100%" in text and "3/3 trials" in text and "best=0.4 (#2)" in text


def test_maximized_metric_and_a_resumed_best():
    live = progress.LiveProgress(io.StringIO(), loggers=())
    live.study_begin(2, 1, "val_accuracy", "maximize", best=0.8, best_trial=4)
    live.trial_begin(5)
    live.trial_end(0.7)
    assert live.status().endswith("best=0.8 (#4)")
    live.trial_begin(6)
    live.trial_end(0.9)
    assert live.status().endswith("best=0.9 (#6)")
    live.close()


def test_wanted_only_on_a_terminal_without_q_or_v():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress.wanted(Tty())
    assert not progress.wanted(io.StringIO())
    assert not progress.wanted(Tty(), quiet=True)
    assert not progress.wanted(Tty(), verbose=1)


# --------------------------------------------------------------------------- lines in order


class _Terminal(io.StringIO):
    """What a terminal reports itself as (the bytes written are kept)."""

    def isatty(self):
        return True


def _screen(text: str) -> list[str]:
    """The lines a terminal ends up showing: each line's text after its last carriage return."""
    lines = (line.rsplit("\r", 1)[-1].strip() for line in text.split("\n"))
    return [line for line in lines if line]


def test_keras_bar_of_a_range_test_that_stops_early_ends_its_line(monkeypatch):
    """Keras ends a bar only at its last step; one that stopped early is ended on close."""
    out = _Terminal()
    monkeypatch.setattr("sys.stdout", out)
    result = lrsearch.range_test(_build(), _data(), steps=40, min_lr=1e-2, max_lr=1e4, diverge=2.0,
                                 batch_size=16, verbose=1)
    print("DONE")
    assert result.stopped in ("diverged", "nan") and len(result.frame) < 40
    lines = out.getvalue().split("\n")
    assert lines[-2:] == ["DONE", ""]
    assert f"{len(result.frame) - (result.stopped == 'nan')}/40" in lines[-3] and "smooth_loss: " in lines[-3]


def test_no_keras_bar_into_a_file_or_a_pipe(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    lrsearch.range_test(_build(), _data(), steps=12, min_lr=1e-3, max_lr=1.0, diverge=0, batch_size=16,
                        verbose=1)
    assert out.getvalue() == ""
    assert progress.interactive(_Terminal()) and not progress.interactive(io.StringIO())


def test_live_bars_and_log_lines_come_in_the_order_things_happened(capsys):
    """Each bar is closed when its test ends: a line logged after it shows below it (not
    above a bar left open), and a sweep value is named once (in its bar's title)."""
    import logging

    logger = logging.getLogger("lrsearch")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with progress.reporting(progress.LiveProgress(sys.stderr, loggers=("lrsearch",), ncols=100)):
            lrsearch.range_test(_build(), _data(), steps=12, min_lr=1e-3, max_lr=1.0, diverge=0, batch_size=16,
                                verbose=0)
            logger.info("momentum sweep over 0.9, 0.8")
            lrsearch.sweep(_build, _data(), param="momentum", values=(0.9, 0.8), steps=5, min_lr=1e-3,
                           max_lr=1.0, diverge=0, batch_size=16)
            logger.info("study 'p': 2 trials")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    screen = _screen(capsys.readouterr().err)
    assert [line.split(":")[0] for line in screen] == [
        "range test", "momentum sweep over 0.9, 0.8", "sweep momentum=0.9 (1/2)", "sweep momentum=0.8 (2/2)",
        "study 'p'"]
    assert "12/12 steps" in screen[0] and "5/5 steps" in screen[2] and "5/5 steps" in screen[3]


@pytest.mark.slow
def test_command_line_writes_no_bar_and_no_colour_into_a_log(tmp_path):
    """`lrsearch range-test MODEL > out 2> err`: the log holds whole lines, no bar, no escape code."""
    import os
    import subprocess

    from tests.support import CLI_MODEL, ROOT

    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        code = subprocess.run([sys.executable, "-m", "lrsearch", "range-test", str(CLI_MODEL), "--steps", "30",
                               "--out", str(tmp_path / "run")], stdout=out, stderr=err, cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300).returncode
    log = (tmp_path / "err").read_text()
    assert code == 0, log
    assert "\x1b" not in log and "\r" not in log and "━" not in log
    assert log.splitlines()[-1] == f"wrote {tmp_path / 'run' / 'range_test.csv'} and {tmp_path / 'run' / 'range_test.png'}"
    assert '"max_lr"' in (tmp_path / "out").read_text()
