"""report.html: one self-contained page, checked as text and rendered in headless Chromium.

Three run folders: a real 4-trial study (`run_dir`), a real budgeted `auto` run whose
final fit writes the model (`budget_dir`), and one written by hand with known numbers
and a widened range (`hand_dir`)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from lrsearch.export.spec import ScheduleSpec
from lrsearch.rangetest.analysis import LRSuggestion
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.run.report import MIN_TRIALS_FOR_IMPORTANCE, plot_file, write_report
from lrsearch.schedules import OneCycle
from lrsearch.study.tune import tune
from tests.support import CLI_MODEL

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


def _section(page: str, title: str) -> str:
    """The page from heading `title` to the next `<h2>`."""
    return page.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]


@pytest.mark.slow
def test_report_holds_the_run(run_dir):
    import optuna

    page = (run_dir / "report.html").read_text()
    study = optuna.load_study(study_name="report-test", storage=f"sqlite:///{run_dir / 'study.db'}")
    best = study.best_trial
    suggestion = RangeTestResult.load(run_dir / "range_test.csv").suggestion
    assert "<h1>report-test</h1>" in page
    # the chosen schedule comes first, its peak the one schedule.json holds
    assert page.index("<h2>Chosen schedule</h2>") < page.index("<h2>Study</h2>") < page.index("<h2>Range test</h2>")
    peak = json.loads((run_dir / "schedule.json").read_text())["schedule"]["config"]["max_lr"]
    assert f"→ {peak:.4g} →" in _section(page, "Chosen schedule")
    study_part = _section(page, "Study")
    assert f"<th>best trial</th><td>{best.number}</td>" in study_part
    assert f"<th>best value</th><td>{best.value:.4g}</td>" in study_part
    assert f"<td>{suggestion.base_lr:.4g}</td>" in page and f"<td>{suggestion.max_lr:.4g}</td>" in page
    # one row per trial in the trials table, the best one marked
    table = page.split('<table class="trials">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == TRIALS + 1 and table.count('class="best"') == 1
    # the best trial's metrics as Keras logged them at its last epoch, accuracy included; not
    # the rate it ended at
    history = pd.read_csv(run_dir / "history.csv")
    last = history[history["trial"] == best.number].sort_values("epoch").iloc[-1]
    assert f"<th>best trial: val_accuracy</th><td>{last['val_accuracy']:.4g}</td>" in study_part
    assert f"<th>best trial: loss</th><td>{last['loss']:.4g}</td>" in study_part
    assert "best trial: lr" not in page and "best trial: momentum" not in page
    # a missing value is an empty cell, never nan
    more = page.split('<table class="trials-more">', 1)[1].split("</table>", 1)[0]
    assert "<td></td>" in more and not re.search(r"<td>(nan|NaN|None|NaT|&lt;NA&gt;)</td>", page)
    # range test, schedule as embedded PNGs; history, per-epoch values and importances as
    # Optuna's interactive charts, drawn by the one plotly.js inlined in the head
    body = _without_plotly_js(page)
    images = _images(body)
    assert len(images) == 2 and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert body.count('<div class="chart"') == 3 and body.count("Plotly.newPlot(") == 3
    assert TRIALS >= MIN_TRIALS_FOR_IMPORTANCE and "Could not" not in body
    assert not re.search(r'(src|href)="(https?:)?//', body)  # nothing fetched from elsewhere
    assert "<script src" not in page
    assert "<h2>Final fit</h2>" not in page  # no final fit in this run


def _chromium() -> str:
    """The headless browser; a skip without one, a failure under CI, which installs it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return browser


HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.mark.slow
def test_report_renders_in_chromium(run_dir, tmp_path):
    browser = _chromium()
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
        [browser, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", copy.as_uri()],
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
    assert f"{best.value:.4g}" in dom


@pytest.mark.slow
def test_report_of_a_study_alone_lists_its_trials(run_dir, tmp_path):
    import optuna

    study = optuna.load_study(study_name="report-test", storage=f"sqlite:///{run_dir / 'study.db'}")
    page = write_report(tmp_path, study=study).read_text()
    table = page.split('<table class="trials">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == TRIALS + 1 and "No schedule.json in this run." in page


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


@pytest.fixture(scope="module")
def budget_dir(tmp_path_factory) -> Path:
    """A real budgeted `auto` run on the example model: 14 epochs of 10 steps, trials of 4
    asked, so a race of three one-epoch trials and a final fit of 7 epochs."""
    from lrsearch.run.auto import auto

    folder = tmp_path_factory.mktemp("budget") / "run"
    auto(str(CLI_MODEL), out_dir=folder, study_name="b", budget=14, epochs=4, range_steps=40, min_lr=1e-4,
         max_lr=10.0, pruner=None, verbose=0, momentum_values=(0.9, 0.8))
    return folder


@pytest.mark.slow
def test_report_of_a_budgeted_run_leads_with_the_final_fit(budget_dir):
    import optuna

    page = (budget_dir / "report.html").read_text()
    final = json.loads((budget_dir / "final_schedule.json").read_text())
    config = final["schedule"]["config"]
    chosen = _section(page, "Chosen schedule")
    # what the user takes away: the final fit's schedule, its rates as the file holds them
    assert final["epochs"] == 7 and "<code>final_schedule.json</code>" in chosen
    assert f"{config['max_lr'] / config['div_factor']:.4g} → {config['max_lr']:.4g} → " in chosen
    assert "<th>epochs</th><td>7</td>" in chosen and "<th>optimizer</th><td>SGD</td>" in chosen
    assert "<th>batch size</th><td>32</td>" in chosen and "trained again over 7 in the final fit" in chosen
    assert 'lrsearch.load_schedule("final_schedule.json")' in chosen and "batch_size=32, epochs=7" in chosen
    # the range searched is the study's own record of its space
    meta = optuna.load_study(study_name="b", storage=f"sqlite:///{budget_dir / 'study.db'}").user_attrs["lrsearch"]
    low, high = meta["space"]["base_lr"], max(meta["space"]["max_lr"], meta["space"]["peak_max_lr"])
    assert f"<th>rates searched</th><td>{low:.4g} to {high:.4g}</td>" in _section(page, "Study")
    # the final fit's files and its last epoch
    fit = _section(page, "Final fit")
    for name in ("final_model.keras", "final_schedule.json", "final_history.csv"):
        assert f"<td><code>{name}</code></td>" in fit
    last = pd.read_csv(budget_dir / "final_history.csv").iloc[-1]
    assert int(last["epoch"]) == 7 and f"<th>last epoch: val_loss</th><td>{last['val_loss']:.4g}</td>" in fit
    assert len(_images(fit)) == 1  # its curve
    # the trials table: what a user reads; Optuna's bookkeeping behind the toggle
    main = page.split('<table class="trials">', 1)[1].split("</table>", 1)[0]
    assert main.count("<tr") == 4 and "<th>seconds</th>" in main and "oc_<wbr>max_<wbr>lr" in main
    for internal in ("retry_of", "failure", "rung", "started", "duration_s", "epochs_run", "params_"):
        assert internal not in main
    details = page.split("<details><summary>More columns", 1)[1].split("</details>", 1)[0]
    assert all(f"<th>{c}</th>" in details for c in ("retry_of", "failure", "rung", "started"))
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", page.split("<body>", 1)[1])  # no microseconds


@pytest.mark.slow
def test_screenshot_of_the_report_is_not_blank(budget_dir, tmp_path):
    from PIL import Image

    browser = _chromium()
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [browser, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1200,2000", (budget_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1 << 24)
    white = next((n for n, c in colours if c == (255, 255, 255)), 0)
    assert len(colours) > 100 and white < 0.95 * 1200 * 2000  # text, tables and plots drawn


def _falling_curve() -> RangeTestResult:
    """A range test whose loss still falls at its largest rate: the suggestion warns."""
    lr = np.geomspace(1e-6, 10.0, 120)
    loss = 2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lr) + 2)))
    frame = pd.DataFrame({"step": np.arange(len(lr)), "lr": lr, "loss": loss, "smooth_loss": loss})
    return RangeTestResult(frame=frame, meta={"smooth": 0.98, "diverge": 4.0})


