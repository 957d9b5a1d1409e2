"""Model files and data files: loading, fine-tuning weights, and every check before training."""

from __future__ import annotations

import math
import re
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from lrsearch.core.errors import DataError, DivergenceError, ModelFileError
from lrsearch.run.modelfile import (
    check_data_fits,
    load_data_file,
    load_keras_model,
    load_model_file,
    load_python_model,
    source_from_model,
)
from tests.support import ROOT

DIGITS = ROOT / "studies" / "digits" / "model.py"


def tiny_model(inputs: int = 4, classes: int = 3, zeros: bool = True) -> keras.Model:
    init = "zeros" if zeros else "glorot_uniform"
    model = keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(classes, activation="softmax", kernel_initializer=init)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def arrays(n: int = 40, inputs: int = 4, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    y = rng.integers(0, classes, size=n)
    return x, y


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tiny compiled model with non-trivial weights, saved as .keras, plus its data."""
    folder = tmp_path_factory.mktemp("saved")
    model = tiny_model(zeros=False)
    model.save(folder / "tiny.keras")
    np.save(folder / "weights.npy", model.get_weights()[0])
    (x, y), (xv, yv) = arrays(40), arrays(12, seed=1)
    np.savez(folder / "data.npz", x_train=x, y_train=y, x_val=xv, y_val=yv)
    return folder


def write(tmp_path: Path, text: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- Python files


def test_digits_model_file_loads_with_known_split():
    source = load_model_file(DIGITS)
    assert source.kind == "python" and source.name == "digits"
    (x, y), (xv, yv) = source.train, source.validation
    assert x.shape == (1437, 8, 8, 1) and xv.shape == (360, 8, 8, 1)
    assert 0.0 <= x.min() and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    a, b = source.build_model(), source.build_model()
    assert a is not b and a.optimizer is not None


def test_check_data_fits_returns_first_batch_loss():
    # zero weights -> uniform softmax over 3 classes -> loss exactly ln(3) on any batch
    model = tiny_model()
    loss = check_data_fits(model, arrays(), arrays(seed=1))
    assert loss == pytest.approx(math.log(3), rel=1e-6)


def test_python_file_without_build_model(tmp_path):
    path = write(tmp_path, "def load_data():\n    return None, None\n")
    with pytest.raises(ModelFileError, match="defines no build_model"):
        load_python_model(path)


def test_python_file_with_import_error(tmp_path):
    path = write(tmp_path, "import no_such_package_xyz\n")
    with pytest.raises(ModelFileError, match="failed to import: No module named 'no_such_package_xyz'"):
        load_python_model(path)


def test_python_file_with_syntax_error(tmp_path):
    path = write(tmp_path, "def build_model():\n    return (\n\ndef load_data(:\n")
    with pytest.raises(ModelFileError, match="syntax error at line"):
        load_python_model(path)


def test_python_file_imports_its_neighbours(tmp_path):
    (tmp_path / "helpers_for_lrsearch_test.py").write_text("CLASSES = 3\n")
    path = write(
        tmp_path,
        """
        import keras, numpy as np
        from helpers_for_lrsearch_test import CLASSES

        def build_model():
            m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(CLASSES, activation="softmax")])
            m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            return m

        def load_data():
            rng = np.random.default_rng(0)
            x = rng.normal(size=(20, 4)).astype("float32")
            y = rng.integers(0, CLASSES, 20)
            return (x, y), (x[:5], y[:5])
        """,
    )
    source = load_model_file(path)
    assert source.build_model().output_shape == (None, 3)


ARGPARSE_MODEL = """
import argparse
import sys

import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--units", type=int, default=3)
ARGS = parser.parse_args()
SEEN = list(sys.argv)
print("parsed", ARGS.units, file=sys.stderr)


