"""Live progress: what the range test, sweeps and studies report, and how it is shown."""

from __future__ import annotations

import io

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
