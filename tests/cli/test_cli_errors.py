"""Every error a user can cause ends with one line on stderr and a non-zero exit.

Most go through `main([...])` in-process; a few through a real `python -m lrsearch`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from lrsearch.cli.main import main
from tests.support import ROOT



def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    assert lines[0].startswith("lrsearch: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A tiny saved model, good and bad data files, broken model files."""
    d = tmp_path_factory.mktemp("cli")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.save(d / "tiny.keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.integers(0, 3, 40)
    np.savez(d / "good.npz", x_train=x, y_train=y, x_val=x[:8], y_val=y[:8])
    np.savez(d / "partial.npz", x_train=x, y_train=y)
    np.savez(d / "wide.npz", x_train=np.ones((40, 6), "float32"), y_train=y, x_val=np.ones((8, 6), "float32"),
             y_val=y[:8])
    nan = np.full_like(x, np.nan)
    np.savez(d / "nan.npz", x_train=nan, y_train=y, x_val=nan[:8], y_val=y[:8])
    huge = np.full_like(x, 3e38)
    np.savez(d / "huge.npz", x_train=huge, y_train=y, x_val=huge[:8], y_val=y[:8])
    (d / "corrupt.keras").write_bytes(b"\x00garbage" * 100)
    (d / "no_build.py").write_text("def load_data():\n    return None, None\n")
    (d / "bad_import.py").write_text("import not_a_real_module_for_lrsearch\n")
    (d / "bad_syntax.py").write_text("def build_model(:\n    pass\n")
    (d / "unknown_version.json").write_text(json.dumps({"format": "lrsearch.schedule", "version": 999}))
    (d / "not_json.json").write_text("{ this is not json")
    return d


# --------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize(
    "command", ["auto", "range-test", "suggest", "tune", "export", "plot", "dashboard", "report"]
)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and f"usage: lrsearch {command}" in out


def test_top_level_help_lists_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("auto", "range-test", "suggest", "tune", "export", "plot", "dashboard", "report"):
        assert command in out


def test_missing_argument_is_one_line(capsys):
    code, _, err = run(capsys, "auto")
    assert code == 2
    assert "MODEL_FILE" in one_error_line(err)


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--trials", "0", "argument --trials: must be at least 1, got 0"),
        ("--trials", "-3", "argument --trials: must be at least 1, got -3"),
        ("--epochs", "0", "argument --epochs: must be at least 1, got 0"),
        ("--epochs", "two", "argument --epochs: expected a whole number, got 'two'"),
    ],
)
def test_zero_or_negative_trials_and_epochs(capsys, files, flag, value, message):
    code, _, err = run(capsys, "tune", files / "tiny.keras", "--data", files / "good.npz", flag, value)
    assert code == 2
    assert message in one_error_line(err)


def test_min_lr_not_below_max_lr(capsys, files):
    for command in ("range-test", "auto", "tune"):
        code, _, err = run(capsys, command, files / "tiny.keras", "--data", files / "good.npz",
                           "--min-lr", "0.1", "--max-lr", "0.1")
        assert code == 1
        assert "Argument `min_lr` must be below max_lr=0.1. Received: min_lr=0.1" in one_error_line(err)


# --------------------------------------------------------------------------- model files


@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.py", "does not exist"),
        ("no_build.py", "defines no build_model()"),
        ("bad_import.py", "No module named 'not_a_real_module_for_lrsearch'"),
        ("bad_syntax.py", "syntax error at line 1"),
        ("corrupt.keras", "not a .keras model archive"),
    ],
)
def test_bad_model_files(capsys, files, name, message):
    code, out, err = run(capsys, "range-test", files / name, "--steps", "5")
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert message in line and name in line


