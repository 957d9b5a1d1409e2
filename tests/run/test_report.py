"""report.html: one self-contained page, checked as text and rendered in headless Chromium."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.run.report import MIN_TRIALS_FOR_IMPORTANCE, plot_file, write_report
from lrsearch.study.tune import tune

TRIALS = 4


def _build() -> keras.Model:
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder as `auto` leaves it: a range test, a real 4-trial study, its files."""
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("run")
    # a range-test curve with a known shape: flat, a descent between 1e-3 and 1e-1, a blow-up
    lr = np.geomspace(1e-6, 10.0, 120)
    loss = 2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lr) + 2))) + np.where(lr > 1, (lr - 1) ** 2, 0.0)
    frame = pd.DataFrame({"step": np.arange(len(lr)), "lr": lr, "loss": loss, "smooth_loss": loss})
    RangeTestResult(frame=frame, meta={"smooth": 0.98, "diverge": 4.0}).save(folder / "range_test.csv")

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    suggestion = LRSuggestion(base_lr=0.01, max_lr=0.5, steepest_lr=0.1, valley_lr=0.1, min_loss_lr=0.5)
    tune(_build, (x[:300], y[:300]), validation_data=(x[300:450], y[300:450]), suggestion=suggestion,
         epochs=1, trials=TRIALS, pruner="none", seed=0, out_dir=folder, study_name="report-test")
    write_report(folder)
    return folder


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(src) for src in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)]


def _without_plotly_js(page: str) -> str:
    """The page with its one inlined plotly.js removed (checked to be there once)."""
    from plotly.offline import get_plotlyjs

    library = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    assert page.count(library) == 1 and page.index(library) < page.index("</head>")
    return page.replace(library, "")


@pytest.mark.slow
def test_report_holds_the_run(run_dir):
    import optuna

    page = (run_dir / "report.html").read_text()
    study = optuna.load_study(study_name="report-test", storage=f"sqlite:///{run_dir / 'study.db'}")
    best = study.best_trial
    suggestion = RangeTestResult.load(run_dir / "range_test.csv").suggestion
    assert "<h1>report-test</h1>" in page
    assert f"<th>best trial</th><td>{best.number}</td>" in page
    assert f"<th>best value</th><td>{best.value:.6g}</td>" in page
    assert f"<td>{suggestion.base_lr:.6g}</td>" in page and f"<td>{suggestion.max_lr:.6g}</td>" in page
    # one row per trial in the trials table, the best one marked
    table = page.split('<table class="trials">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == TRIALS + 1 and table.count('class="best"') == 1
    # the best trial's metrics as Keras logged them at its last epoch, accuracy included
    history = pd.read_csv(run_dir / "history.csv")
    last = history[history["trial"] == best.number].sort_values("epoch").iloc[-1]
    assert f"<th>best trial: val_accuracy</th><td>{last['val_accuracy']:.6g}</td>" in page
    assert f"<th>best trial: loss</th><td>{last['loss']:.6g}</td>" in page
    # a missing value is an empty cell, never nan
    assert "<td></td>" in table and not re.search(r"<td>(nan|NaN|None|NaT|&lt;NA&gt;)</td>", page)
    # range test and schedule as embedded PNGs; history, per-epoch values and importances as
    # Optuna's interactive charts, drawn by the one plotly.js inlined in the head
    body = _without_plotly_js(page)
    images = _images(body)
    assert len(images) == 2 and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert body.count('<div class="chart"') == 3 and body.count("Plotly.newPlot(") == 3
    assert TRIALS >= MIN_TRIALS_FOR_IMPORTANCE and "Could not" not in body
    assert not re.search(r'(src|href)="(https?:)?//', body)  # nothing fetched from elsewhere
    assert "<script src" not in page


@pytest.mark.slow
def test_report_renders_in_chromium(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    import optuna

    best = optuna.load_study(study_name="report-test", storage=f"sqlite:///{run_dir / 'study.db'}").best_trial
    page = (run_dir / "report.html").read_text()
    probe = (
        "<script>window.addEventListener('load', () => { const w = [...document.images]"
        ".map(i => i.complete ? i.naturalWidth : -1); const p = document.createElement('p');"
        " const c = document.querySelectorAll('.chart .js-plotly-plot svg.main-svg').length;"
        " const d = document.querySelectorAll('.chart .js-plotly-plot').length;"
        " p.id = 'probe'; p.textContent = 'widths:' + w.join(',') + ';charts:' + d + ';svgs:' + c;"
        " document.body.appendChild(p); });</script>"
    )
    copy = tmp_path / "report.html"
    copy.write_text(page.replace("</body>", probe + "</body>"))
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         copy.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    widths = re.search(r'<p id="probe">widths:([-\d,]*);charts:(\d+);svgs:(\d+)</p>', dom)
    assert widths, "the page's scripts did not run"
    values = [int(w) for w in widths.group(1).split(",")]
    assert len(values) == 2 and all(w > 100 for w in values), values  # every image decoded
    assert int(widths.group(2)) == 3 and int(widths.group(3)) >= 3  # plotly drew the three charts, offline
    assert f"<th>best trial</th><td>{best.number}</td>" in dom
    assert f"{best.value:.6g}" in dom


@pytest.mark.slow
def test_plot_file_knows_each_kind(run_dir, tmp_path):
    out = plot_file(run_dir / "range_test.csv", tmp_path / "rt.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    out = plot_file(run_dir / "schedule.json", tmp_path / "s.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    from lrsearch.core.errors import DataError

    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="neither a range-test CSV"):
        plot_file(tmp_path / "other.csv")


def test_report_of_an_empty_folder_says_what_is_missing(tmp_path):
    page = write_report(tmp_path).read_text()
    assert "No range test in this run." in page and "No study found for this run." in page
    assert "<img" not in page
