"""Hostile inputs to the command line: each ends in ONE line on stderr naming the cause
and the fix, exit status 1 (or 2 for a malformed command line), never "unexpected".

The table runs every case in-process through `main([...])` on files made once per module
(a tiny model file and its broken variants), so the whole table costs one TensorFlow
import. Training cases run with `-q` and a handful of steps.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lrsearch.cli.main import main
from tests.support import CLI_MODEL

MODEL = CLI_MODEL
TEXT = MODEL.read_text()
RETURN = "return (x[:320], y[:320]), (x[320:480], y[320:480])"


def _variant(d: Path, name: str, old: str, new: str) -> Path:
    assert old in TEXT
    (d / name).write_text(TEXT.replace(old, new))
    return d / name


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """The model, its broken variants, bad curves and schedules, a bad image folder, and a
    study with one finished trial."""
    from PIL import Image

    d = tmp_path_factory.mktemp("hostile")
    shutil.copy(MODEL, d / "m.py")
    (d / "afile").write_text("not a folder")
    (d / "outdir").mkdir()
    (d / "header.csv").write_text("step,lr,loss,smooth_loss\n")
    (d / "sweep_header.csv").write_text("value,step,lr,loss,smooth_loss\n")
    rows = [f"{10 ** (-5 + i / 8):.6g},{2.3 - i / 50:.4f}" for i in range(40)]
    bad_loss = rows.copy()
    bad_loss[9] = bad_loss[9].split(",")[0] + ",abc"
    (d / "bad_loss.csv").write_text("lr,loss\n" + "\n".join(bad_loss) + "\n")
    bad_lr = rows.copy()
    bad_lr[3] = "fast," + bad_lr[3].split(",")[1]
    (d / "bad_lr.csv").write_text("lr,loss\n" + "\n".join(bad_lr) + "\n")
    (d / "other.csv").write_text("a,b\n1,2\n")
    (d / "tampered.json").write_text(json.dumps({
        "format": "lrsearch.schedule", "version": 1,
        "schedule": {"module": "os", "class_name": "system", "config": {"command": "echo owned"}},
    }))
    (d / "notjson.json").write_text("{ not json")
    good = {"format": "lrsearch.schedule", "version": 2, "schedule": 0.01, "momentum": None, "weight_decay": None,
            "optimizer": {"class_name": "SGD", "config": {}}, "batch_size": None, "steps_per_epoch": 4,
            "epochs": 10, "provenance": {}}
    for name, change in (("epochs_huge", {"epochs": 10**40}), ("class_list", {"optimizer": {"class_name": ["SGD"]}}),
                         ("two_bad", {"epochs": 10**40, "steps_per_epoch": "4", "optimizer": {"class_name": 3}}),
                         ("nesterov_yes", {"optimizer": {"class_name": "SGD", "config": {"nesterov": "yes"}}})):
        (d / f"{name}.json").write_text(json.dumps({**good, **change}))
    (d / "deep.json").write_text(json.dumps(good)[:-1] + ', "extra": ' + "[" * 10_000 + "]" * 10_000 + "}")
    (d / "model.h5").write_bytes(b"\x89HDF\r\n")
    (d / "model.txt").write_text("hello")
    _variant(d, "label_late.py", RETURN, "y = y.copy(); y[300] = 10\n    " + RETURN)
    _variant(d, "label_negative.py", RETURN, "y = y.copy(); y[200] = -1\n    " + RETURN)
    _variant(d, "str_lists.py", RETURN,
             "return (x[:320].tolist(), [str(v) for v in y[:320]]), "
             "(x[320:480].tolist(), [str(v) for v in y[320:480]])")
    _variant(d, "ragged.py", RETURN, "return ([[1.0], [1.0, 2.0]] * 10, [0] * 20), (x[320:480], y[320:480])")
    _variant(d, "empty_val.py", RETURN, "return (x[:320], y[:320]), (x[320:320], y[320:320])")
    _variant(d, "three.py", RETURN, "return (x[:3], y[:3]), (x[320:480], y[320:480])")
    _variant(d, "unbatched.py", RETURN, "import tensorflow as tf\n    "
             "return tf.data.Dataset.from_tensor_slices((x[:320], y[:320])), (x[320:480], y[320:480])")
    _variant(d, "frozen.py", 'activation="softmax")', 'activation="softmax", trainable=False)')
    (d / "exit0.py").write_text(TEXT + "\nimport sys\n\nsys.exit(0)\n")
    (d / "exit5.py").write_text(TEXT + "\nimport sys\n\nsys.exit(5)\n")
    _variant(d, "exit_in_build.py", "def build_model():\n", "def build_model():\n    raise SystemExit(3)\n")
    _variant(d, "exit_in_load.py", "def load_data():\n", "def load_data():\n    raise SystemExit(4)\n")
    (d / "argv.py").write_text(TEXT + "\nimport argparse\n\nparser = argparse.ArgumentParser()\n"
                               "parser.add_argument('--units', type=int, required=True)\nARGS = parser.parse_args()\n")
    _variant(d, "half_labels.py", RETURN, "return (x[:320], y[:320] + 0.5), (x[320:480], y[320:480] + 0.5)")
    _variant(d, "broken_step.py", "def build_model():\n",
             "class Broken(keras.Sequential):\n    def train_step(self, data):\n"
             "        raise ValueError(\"custom step broke\")\n\n\ndef build_model():\n")
    (d / "broken_step.py").write_text((d / "broken_step.py").read_text().replace("keras.Sequential([", "Broken(["))
    zero_d = {key: np.array(1.0) for key in ("x_train", "y_train", "x_val", "y_val")}
    np.savez(d / "zero_d.npz", **zero_d)
    (d / "text.npz").write_text("x_train,y_train\n1,2\n")
    (d / "header_data.csv").write_text("a,b,label\n")
    (d / "word_label.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20))
                                      + "0.5,1,cat\n")
    flat = np.geomspace(1e-5, 10, 60)
    (d / "flat.csv").write_text("lr,loss\n" + "".join(f"{lr:.6g},2.3\n" for lr in flat))
    images = d / "images"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / label / f"{i}.png")
    (images / "b" / "notes.png").write_text("this is not an image")
    (d / "image_model.py").write_text(
        "import keras\n\n\ndef build_model():\n"
        "    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),\n"
        "                              keras.layers.Flatten(), keras.layers.Dense(2, activation='softmax')])\n"
        "    model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')\n"
        "    return model\n"
    )
    # a study with one finished trial, for export
    code = main(["tune", str(d / "m.py"), "--bounds", "0.01", "0.1", "--trials", "1", "--epochs", "1",
                 "--pruner", "none", "--families", "one_cycle", "--out", str(d / "study"), "--study", "s", "-q"])
    assert code == 0
    return d


def _m(d: Path) -> str:
    return str(d / "m.py")


TRAIN = ["--trials", "1", "--epochs", "1", "--steps", "30", "-q"]
LONG = "x" * 300

# (id, argv from the fixture folder, exit status, what the line must say)
CASES: list[tuple[str, Callable[[Path], list], int, str]] = [
    # the output folder, checked before any training
    *[(f"{cmd}-out-is-a-file", lambda d, c=cmd, e=extra: [c, _m(d), "--out", d / "afile", *e], 1,
       "is a file, not a folder; pass a folder path")
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))],
    *[(f"{cmd}-out-under-a-file", lambda d, c=cmd, e=extra: [c, _m(d), "--out", d / "afile" / "run", *e], 1,
       "lies under the file")
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))],
    *[(f"{cmd}-out-name-too-long", lambda d, c=cmd, e=extra: [c, _m(d), "--out", d / LONG, *e], 1,
       "has a name too long for the file system")
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))],
    # study names
    *[(f"{cmd}-study-{label}", lambda d, c=cmd, n=name: [c, _m(d), "--study", n, *TRAIN], 1, message)
      for cmd in ("auto", "tune")
      for label, name, message in (
          ("300-chars", LONG, "must be at most 128 characters"),
          ("dotdot", "../escape", "must be a plain name without '/'"),
          ("slash", "a/b", "must be a plain name without '/'"),
      )],
    ("auto-study-dots", lambda d: ["auto", _m(d), "--study", "..", *TRAIN], 1, "must be a plain name"),
    ("tune-study-blank", lambda d: ["tune", _m(d), "--study", "  ", *TRAIN], 1, "must be a non-empty name"),
    # sizes that cannot fit in memory, refused before allocating
    *[(f"{cmd}-steps-1e9", lambda d, c=cmd: [c, _m(d), "--steps", "1000000000", "--out", d / "r", "-q"], 1,
       "must be at most 1000000")
      for cmd in ("auto", "tune", "range-test")],
    # curves: header only, not numbers
    ("suggest-header-only", lambda d: ["suggest", d / "header.csv"], 1, "has a header but no rows"),
    ("tune-range-test-header-only", lambda d: ["tune", _m(d), "--range-test", d / "header.csv", *TRAIN], 1,
     "has a header but no rows"),
    ("plot-header-only-curve", lambda d: ["plot", d / "header.csv", "-o", d / "h.png"], 1, "has a header but no rows"),
    ("plot-header-only-sweep", lambda d: ["plot", d / "sweep_header.csv", "-o", d / "s.png"], 1,
     "has a header but no rows"),
    ("suggest-non-numeric-loss", lambda d: ["suggest", d / "bad_loss.csv"], 1,
     "column loss holds 'abc' on line 11, not a number"),
    ("suggest-non-numeric-lr", lambda d: ["suggest", d / "bad_lr.csv"], 1, "column lr holds 'fast' on line 5"),
    ("tune-range-test-non-numeric", lambda d: ["tune", _m(d), "--range-test", d / "bad_loss.csv", *TRAIN], 1,
     "not a number; fix or delete that line"),
    ("plot-non-numeric", lambda d: ["plot", d / "bad_loss.csv", "-o", d / "n.png"], 1, "not a number"),
    ("suggest-wrong-columns", lambda d: ["suggest", d / "other.csv"], 1, "has no column lr, loss"),
    ("suggest-a-folder", lambda d: ["suggest", d / "outdir"], 1, "does not exist"),
    ("plot-unknown-csv", lambda d: ["plot", d / "other.csv", "-o", d / "o.png"], 1, "is neither a range-test CSV"),
    # schedules
    ("plot-tampered-schedule", lambda d: ["plot", d / "tampered.json", "-o", d / "t.png"], 1, "schedule"),
    ("plot-not-json", lambda d: ["plot", d / "notjson.json", "-o", d / "j.png"], 1, "JSON"),
    ("plot-output-is-a-folder", lambda d: ["plot", d / "study" / "schedule.json", "-o", d / "outdir"], 1,
     "is a folder; pass the path of a file"),
    ("plot-output-under-a-file", lambda d: ["plot", d / "study" / "schedule.json", "-o", d / "afile" / "p.png"], 1,
     "is a file, not a folder"),
    # export
    ("export-output-is-a-folder", lambda d: ["export", "--out", d / "study", "-o", d / "outdir"], 1,
     "is a folder; pass the path of a file"),
    ("export-output-under-a-file", lambda d: ["export", "--out", d / "study", "-o", d / "afile" / "s.json"], 1,
     "is a file, not a folder"),
    ("export-unknown-study", lambda d: ["export", "--out", d / "study", "--study", "nope", "-o", d / "x.json"], 1,
     "storage holds no study 'nope'"),
    ("export-unknown-storage", lambda d: ["export", "--storage", "redis://localhost/0", "-o", d / "x.json"], 1,
     "unknown storage kind 'redis'"),
    ("report-missing-folder", lambda d: ["report", d / "nowhere"], 1, "does not exist"),
    # data that load_data() returns or a folder holds
    ("load-data-string-labels", lambda d: ["range-test", d / "str_lists.py", "--steps", "30", "-q"], 1,
     "y is a list of str, not numbers"),
    ("load-data-ragged-lists", lambda d: ["range-test", d / "ragged.py", "--steps", "30", "-q"], 1,
     "rows differ in length"),
    *[(f"{cmd}-label-out-of-range-later", lambda d, c=cmd, e=extra: [c, d / "label_late.py", *e], 1,
       "label 10 out of range for 10 classes")
      for cmd, extra in (("range-test", ["--steps", "40", "--out", "OUT", "-q"]),
                         ("auto", ["--no-sweeps", "--out", "OUT", *TRAIN]))],
    ("range-test-label-out-of-range-batch", lambda d: ["range-test", d / "label_late.py", "--steps", "40",
                                                       "--out", "OUT", "-q"], 1, "in batch 10 of the training data"),
    ("tune-label-out-of-range-in-a-trial", lambda d: ["tune", d / "label_late.py", "--bounds", "0.01", "0.1",
                                                      "--pruner", "none", "--out", "OUT", *TRAIN], 1,
     "label 10 out of range for 10 classes (labels must be 0 to 9) in trial 0 (epoch 1)"),
    ("tune-halving-label-out-of-range-in-a-trial",
     lambda d: ["tune", d / "label_late.py", "--bounds", "0.01", "0.1", "--fidelity", "schedule-halving",
                "--out", "OUT", *TRAIN], 1,
     "label 10 out of range for 10 classes (labels must be 0 to 9) in trial 0 (epoch 1)"),
    ("range-test-negative-label", lambda d: ["range-test", d / "label_negative.py", "--steps", "40",
                                             "--out", "OUT", "-q"], 1, "label -1 out of range"),
    *[(f"{cmd}-non-image-png", lambda d, c=cmd, e=extra: [c, d / "image_model.py", "--data", d / "images",
                                                          "--out", "OUT", *e], 1, "notes.png in")
      for cmd, extra in (("range-test", ["--steps", "30", "-q"]), ("auto", TRAIN), ("tune", TRAIN))],
    # models the rate cannot change
    *[(f"{cmd}-no-trainable-weights", lambda d, c=cmd, e=extra: [c, d / "frozen.py", "--out", "OUT", *e], 1,
       "the model has no trainable weights")
      for cmd, extra in (("range-test", ["--steps", "30", "-q"]), ("auto", TRAIN),
                         ("tune", ["--bounds", "0.01", "0.1", *TRAIN]))],
    # metrics
    *[(f"{cmd}-metric-unknown-direction", lambda d, c=cmd: [c, _m(d), "--metric", "val_nonsense", *TRAIN], 1,
       "(--direction on the command line)")
      for cmd in ("auto", "tune")],
    ("tune-metric-not-logged", lambda d: ["tune", _m(d), "--metric", "val_nonsense", "--direction", "minimize",
                                          "--bounds", "0.01", "0.1", "--out", "OUT", *TRAIN], 1,
     "the model does not produce metric 'val_nonsense'"),
    # model files
    ("model-file-is-a-folder", lambda d: ["auto", d / "outdir", *TRAIN], 1, "is a folder"),
    ("model-file-hdf5", lambda d: ["range-test", d / "model.h5", "-q"], 1, "legacy HDF5 file"),
    ("model-file-unknown-kind", lambda d: ["range-test", d / "model.txt", "-q"], 1, "unknown model file kind"),
    # model files that exit or read lrsearch's command line as their own
    *[(f"{cmd}-model-file-{label}", lambda d, c=cmd, f=file, e=extra: [c, d / f, "--out", "OUT", *e], 1, message)
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))
      for label, file, message in (
          ("sys-exit-0", "exit0.py", "exit0.py called sys.exit(0) while being imported; a model file must not exit"),
          ("sys-exit-5", "exit5.py", "exit5.py called sys.exit(5) while being imported"),
          ("argparse-required", "argv.py",
           "called sys.exit(2) while being imported (argv.py: error: the following arguments are required: --units)"),
      )],
    ("model-file-exit-in-build-model", lambda d: ["range-test", d / "exit_in_build.py", "--out", "OUT", "-q"], 1,
     "called sys.exit(3) while building the model (build_model())"),
    ("model-file-exit-in-load-data", lambda d: ["range-test", d / "exit_in_load.py", "--out", "OUT", "-q"], 1,
     "exit_in_load.py called sys.exit(4) while loading the data (load_data())"),
    *[(f"{cmd}-custom-train-step-raises", lambda d, c=cmd, e=extra: [c, d / "broken_step.py", "--out", "OUT", *e],
       1, "the first training step raised ValueError: custom step broke; check the model's train_step")
      for cmd, extra in (("auto", TRAIN), ("range-test", ["--steps", "30", "-q"]))],
    *[(f"tune-{label}-custom-train-step-raises", lambda d, e=extra: ["tune", d / "broken_step.py", "--bounds", "0.01",
                                                                    "0.1", "--out", "OUT", *e, *TRAIN], 1,
       "a training step raised ValueError: custom step broke in trial 0 (epoch 1); check the model's train_step, its "
       "loss and the data's shapes")
      for label, extra in (("optuna", []), ("halving", ["--fidelity", "schedule-halving"]),
                           ("keras-tuner", ["--backend", "keras-tuner"]))],
    # seeds NumPy and the backends cannot take
    *[(f"{cmd}-seed-{label}", lambda d, c=cmd, v=value: [c, _m(d), "--seed", v, "--out", "OUT", "-q"], 2, message)
      for cmd in ("auto", "tune", "range-test")
      for label, value, message in (("negative", "-1", "must be at least 0, got -1"),
                                    ("over-2-32", str(2**32), "must be at most 4294967295, got 4294967296"))],
    # data files
    *[(f"{cmd}-data-{label}", lambda d, c=cmd, f=file, e=extra: [c, _m(d), "--data", d / f, "--out", "OUT", *e], 1,
       message)
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))
      for label, file, message in (
          ("npz-0-d-arrays", "zero_d.npz", "x_train is a single value (a 0-d array), not one row per sample"),
          ("npz-is-text", "text.npz", "as .npz"),
      )],
    *[(f"{cmd}-csv-{label}", lambda d, c=cmd, f=file, e=extra: [c, _m(d), "--data", d / f, "--target", "label",
                                                                 "--out", "OUT", *e], 1, message)
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))
      for label, file, message in (
          ("header-only", "header_data.csv", "header_data.csv has a header but no rows"),
          ("word-among-number-labels", "word_label.csv", "column label holds 'cat' on line 22 among numbers"),
      )],
    *[(f"{cmd}-class-labels-not-whole", lambda d, c=cmd, e=extra: [c, d / "half_labels.py", "--out", "OUT", *e], 1,
       "training data: y holds 0.5 at row 0, not a class index; sparse_categorical_crossentropy needs whole-number")
      for cmd, extra in (("auto", TRAIN), ("tune", TRAIN), ("range-test", ["--steps", "30", "-q"]))],
    # outputs that cannot be written
    ("export-output-read-only", lambda d: ["export", "--out", d / "study", "-o", "/proc/lrsearch-test.json"], 1,
     "cannot write /proc/lrsearch-test.json ("),
    ("plot-output-read-only", lambda d: ["plot", d / "study" / "schedule.json", "-o", "/proc/lrsearch-test.png"], 1,
     "cannot write /proc/lrsearch-test.png ("),
    # a curve handed to tune is read as range_test reads its own
    ("tune-range-test-flat-curve", lambda d: ["tune", _m(d), "--range-test", d / "flat.csv", "--out", "OUT", *TRAIN],
     1, "flat.csv cannot be read: the loss does not fall anywhere in the tested range"),
    # command lines
    ("unknown-family", lambda d: ["tune", _m(d), "--families", "sawtooth", *TRAIN], 1, "unknown family 'sawtooth'"),
    ("empty-families", lambda d: ["tune", _m(d), "--families", ",", *TRAIN], 1, "--families needs at least one"),
    ("range-test-and-bounds", lambda d: ["tune", _m(d), "--range-test", d / "header.csv", "--bounds", "0.1", "1",
                                         *TRAIN], 1, "not both"),
    ("val-split-above-one", lambda d: ["auto", _m(d), "--val-split", "1.5"], 2, "must be between 0 and 1"),
    ("batch-size-zero", lambda d: ["auto", _m(d), "--batch-size", "0"], 2, "must be at least 1"),
    ("steps-not-a-number", lambda d: ["range-test", _m(d), "--steps", "many"], 2, "expected a whole number"),
    ("unknown-mode", lambda d: ["range-test", _m(d), "--mode", "log"], 2, "invalid choice: 'log'"),
    ("dashboard-port", lambda d: ["dashboard", "--port", "70000"], 2, "must be a port number up to 65535"),
    ("unknown-direction", lambda d: ["tune", _m(d), "--direction", "up"], 2, "invalid choice: 'up'"),
    # rates that are no normal float32 number, a range test of one step: refused by the parser
    *[(f"{flag[2:]}-{value}", lambda d, f=flag, v=value: ["range-test", _m(d), f, v], 2,
       "must be a learning rate from 1.175e-38 (float32's smallest normal number) to 1e+06, got " + value)
      for flag, value in (("--min-lr", "1e-320"), ("--max-lr", "1e7"))],
    ("bounds-subnormal", lambda d: ["tune", _m(d), "--bounds", "1e-320", "0.1"], 2, "got 1e-320"),
    ("range-steps-one", lambda d: ["range-test", _m(d), "--steps", "1"], 2, "must be at least 2, got 1"),
    # schedule files with mistyped or absurd fields: each field named
    ("schedule-epochs-1e40", lambda d: ["plot", d / "epochs_huge.json", "-o", d / "x.png"], 1,
     "field `epochs` must be a whole number from 1 to 2147483647 or null; got 1" + "0" * 40),
    ("schedule-class-name-list", lambda d: ["plot", d / "class_list.json", "-o", d / "x.png"], 1,
     "field `optimizer` must be an object with a `class_name` string"),
    ("schedule-every-bad-field", lambda d: ["plot", d / "two_bad.json", "-o", d / "x.png"], 1,
     "field `optimizer` must be an object with a `class_name` string and `config`; field `steps_per_epoch` must be "
     "a whole number from 1 to 2147483647 or null; got '4'; field `epochs` must be"),
    ("schedule-10000-deep", lambda d: ["plot", d / "deep.json", "-o", d / "x.png"], 1,
     "deep.json: nested too deeply to be a schedule file"),
    ("schedule-nesterov-yes", lambda d: ["plot", d / "nesterov_yes.json", "-o", d / "x.png"], 1,
     "Argument `nesterov` must be true or false. Received: nesterov='yes'"),
    # an empty validation set, a dataset of single samples
    ("empty-validation", lambda d: ["auto", d / "empty_val.py", *TRAIN], 1,
     "the validation data holds no samples; pass at least one batch"),
    ("unbatched-dataset", lambda d: ["auto", d / "unbatched.py", *TRAIN], 1,
     "training data is a dataset of single samples (x of shape (64,)), not of batches; batch it with .batch(n)"),
    # a budget in seconds the range test alone uses up (1000 steps take more than 10 ms on any machine)
    ("budget-in-seconds-spent-by-the-range-test", lambda d: ["auto", _m(d), "--budget", "0.01s", "--steps", "1000",
                                                      "--min-lr", "1e-4", "--max-lr", "1", "--out", "OUT", "-q"], 1,
     "epochs at the range test's speed) does not cover 100.00 epochs spent and one epoch of training: raise the "
     "budget"),
    # a study read from a SQLite file that is not there: refused, no empty database made
    *[(f"{cmd}-storage-typo", lambda d, c=cmd, e=extra: [c, *e(d), "--storage", f"sqlite:///{d / 'typo.db'}"], 1,
       "typo.db does not exist; check the path in the storage URL")
      for cmd, extra in (("export", lambda d: ["-o", d / "t.json"]), ("report", lambda d: [d / "study"]),
                         ("dashboard", lambda d: []))],
]


def test_the_table_holds_at_least_a_hundred_cases():
    assert len(CASES) >= 100
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name,argv,status,message", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_ends_in_one_line(files, tmp_path, capsys, name, argv, status, message):
    args = [str(tmp_path / "out") if a == "OUT" else str(a) for a in argv(files)]
    code = main(args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{captured.err}"
    (line,) = lines
    assert "Traceback" not in captured.err and "unexpected" not in line
    assert line.startswith("lrsearch: error: ")
    assert message in line
    assert code == status
    assert captured.out == ""


def test_fewer_samples_than_one_batch_are_told_once(files, tmp_path, capsys):
    code = main(["range-test", str(files / "three.py"), "--steps", "30", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 0
    assert [line for line in err.splitlines() if "training samples" in line] == [
        "only 3 training samples, fewer than one batch of 32: every step sees the same samples, so the rates "
        "found say little; pass more data"]


def test_a_storage_typo_leaves_no_empty_database(files, capsys):
    for argv in (["export", "-o", str(files / "t.json")], ["report", str(files / "study")], ["dashboard"]):
        assert main([*argv, "--storage", f"sqlite:///{files / 'typo.db'}"]) == 1
    capsys.readouterr()
    assert not (files / "typo.db").exists()


def test_dashboard_on_a_busy_port_says_so_before_listening(files, capsys):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        code = main(["dashboard", "--out", str(files / "study"), "--port", str(port)])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"lrsearch: error: cannot serve on 127.0.0.1:{port} (Address already in use); try another --port"]


def test_a_study_file_locked_by_another_process_is_one_line(files, tmp_path, capsys, monkeypatch):
    """Another process holds a write transaction on study.db: after a bounded wait, one
    line naming the file and exit 1 (not Optuna's StorageInternalError, exit 3)."""
    import sqlite3

    import lrsearch.study.storage as storage_module

    monkeypatch.setattr(storage_module, "_SQLITE_TIMEOUT_S", 0.5)
    out = tmp_path / "run"
    shutil.copytree(files / "study", out)
    other = sqlite3.connect(out / "study.db")
    other.execute("BEGIN IMMEDIATE")
    try:
        code = main(["tune", _m(files), "--bounds", "0.01", "0.1", "--out", str(out), "--study", "new", *TRAIN])
    finally:
        other.rollback()
        other.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1
    assert lines[-1].startswith(f"lrsearch: error: the study file {out / 'study.db'} is locked by another process")


# --------------------------------------------------------------------------- handled, not refused


def test_load_data_returning_lists_of_numbers_is_read_as_arrays(files, tmp_path, capsys):
    _variant(tmp_path, "lists.py", RETURN,
             "return (x[:320].tolist(), y[:320].tolist()), (x[320:480].tolist(), y[320:480].tolist())")
    code = main(["range-test", str(tmp_path / "lists.py"), "--steps", "30", "--out", str(tmp_path / "r"), "-q"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["base_lr"] > 0


def test_plot_of_a_schedule_of_1e12_steps_samples_it(files, tmp_path, capsys):
    from lrsearch.viz.plots import PLOT_POINTS, schedule_plot_data
    from lrsearch.schedules import OneCycle
    from lrsearch.export.spec import ScheduleSpec

    spec = ScheduleSpec(OneCycle(max_lr=0.1, total_steps=10**12), optimizer="SGD")
    spec.save(tmp_path / "long.json")
    code = main(["plot", str(tmp_path / "long.json"), "-o", str(tmp_path / "long.png")])
    assert code == 0 and (tmp_path / "long.png").stat().st_size > 0
    data = schedule_plot_data(spec)
    assert len(data.step) == PLOT_POINTS and data.step[0] == 0 and data.step[-1] == 10**12 - 1


def test_report_of_a_header_only_curve_says_so_once(files, tmp_path, capsys):
    (tmp_path / "range_test.csv").write_text("step,lr,loss,smooth_loss\n")
    code = main(["report", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == str(tmp_path / "report.html")
    assert [line for line in captured.err.splitlines() if "header but no rows" in line] == [
        f"report: cannot read range_test.csv: {tmp_path / 'range_test.csv'} has a header but no rows; "
        "a range-test file needs its recorded rows (rerun the range test)"
    ]


def test_image_folder_messages_stay_off_stdout(files, tmp_path, capsys):
    """'Using N files for training.' is Keras' chatter, not a result: stdout holds JSON only."""
    shutil.copytree(files / "images", tmp_path / "images")
    (tmp_path / "images" / "b" / "notes.png").unlink()
    code = main(["range-test", str(files / "image_model.py"), "--data", str(tmp_path / "images"), "--steps", "30",
                 "--out", str(tmp_path / "r"), "-q"])
    captured = capsys.readouterr()
    assert code == 0
    assert "Using" not in captured.out
    assert set(json.loads(captured.out)) >= {"base_lr", "max_lr"}


def test_quiet_silences_warnings(files, tmp_path, capsys):
    """A 20-step curve warns ("only 20 usable points"); -q keeps stderr empty."""
    code = main(["range-test", _m(files), "--steps", "20", "--out", str(tmp_path / "r"), "-q"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    code = main(["range-test", _m(files), "--steps", "20", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 0 and captured.err.count("usable points: the bounds are rough") == 1


def test_ctrl_c_in_range_test_keeps_the_curve(files, tmp_path, capsys, monkeypatch):
    """The library keeps the curve on the KeyboardInterrupt; the CLI saves it and says so."""
    import lrsearch.rangetest.finder as finder

    real = finder._run

    def interrupted_after(stepper, *args):
        calls = []
        step_fn = stepper.step

        def step(iterator):
            if len(calls) == 12:
                raise KeyboardInterrupt
            calls.append(1)
            return step_fn(iterator)

        stepper.step = step
        return real(stepper, *args)

    monkeypatch.setattr(finder, "_run", interrupted_after)
    out = tmp_path / "r"
    code = main(["range-test", _m(files), "--steps", "40", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 130
    assert captured.err.strip().splitlines()[-1] == (
        f"lrsearch: interrupted: the curve so far (12 steps) is saved in {out / 'range_test.csv'}; "
        "'lrsearch suggest' reads it"
    )
    frame = finder.RangeTestResult.load(out / "range_test.csv")
    assert len(frame.frame) == 12 and frame.stopped == "interrupted"


def test_auto_tells_each_curve_warning_once(files, tmp_path, capsys):
    """The range test's warnings are told once (by auto), not again by the finder, the
    sweeps or the study."""
    code = main(["auto", _m(files), "--steps", "20", "--trials", "1", "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--pruner", "none"])
    assert code == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "only 20 usable points" in line]
    assert said[0] == "range test: only 20 usable points: the bounds are rough; rerun with more steps"
    assert not [line for line in said[1:] if line.startswith(("range test", "range-test"))]
    sweep_lines = [line for line in err.splitlines() if line.startswith(("momentum=", "weight_decay="))]
    assert len(sweep_lines) == len(set(sweep_lines))  # each sweep curve's warning once (not again by the report)


def test_optuna_trial_failure_lines_are_dropped(files, tmp_path, capsys):
    """A trial that fails on the data: Optuna's "Trial 0 failed with ..." lines are not shown,
    lrsearch's one line is."""
    code = main(["tune", str(files / "label_late.py"), "--bounds", "0.01", "0.1", "--trials", "1", "--epochs", "1",
                 "--pruner", "none", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed with" not in err
    assert err.strip().splitlines()[-1].startswith("lrsearch: error: label 10 out of range")


@pytest.mark.parametrize("backend", ["optuna", "keras-tuner"])
def test_a_raising_train_step_ends_the_study_at_its_first_trial(files, tmp_path, capsys, backend):
    """Three trials asked: the first one's error ends the study; no trial after it runs."""
    out = tmp_path / "r"
    code = main(["tune", str(files / "broken_step.py"), "--bounds", "0.01", "0.1", "--trials", "3", "--epochs", "1",
                 "--backend", backend, "--out", str(out), "-q"])
    assert code == 1
    assert capsys.readouterr().err.count("custom step broke") == 1
    if backend == "optuna":
        import optuna

        study = optuna.load_study(study_name="broken_step", storage=f"sqlite:///{out / 'study.db'}")
        assert [t.state.name for t in study.trials] == ["FAIL"]
    else:
        assert len(list((out / "keras_tuner" / "broken_step").glob("trial_*"))) == 1