def test_unreadable_model_file(capsys, files, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.py"
    path.write_text("x = 1\n")
    path.chmod(0)
    code, _, err = run(capsys, "range-test", path)
    assert code == 1 and "cannot read" in one_error_line(err)


def test_keras_without_data(capsys, files):
    code, _, err = run(capsys, "auto", files / "tiny.keras")
    assert code == 1 and "pass its data with --data" in one_error_line(err)


@pytest.mark.parametrize(
    "data,message",
    [
        ("partial.npz", "lacks the arrays x_val, y_val"),
        ("wide.npz", "does not fit the model"),
        ("nan.npz", "x is all NaN"),
        ("huge.npz", "before any training"),
        ("absent.npz", "does not exist"),
    ],
)
def test_bad_data(capsys, files, data, message):
    code, _, err = run(capsys, "tune", files / "tiny.keras", "--data", files / data, "--trials", "1")
    assert code == 1
    assert message in one_error_line(err)


# --------------------------------------------------------------------------- files and storages


def test_unknown_storage_url(capsys, files, tmp_path):
    code, _, err = run(capsys, "export", "--storage", "redis://localhost/0", "-o", tmp_path / "s.json")
    assert code == 1 and "unknown storage kind 'redis'" in one_error_line(err)
    code, _, err = run(capsys, "auto", files / "tiny.keras", "--data", files / "good.npz",
                       "--storage", "nosuch://x", "--out", tmp_path / "run")
    assert code == 1 and "unknown storage kind 'nosuch'" in one_error_line(err)


@pytest.mark.parametrize("name,message", [("unknown_version.json", "version"), ("not_json.json", "JSON")])
def test_bad_schedule_files(capsys, files, name, message):
    pytest.importorskip("lrsearch.export.spec")
    code, _, err = run(capsys, "plot", files / name, "-o", files / "x.png")
    assert code == 1
    assert message in one_error_line(err)


def test_missing_curve_and_run_folder(capsys, tmp_path):
    code, _, err = run(capsys, "suggest", tmp_path / "curve.csv")
    assert code == 1 and "does not exist" in one_error_line(err)
    (tmp_path / "curve.csv").write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "suggest", tmp_path / "curve.csv")
    assert code == 1 and "no column lr, loss" in one_error_line(err)
    code, _, err = run(capsys, "report", tmp_path / "nowhere")
    assert code == 1 and "does not exist" in one_error_line(err)
    code, _, err = run(capsys, "export", "--out", tmp_path)
    assert code == 1 and "holds no study.db" in one_error_line(err)


def test_debug_shows_the_exception(files):
    from lrsearch.core.errors import ModelFileError

    with pytest.raises(ModelFileError):
        main(["--debug", "range-test", str(files / "no_build.py")])


# --------------------------------------------------------------------------- real processes


def _cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lrsearch", *map(str, argv)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def _our_lines(stderr: str) -> list[str]:
    """stderr without the start-up lines TensorFlow's runtime writes to the descriptor when
    `import lrsearch` loads it (CUDA probing; not Python output, not ours)."""
    return [
        line for line in stderr.splitlines()
        if line.strip() and not line.startswith(("WARNING: All log messages before absl", "I0000 ", "W0000 "))
    ]


def test_subprocess_missing_file_is_one_line(tmp_path):
    proc = _cli("auto", tmp_path / "nope.py")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert _our_lines(proc.stderr) == [
        f"lrsearch: error: model file {tmp_path / 'nope.py'} does not exist; check the path"
    ]


def test_subprocess_bad_data_is_one_line(files):
    proc = _cli("range-test", files / "tiny.keras", "--data", files / "wide.npz")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    (line,) = _our_lines(proc.stderr)
    assert line.startswith("lrsearch: error: training data does not fit the model (input (None, 4), batch x (32, 6))")


# --------------------------------------------------------------------------- studies without a winner


def test_export_of_a_study_without_a_completed_trial_is_one_line(capsys, tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="empty")
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    output = tmp_path / "schedule.json"
    code, out, err = run(capsys, "export", "--storage", url, "-o", output)
    assert code == 1 and out == ""
    assert "study 'empty' has no completed trial" in one_error_line(err)
    assert not output.exists()


DIVERGING = """
import keras
import numpy as np


def build_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    return model


def load_data():
    rng = np.random.default_rng(0)
    x, y = (1e4 * rng.normal(size=(128, 4))).astype("float32"), rng.normal(size=(128, 1)).astype("float32")
    return (x, y), (x[:32], y[:32])
"""


def test_tune_whose_trials_all_fail_prints_no_schedule_path(capsys, tmp_path):
    """Rates of 1e5 on inputs of 1e4 make the loss overflow in the first epoch: the trial fails, no
    schedule.json is written, and none is printed."""
    (tmp_path / "diverging.py").write_text(DIVERGING)
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "tune", tmp_path / "diverging.py", "--bounds", "1e5", "1e6", "--trials", "1",
                         "--epochs", "1", "--pruner", "none", "--metric", "loss", "--families", "one_cycle",
                         "--out", out_dir)
    assert code == 0
    printed = out.split()
    assert printed == [str(out_dir / "trials.csv"), str(out_dir / "history.csv")]
    assert not (out_dir / "schedule.json").exists()
    assert "no trial completed" in err


def test_a_bad_label_reads_the_same_from_tensorflow_and_pytorch():
    from lrsearch.core.errors import data_cause

    tf_text = ("Graph execution error:\n\nDetected at node x defined at (most recent call last):\n"
               "Received a label value of 7 which is outside the valid range of [0, 3).  Label values: 0 7 1")
    want = "label 7 out of range for 3 classes (labels must be 0 to 2)"
    assert data_cause(ValueError(tf_text)) == want
    assert data_cause(IndexError("Target 7 is out of bounds."), classes=3) == want  # PyTorch names no classes
    assert data_cause(IndexError("Target 7 is out of bounds.")) == "label 7 out of range"
