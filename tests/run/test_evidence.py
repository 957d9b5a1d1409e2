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


def _model(**change):
    """A small compiled model; `change` replaces one of its settings."""
    import keras

    s = {"activation": "relu", "regularizer": None, "initializer": "glorot_uniform", "rate": 0.2,
         "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "momentum": 0.9, "nesterov": False,
         **change}
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(6, activation=s["activation"], kernel_regularizer=s["regularizer"],
                           kernel_initializer=s["initializer"]),
        keras.layers.Dropout(s["rate"]),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=s["momentum"], nesterov=s["nesterov"]),
                  loss=s["loss"], metrics=s["metrics"])
    return model


@pytest.mark.parametrize(
    "change",
    [
        {"activation": "tanh"},
        {"regularizer": "l2"},
        {"initializer": "he_normal"},
        {"rate": 0.5},
        {"loss": "categorical_crossentropy"},
        {"metrics": ["sparse_top_k_categorical_accuracy"]},
        {"momentum": 0.8},
        {"nesterov": True},
    ],
    ids=lambda change: next(iter(change)),
)
def test_architecture_fingerprint_sees_every_layer_config_loss_metric_and_optimizer_setting(change):
    same = evidence.architecture_fingerprint(_model())
    assert evidence.architecture_fingerprint(_model()) == same  # rebuilt: dense_2, dropout_1, ...
    assert evidence.architecture_fingerprint(_model(**change)) != same