def build_model():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(ARGS.units, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = rng.integers(0, 3, 20)
    return (x, y), (x[:5], y[:5])
"""


def test_a_model_file_parsing_its_own_argv_sees_only_its_path(tmp_path, monkeypatch, capsys):
    """lrsearch's flags are not the model file's: it is imported as if started alone, and
    what it prints still reaches stderr."""
    import sys

    monkeypatch.setattr(sys, "argv", ["lrsearch", "auto", "model.py", "--trials", "1"])
    path = write(tmp_path, ARGPARSE_MODEL)
    source = load_model_file(path)
    assert source.build_model().output_shape == (None, 3)
    assert sys.argv == ["lrsearch", "auto", "model.py", "--trials", "1"]  # put back
    assert capsys.readouterr().err == "parsed 3\n"
    module = next(m for name, m in sys.modules.items() if name.startswith("_lrsearch_model_model_")
                  and getattr(m, "__file__", None) == str(path))
    assert module.SEEN == [str(path)]


@pytest.mark.parametrize(
    "code,said",
    [
        ("import sys\nsys.exit(0)\n", "called sys.exit(0) while being imported; a model file must not exit"),
        ("raise SystemExit('bye')\n", "called sys.exit('bye') while being imported"),
        ("import argparse\nargparse.ArgumentParser().add_argument('--n', required=True)\n"
         "p = argparse.ArgumentParser(prog='m')\np.add_argument('--n', required=True)\np.parse_args()\n",
         "called sys.exit(2) while being imported (m: error: the following arguments are required: --n)"),
    ],
    ids=["exit-0", "exit-message", "argparse-required"],
)
def test_a_model_file_that_exits_is_a_model_file_error(tmp_path, code, said):
    path = write(tmp_path, code)
    with pytest.raises(ModelFileError, match=re.escape(f"model file {path} {said}")):
        load_python_model(path)


def test_build_model_not_compiled(tmp_path):
    path = write(
        tmp_path,
        """
        import keras, numpy as np
        def build_model():
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        def load_data():
            x = np.zeros((8, 4), "float32"); y = np.zeros(8, "int32")
            return (x, y), (x, y)
        """,
    )
    with pytest.raises(ModelFileError, match="not compiled"):
        load_model_file(path)


def test_load_data_must_return_a_pair(tmp_path):
    path = write(tmp_path, "def build_model():\n    pass\ndef load_data():\n    return 1, 2, 3\n")
    with pytest.raises(ModelFileError, match=r"must return \(train, validation\)"):
        load_python_model(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file(tmp_path / "nope.py")
    other = tmp_path / "model.txt"
    other.write_text("x")
    with pytest.raises(ModelFileError, match="unknown model file kind"):
        load_model_file(other)


# --------------------------------------------------------------------------- .keras


def test_keras_model_fine_tunes_from_saved_weights(saved):
    source = load_model_file(saved / "tiny.keras", data=saved / "data.npz")
    assert source.kind == "keras" and source.name == "tiny"
    expected = np.load(saved / "weights.npy")
    for _ in range(2):  # every trial starts from the saved weights
        np.testing.assert_array_equal(source.build_model().get_weights()[0], expected)
    assert source.train[0].shape == (40, 4) and source.validation[0].shape == (12, 4)


def test_keras_without_data(saved):
    with pytest.raises(DataError, match="pass its data with --data"):
        load_model_file(saved / "tiny.keras")


def test_corrupt_keras(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(ModelFileError, match="not a .keras model archive"):
        load_keras_model(path)
    other = tmp_path / "empty.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError, match="cannot load"):
        load_keras_model(other)


def test_lambda_layer_needs_unsafe(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "lam.keras")
    with pytest.raises(ModelFileError, match="--unsafe"):
        load_keras_model(tmp_path / "lam.keras")
    loaded = load_keras_model(tmp_path / "lam.keras", unsafe=True)
    x = np.ones((1, 4), "float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_uncompiled_keras(tmp_path):
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(tmp_path / "raw.keras")
    with pytest.raises(ModelFileError, match="saved without compile"):
        load_keras_model(tmp_path / "raw.keras")


# --------------------------------------------------------------------------- data files


def test_npz_without_expected_arrays(tmp_path):
    x, y = arrays()
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    with pytest.raises(DataError, match="lacks the arrays x_val, y_val"):
        load_data_file(tmp_path / "d.npz")


def test_data_that_does_not_fit(saved, tmp_path):
    (x, y), (xv, yv) = arrays(inputs=5), arrays(inputs=5, seed=1)
    np.savez(tmp_path / "wide.npz", x_train=x, y_train=y, x_val=xv, y_val=yv)
    with pytest.raises(DataError, match="does not fit the model"):
        load_model_file(saved / "tiny.keras", data=tmp_path / "wide.npz")


def test_labels_out_of_range_do_not_fit():
    x, _ = arrays()
    with pytest.raises(DataError, match="does not fit the model"):
        check_data_fits(tiny_model(), (x, np.full(len(x), 7)), (x, np.zeros(len(x), int)))


def test_all_nan_and_some_nan():
    x, y = arrays()
    with pytest.raises(DataError, match="x is all NaN"):
        check_data_fits(tiny_model(), (np.full_like(x, np.nan), y), (x, y))
    x2 = x.copy()
    x2[3, 1] = np.nan
    with pytest.raises(DataError, match="holds 1 NaN/inf values"):
        check_data_fits(tiny_model(), (x, y), (x2, y))


def test_loss_nan_before_training():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((16, 4), 1e30, "float32")  # (4e30)^2 overflows float32
    y = np.zeros((16, 1), "float32")
    with pytest.raises(DivergenceError, match="before any training"):
        check_data_fits(model, (x, y), (x, y))


def test_csv_with_target(tmp_path):
    rows = ["a,b,label"] + [f"{i},{2 * i},{'yes' if i % 2 else 'no'}" for i in range(20)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    (x, y), (xv, yv) = load_data_file(tmp_path / "d.csv", target="label", val_split=0.25)
    assert x.shape == (15, 2) and xv.shape == (5, 2)
    allx, ally = np.concatenate([x, xv]), np.concatenate([y, yv])
    np.testing.assert_array_equal(allx[:, 1], 2 * allx[:, 0])  # rows stay whole
    np.testing.assert_array_equal(ally, (allx[:, 0] % 2 == 1).astype(int))  # "no"=0, "yes"=1
    with pytest.raises(DataError, match="--target"):
        load_data_file(tmp_path / "d.csv")
    with pytest.raises(DataError, match="no column 'lbl'"):
        load_data_file(tmp_path / "d.csv", target="lbl")
    (tmp_path / "t.csv").write_text("a,c,label\n1,x,0\n2,y,1\n3,z,0\n")
    with pytest.raises(DataError, match="c are not"):
        load_data_file(tmp_path / "t.csv", target="label")


def test_image_folder(tmp_path):
    import matplotlib.pyplot as plt

    for label, value in (("dark", 0.0), ("light", 1.0)):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(5):
            plt.imsave(tmp_path / "img" / label / f"{i}.png", np.full((6, 6), value), cmap="gray", vmin=0, vmax=1)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    (x, y), (xv, yv) = load_data_file(tmp_path / "img", model=model, val_split=0.2)
    assert x.shape == (8, 6, 6, 1) and xv.shape == (2, 6, 6, 1)
    allx, ally = np.concatenate([x, xv]), np.concatenate([y, yv])
    # sub-folders in sorted order: dark -> 0 (black pixels), light -> 1 (white, 255)
    np.testing.assert_allclose(allx.reshape(10, -1).mean(axis=1), 255.0 * ally)
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_data_file(tmp_path / "img" / "dark", model=model)


def test_source_from_compiled_model_keeps_weights():
    model = tiny_model(zeros=False)
    source = source_from_model(model, arrays(), arrays(seed=1))
    clone = source.build_model()
    assert clone is not model and clone.optimizer is not None
    np.testing.assert_array_equal(clone.get_weights()[0], model.get_weights()[0])


@pytest.mark.parametrize("study", ["digits", "clr", "warmup_cosine"])
def test_study_model_files_load(study):
    source = load_model_file(ROOT / "studies" / study / "model.py")
    assert source.name == study
    assert len(source.train[0]) == 1437 and len(source.validation[0]) == 360
    assert (ROOT / "studies" / study / "README.md").exists()


def test_class_indices_that_are_not_whole_numbers_are_refused_not_truncated():
    x, y = arrays()
    model = tiny_model()
    check_data_fits(model, (x, y.astype("float32")), (x, y))  # 2.0 is class 2
    with pytest.raises(DataError, match=r"^training data: y holds 2\.5 at row 1, not a class index; "
                                        "sparse_categorical_crossentropy needs whole-number labels"):
        check_data_fits(model, (x, y + np.where(np.arange(len(y)) == 1, 0.5, 0.0)), (x, y))


def test_npz_of_0_d_arrays_or_text_is_refused_in_one_line(tmp_path):
    np.savez(tmp_path / "zero.npz", x_train=np.array(1.0), y_train=np.array(2), x_val=np.array(1.0),
             y_val=np.array(2))
    with pytest.raises(DataError, match="x_train is a single value \\(a 0-d array\\), not one row per sample"):
        load_data_file(tmp_path / "zero.npz")
    np.save(tmp_path / "one.npy", np.arange(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(DataError, match="one.npz is not an .npz archive"):
        load_data_file(tmp_path / "one.npz")