@pytest.fixture
def hand_dir(tmp_path) -> Path:
    """A run folder written by hand: a one-cycle peak of 0.123 found after the study widened
    its range from [0.0186, 0.0696] to [0.0186, 0.2201]; no study storage."""
    _falling_curve().save(tmp_path / "range_test.csv")
    sched = OneCycle(0.123, total_steps=40, div_factor=25.0, final_div_factor=1e4)
    widened = [{"after_trials": 3, "param": "oc_max_lr", "side": "top", "old": [0.0186, 0.0696],
                "new": [0.0186, 0.2201], "cap": 1.0, "changed": ["oc_max_lr"]}]
    ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(), weight_decay=5e-4,
                 steps_per_epoch=10, epochs=4, batch_size=16,
                 provenance={"study": "hand", "trial": 2, "metric": "val_loss", "value": 0.4321,
                             "direction": "minimize", "family": "one_cycle",
                             "bounds": {"base_lr": 0.0186, "max_lr": 0.0696}, "widened": widened}
                 ).save(tmp_path / "schedule.json")
    pd.DataFrame({
        "number": [0, 1, 2, 3], "state": ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"],
        "value": [0.61, None, 0.4321, 0.5], "epochs_run": [4, 1, 4, 4], "pruned_at": [None] * 4,
        "duration_s": [12.6, 3.2, 11.4, 10.5], "family": ["one_cycle"] * 4, "retry_of": [None, None, None, 1],
        "failure": [None, "nan loss", None, None], "rung": [None] * 4,
        "started": ["2026-12-04 01:13:32.480373"] * 4, "params_family": ["one_cycle"] * 4,
        "params_oc_max_lr": [0.0696, 0.2, 0.123, 0.05],
    }).to_csv(tmp_path / "trials.csv", index=False)
    return tmp_path


def test_report_names_the_chosen_peak_and_the_widened_range(hand_dir):
    page = write_report(hand_dir).read_text()
    chosen = _section(page, "Chosen schedule")
    assert "<th>learning rate (start → peak → end)</th><td>0.00492 → 0.123 → " in chosen
    assert "<th>family</th><td>one-cycle (OneCycle)</td>" in chosen
    assert "<th>momentum</th><td>0.95 → 0.85 → 0.95</td>" in chosen
    assert "<th>weight decay</th><td>0.0005</td>" in chosen and "<th>batch size</th><td>16</td>" in chosen
    assert "trial 2 of study hand, val_loss 0.4321" in chosen
    study = _section(page, "Study")
    assert "<th>rates searched</th><td>0.0186 to 0.2201 (after widening)</td>" in study
    assert "<th>range test suggested</th><td>0.0186 to 0.0696</td>" in study
    assert "<th>rates the trials drew</th><td>0.05 to 0.2</td>" in study
    assert "<li>after 3 trials, the top of oc_max_lr&#x27;s range: 0.0186 to 0.0696 → 0.0186 to 0.2201</li>" in study
    # whole seconds in the table; a failure and a retry only behind the toggle
    main = page.split('<table class="trials">', 1)[1].split("</table>", 1)[0]
    assert main.count('class="best"') == 1 and "<td>13</td>" in main and "nan loss" not in main
    details = page.split("<details><summary>More columns", 1)[1].split("</details>", 1)[0]
    assert "<td>nan loss</td>" in details and "<td>2026-12-04 01:13:32</td>" in details
    # the range test's warning in full, beneath its plot
    warning = _falling_curve().suggestion.warnings[0]
    assert len(warning) > 90 and f"<li>Warning: {warning}</li>" in _section(page, "Range test")
    assert "<h2>Final fit</h2>" not in page