def test_architecture_fingerprint_sees_a_nested_layer_of_a_subclassed_model():
    import keras

    class Block(keras.layers.Layer):
        def __init__(self, activation, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(4, activation=activation)

        def call(self, x):
            return self.inner(x)

    class Net(keras.Model):
        def __init__(self, activation):
            super().__init__()
            self.block = Block(activation)
            self.head = keras.layers.Dense(1)

        def call(self, x):
            return self.head(self.block(x))

    def build(activation):
        model = Net(activation)
        model(np.zeros((1, 3), "float32"))
        model.compile(optimizer="sgd", loss="mse")
        return model

    same = evidence.architecture_fingerprint(build("relu"))
    assert evidence.architecture_fingerprint(build("relu")) == same
    assert evidence.architecture_fingerprint(build("tanh")) != same  # only the nested Dense's config differs


HELPER = """import keras


def arch():
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
"""

IMPORTING_MODEL = """from helpers import arch
from sklearn.datasets import load_digits


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:320], y[:320]), (x[320:480], y[320:480])


def build_model():
    model = arch()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model
"""


def test_the_modules_a_model_file_imports_are_fingerprinted_by_their_code(tmp_path):
    from lrsearch.study.digests import imported_modules, source_digest

    (tmp_path / "helpers.py").write_text(HELPER)
    (tmp_path / "unused.py").write_text("X = 1\n")
    (tmp_path / "model.py").write_text(IMPORTING_MODEL)
    first = imported_modules(tmp_path / "model.py")
    assert list(first) == ["helpers.py"]  # keras, sklearn and the unimported module are not the user's
    (tmp_path / "helpers.py").write_text("# a comment changes nothing\n" + HELPER)
    assert imported_modules(tmp_path / "model.py") == first
    (tmp_path / "helpers.py").write_text(HELPER.replace("softmax\")", "softmax\", kernel_regularizer=\"l2\")"))
    assert imported_modules(tmp_path / "model.py")["helpers.py"] != first["helpers.py"]
    model_digest = source_digest(tmp_path / "model.py")
    (tmp_path / "model.py").write_text(IMPORTING_MODEL.replace("\n\n\ndef", "\n\n\n# the data\ndef", 1))
    assert source_digest(tmp_path / "model.py") == model_digest


# --------------------------------------------------------------------------- auto's range test


@pytest.fixture()
def run(tmp_path):
    """The range test `auto` runs, on a copy of the tiny model file in a fresh folder."""
    from lrsearch.run.evidence import source_fingerprint
    from lrsearch.run.auto import resolve_source
    from lrsearch.run.stages import range_test_stage

    model = tmp_path / "model.py"
    shutil.copy(MODEL, model)
    out = tmp_path / "run"
    out.mkdir()

    def go(steps: int = 20, reuse: bool = True):
        options = StudyOptions(min_lr=1e-4, max_lr=10.0, range_steps=steps, seed=0)
        source = resolve_source(str(model), seed=0)
        base = source_fingerprint(source, options)
        return range_test_stage(source, out, options, reuse=reuse, verbose=0, fingerprint=base)

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


def test_a_moved_run_folder_still_knows_which_model_made_its_study(tmp_path):
    """The study's record names the folder's own SQLite file by its place in the folder:
    moved, the folder resumes its study on the same model, and keeps it apart from another."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    first.mkdir()
    fp = {key: FP.get(key) for key in evidence.MODEL_KEYS}
    url = lambda folder: f"sqlite:///{(folder / 'study.db').resolve()}"  # noqa: E731
    assert evidence.study_name(first, "s", fp, storage=url(first), exists=lambda n: False) == "s"
    assert evidence._book(first)["studies"]["s"]["storage"] == "sqlite:///<run folder>/study.db"
    first.rename(moved)
    stored = {"s"}.__contains__
    assert evidence.study_name(moved, "s", fp, storage=url(moved), exists=stored) == "s"
    assert evidence.study_name(moved, "s", {**fp, "architecture": "other"}, storage=url(moved),
                               exists=stored) == "s-2"
    # a record an older version wrote with the whole path still holds where it was written
    book = evidence._book(moved)
    book["studies"]["s"]["storage"] = url(moved)
    evidence._write(moved, book)
    assert evidence.study_name(moved, "s", fp, storage=url(moved), exists=stored) == "s"


@pytest.mark.slow
def test_auto_resumes_a_study_only_on_the_model_it_was_made_from(tmp_path, caplog):
    """A helper module the model file imports is edited: the range test is redone and the
    trials go to a new study beside the old one; put back, the old study is resumed."""
    import optuna

    from lrsearch.run.auto import auto

    (tmp_path / "helpers.py").write_text(HELPER)
    (tmp_path / "model.py").write_text(IMPORTING_MODEL)
    out = tmp_path / "run"
    small = dict(epochs=1, trials=1, range_steps=20, min_lr=1e-4, pruner=None, verbose=0, sweeps=False,
                 report=False, study_name="s", out_dir=out)
    url = f"sqlite:///{out / 'study.db'}"

    def run() -> tuple[list[str], dict[str, int]]:
        caplog.clear()
        auto(str(tmp_path / "model.py"), **small)
        said = [r.getMessage() for r in caplog.records if r.name.startswith("lrsearch")]
        told = [m for m in said if "reusing" in m or "redone" in m or "made from" in m]
        counts = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(url)}
        return told, counts

    caplog.set_level(logging.INFO, logger="lrsearch")
    assert run() == ([], {"s": 1})
    reused = f"reusing the range test in {out / 'range_test.csv'} (same model, data and settings)"
    assert run() == ([reused], {"s": 2})  # nothing changed: resumed

    (tmp_path / "helpers.py").write_text(HELPER.replace('softmax")', 'softmax", kernel_regularizer="l2")'))
    changed = "helpers.py (imported by the model file) changed"
    assert run() == ([f"study 's' was made from another model or data ({changed}): its trials are kept; "
                      "this run starts study 's-2'", f"range test redone: {changed}"], {"s": 2, "s-2": 1})
    told, counts = run()
    assert counts == {"s": 2, "s-2": 2} and told == [
        f"study 's' was made from another model or data ({changed}): its trials are kept; "
        "resuming study 's-2', made from this one", reused]

    (tmp_path / "helpers.py").write_text(HELPER)  # put back: the first study is this model's again
    assert run() == ([f"range test redone: {changed}"], {"s": 3, "s-2": 2})

    (tmp_path / "model.py").write_text(IMPORTING_MODEL.replace('optimizer="sgd"', 'optimizer="adam"'))
    told, counts = run()
    assert counts == {"s": 3, "s-2": 2, "s-3": 1}
    assert told[0] == ("study 's' was made from another model or data (the model file changed; the model "
                        "(layers, optimizer or loss) changed): its trials are kept; this run starts study 's-3'")
