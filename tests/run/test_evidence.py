"""Evidence in a run folder is reused only when whole and made from the same inputs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from lrsearch.run import evidence
from lrsearch.study.options import StudyOptions
from tests.support import CLI_MODEL

MODEL = CLI_MODEL


# --------------------------------------------------------------------------- the record itself


def _write(folder: Path, text: str = "lr,loss\n0.1,1.0\n0.2,0.9\n") -> None:
    (folder / "curve.csv").write_text(text)
    (folder / "curve.meta.json").write_text(json.dumps({"steps": 2}))


FP = {"model_file": "aa", "architecture": "bb", "data": "cc", "data_shape": "(40, 4) (40,)", "steps": 100,
      "min_lr": 1e-7, "max_lr": 10.0, "seed": 0, "batch_size": 32, "lrsearch": "0.1.0"}


def test_whole_and_matching_evidence_is_reused(tmp_path):
    _write(tmp_path)
    evidence.record(tmp_path, "curve.csv", FP, ["curve.csv", "curve.meta.json"])
    assert evidence.stale(tmp_path, "curve.csv", dict(FP)) is None


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"steps": 400}, "--steps changed (100 -> 400)"),
        ({"min_lr": 1e-8}, "--min-lr changed (1e-07 -> 1e-08)"),
        ({"seed": 3}, "--seed changed (0 -> 3)"),
        ({"batch_size": 64}, "--batch-size changed (32 -> 64)"),
        ({"model_file": "zz"}, "the model file changed"),
        ({"architecture": "zz"}, "the model (layers, optimizer or loss) changed"),
        ({"data": "zz", "data_shape": "(80, 4) (80,)"}, "the data changed ((40, 4) (40,) -> (80, 4) (80,))"),
        ({"lrsearch": "0.2.0"}, "the lrsearch version changed (0.1.0 -> 0.2.0)"),
        ({"steps": 400, "seed": 1}, "--steps changed (100 -> 400); --seed changed (0 -> 1)"),
    ],
)
def test_a_changed_input_says_which(tmp_path, change, reason):
    _write(tmp_path)
    evidence.record(tmp_path, "curve.csv", FP, ["curve.csv", "curve.meta.json"])
    assert evidence.stale(tmp_path, "curve.csv", {**FP, **change}) == reason


def test_a_file_cut_short_or_without_record_is_not_reused(tmp_path):
    _write(tmp_path)
    assert evidence.stale(tmp_path, "curve.csv", FP) == (
        "curve.csv has no record of what produced it (an older or interrupted run)"
    )
    evidence.record(tmp_path, "curve.csv", FP, ["curve.csv", "curve.meta.json"])
    (tmp_path / "curve.csv").write_text("lr,loss\n0.1,1.0\n0.2,0.")
    assert evidence.stale(tmp_path, "curve.csv", FP) == "curve.csv is not the file recorded (cut short or edited)"
    (tmp_path / "evidence.json").write_text('{"format": "lrsearch.evid')  # a record cut short
    assert "no record" in evidence.stale(tmp_path, "curve.csv", FP)


def test_a_curve_that_could_not_be_read_is_redone(tmp_path):
    _write(tmp_path)
    (tmp_path / "curve.meta.json").write_text(json.dumps({"suggestion_error": "only 2 usable points"}))
    evidence.record(tmp_path, "curve.csv", FP, ["curve.csv", "curve.meta.json"])
    assert evidence.stale(tmp_path, "curve.csv", FP) == "the last one could not be read (only 2 usable points)"


def test_data_fingerprint_sees_values_and_shapes():
    x = np.arange(12, dtype="float32").reshape(6, 2)
    y = np.arange(6)
    same = evidence.data_fingerprint((x.copy(), y.copy()))
    assert evidence.data_fingerprint((x, y)) == same
    x2 = x.copy()
    x2[3, 1] = -1
    assert evidence.data_fingerprint((x2, y)) != same
    assert evidence.data_fingerprint((x.reshape(3, 4), y)) != same


def test_architecture_fingerprint_ignores_generated_names():
    import keras

    def build(units=3, lr=0.1):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
        return model

    first = evidence.architecture_fingerprint(build())
    assert evidence.architecture_fingerprint(build()) == first  # dense_1 vs dense_2
    assert evidence.architecture_fingerprint(build(units=5)) != first
    assert evidence.architecture_fingerprint(build(lr=0.2)) != first


# --------------------------------------------------------------------------- auto's range test


@pytest.fixture()
def run(tmp_path):
    """The range test `auto` runs, on a copy of the tiny model file in a fresh folder."""
    from lrsearch.run.evidence import source_fingerprint
    from lrsearch.run.auto import _range_test, resolve_source

    model = tmp_path / "model.py"
    shutil.copy(MODEL, model)
    out = tmp_path / "run"
    out.mkdir()

    def go(steps: int = 20, reuse: bool = True):
        options = StudyOptions(min_lr=1e-4, max_lr=10.0, range_steps=steps, seed=0)
        source = resolve_source(str(model), seed=0)
        base = source_fingerprint(source, options)
        return _range_test(source, out, options, reuse=reuse, verbose=0, fingerprint=base)

    return go, model, out


def _said(caplog) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if "reusing" in r.getMessage() or "redone" in r.getMessage()]
    caplog.clear()
    return lines


def test_auto_reuses_only_matching_whole_evidence(run, caplog):
    go, model, out = run
    caplog.set_level(logging.INFO, logger="lrsearch")
    first = go()
    assert _said(caplog) == []
    assert len(first.frame) == 20

    again = go()  # the same command: reused, not rerun
    assert _said(caplog) == [f"reusing the range test in {out / 'range_test.csv'} (same model, data and settings)"]
    assert again.frame["loss"].tolist() == pytest.approx(first.frame["loss"].tolist())

    longer = go(steps=30)
    assert _said(caplog) == ["range test redone: --steps changed (20 -> 30)"]
    assert len(longer.frame) == 30

    model.write_text(model.read_text().replace("Dense(10,", "Dense(10, use_bias=False,"))
    go(steps=30)
    assert _said(caplog) == ["range test redone: the model file changed; the model (layers, optimizer or loss) changed"]

    csv = out / "range_test.csv"
    csv.write_text(csv.read_text()[: len(csv.read_text()) // 2])  # cut mid-line, as a kill mid-write would
    whole = go(steps=30)
    assert _said(caplog) == ["range test redone: range_test.csv is not the file recorded (cut short or edited)"]
    assert len(whole.frame) == 30

    go(steps=30, reuse=False)
    assert _said(caplog) == ["range test redone: --fresh"]


@pytest.mark.slow
def test_fresh_starts_the_study_over(tmp_path, caplog):
    """reuse=False (--fresh): the range test is redone and the study's earlier trials are gone."""
    import optuna

    from lrsearch.run.auto import auto

    small = dict(epochs=1, trials=1, range_steps=20, min_lr=1e-4, pruner=None, verbose=0, sweeps=False,
                 report=False, study_name="s", out_dir=tmp_path)
    auto(str(MODEL), **small)
    auto(str(MODEL), **small)  # resumed: a second trial
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2
    caplog.set_level(logging.INFO, logger="lrsearch")
    auto(str(MODEL), reuse=False, **small)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 1
    said = [r.getMessage() for r in caplog.records]
    assert "range test redone: --fresh" in said
    assert f"--fresh: deleted study 's' (2 trials) from {url}" in said
