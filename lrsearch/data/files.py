"""Data files: what `lrsearch auto MODEL_FILE --data PATH` trains on, and CSV tables.

`read_csv` reads any CSV lrsearch is handed (a range-test curve, a sweep, a table of
features) and names the missing columns in one line. `load_data_file` reads `(train, validation)` arrays from an `.npz` (`x_train, y_train,
x_val, y_val`), a CSV (a target column and numeric features, split with a seed), or an
image folder (one sub-folder per class, sized to the model's input). Each problem
raises `DataError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrsearch.core.errors import DataError, LRSearchError, argument_error, data_cause, first_line

logger = logging.getLogger(__name__)

__all__ = ["load_data_file", "read_csv", "check_class_labels"]


def read_csv(path: str | Path, what: str, columns: Sequence[str] = (), *,
             missing_error: type[LRSearchError] = DataError, hint: str = "", numeric: bool = False) -> Any:
    """A CSV as a pandas DataFrame that has `columns`.

    Args:
        path: the file.
        what: what the file should be, for messages ("range-test file").
        columns: columns it must have.
        missing_error: the error for missing columns.
        hint: what to do, appended to the missing-columns message.
        numeric: `columns` must hold numbers (a curve), and the file at least one row.

    Raises:
        DataError: the file is missing or not a CSV; with `numeric`, it has no rows or a
            value in `columns` that is not a number.
        missing_error: a column of `columns` is missing.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no {what} at {path} (it does not exist); check the path")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read {path} as a {what}: {first_line(exc)}") from exc
    missing = [str(c) for c in columns if c not in frame.columns]
    if missing:
        raise missing_error(
            f"{path} has no column {', '.join(missing)}; a {what} needs {', '.join(map(str, columns))} "
            f"(columns found: {', '.join(map(str, frame.columns))})" + (f"; {hint}" if hint else "")
        )
    if numeric:
        if frame.empty:
            raise DataError(f"{path} has a header but no rows; a {what} needs its recorded rows "
                            "(rerun the range test)")
        for column in columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{path}: column {column} holds {frame[column].iloc[row]!r} on line {row + 2}, not a number; "
                    "fix or delete that line"
                )
            frame[column] = values
    return frame


def _split(x: np.ndarray, y: np.ndarray, val_split: float, seed: int) -> tuple[tuple, tuple]:
    if not 0.0 < val_split < 1.0:
        raise argument_error("val_split", "between 0 and 1", val_split, DataError)
    n = len(x)
    n_val = int(round(n * val_split))
    if n_val < 1 or n - n_val < 1:
        raise DataError(f"{n} samples are too few to split off a validation set; add data")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _load_npz(path: Path) -> tuple[tuple, tuple]:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"cannot read {path} as .npz ({first_line(exc)}); save it with numpy.savez") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a .npy, or text numpy read as such
        raise DataError(f"{path} is not an .npz archive (a single array or another format); "
                        "save x_train, y_train, x_val, y_val with numpy.savez")
    try:
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise DataError(f"cannot read {path} as .npz ({first_line(exc)}); save it with numpy.savez") from exc
    expected = ("x_train", "y_train", "x_val", "y_val")
    missing = [key for key in expected if key not in arrays]
    if missing:
        raise DataError(
            f"{path} lacks the arrays {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'}); "
            "save x_train, y_train, x_val, y_val"
        )
    for key in expected:
        if arrays[key].ndim == 0:
            raise DataError(f"{path}: {key} is a single value (a 0-d array), not one row per sample; "
                            f"save {key} as an array of rows")
    for part in ("train", "val"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise DataError(f"{path}: x_{part} has {len(x)} rows but y_{part} has {len(y)}; they must match")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_val"], arrays["y_val"])


def _load_csv(path: Path, target: str | None, val_split: float, seed: int) -> tuple[tuple, tuple]:
    import pandas as pd

    if not target:
        raise DataError(f"{path} is a CSV: name the column to predict with --target COLUMN")
    frame = read_csv(path, "data CSV")
    if frame.empty:
        raise DataError(f"{path} has a header but no rows; a data CSV needs one row per sample")
    if target not in frame.columns:
        raise DataError(
            f"{path} has no column {target!r} (columns: {', '.join(map(str, frame.columns))}); fix --target"
        )
    features = frame.drop(columns=[target])
    text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise DataError(
            f"{path}: feature columns must be numeric, but {', '.join(text)} are not; encode or drop them"
        )
    if features.shape[1] == 0:
        raise DataError(f"{path} has no feature columns besides {target!r}")
    y_col = frame[target]
    if pd.api.types.is_numeric_dtype(y_col):
        y = y_col.to_numpy()
    else:
        numbers = pd.to_numeric(y_col, errors="coerce")
        if numbers.notna().any():  # numbers with a stray word: a typo, not class names
            row = int(np.flatnonzero((numbers.isna() & y_col.notna()).to_numpy())[0])
            raise DataError(
                f"{path}: column {target} holds {y_col.iloc[row]!r} on line {row + 2} among numbers; "
                "fix or delete that line (labels are either all numbers or all names)"
            )
        if y_col.isna().any():
            row = int(np.flatnonzero(y_col.isna().to_numpy())[0])
            raise DataError(f"{path}: column {target} is empty on line {row + 2}; fill or delete that line")
        y = pd.Categorical(y_col).codes.astype("int64")
    x = features.to_numpy(dtype="float32")
    return _split(x, y, val_split, seed)


def check_class_labels(y: Any, loss: Any, what: str) -> None:
    """Class indices for a sparse crossentropy must be whole numbers: Keras would cast
    `1.5` to class 1 without a word.

    Raises:
        DataError: `y` (an array) holds a value that is not a whole number.
    """
    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", "")
    if "sparse" not in str(name).lower() or isinstance(y, (dict, list, tuple)):
        return
    array = np.asarray(y)
    if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
        return
    flat = array.reshape(-1)
    bad = np.isfinite(flat) & (flat != np.round(flat))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{what}: y holds {flat[row]:g} at row {row}, not a class index; {name} needs whole-number "
                        "labels (Keras would truncate it): fix the labels")


def _label_mode(model: Any) -> str:
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
    name = str(name).lower()
    if "sparse" in name:
        return "int"
    if "binary" in name:
        return "binary"
    if "categorical" in name:
        return "categorical"
    return "int"


def _load_images(path: Path, model: Any, val_split: float, seed: int) -> tuple[tuple, tuple]:
    import keras

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"image folder {path} needs one sub-folder per class (found {len(classes)})")
    shape = getattr(model, "input_shape", None) if model is not None else None
    if not shape or len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise DataError(
            f"an image folder needs a model with a fixed (height, width, channels) input. "
            f"Received: a model of input shape {shape}"
        )
    height, width, channels = shape[1], shape[2], shape[3]
    color = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels)
    if color is None:
        raise DataError(f"the model takes {channels} channels; images need 1, 3 or 4")
    try:
        with contextlib.redirect_stdout(io.StringIO()) as said:  # "Using N files ...": not results
            train_ds, val_ds = keras.utils.image_dataset_from_directory(
                path,
                labels="inferred",
                label_mode=_label_mode(model),
                color_mode=color,
                batch_size=None,
                image_size=(height, width),
                shuffle=True,
                seed=seed,
                validation_split=val_split,
                subset="both",
                verbose=False,
            )
        for line in said.getvalue().splitlines():
            logger.debug("%s", line)
    except Exception as exc:
        raise DataError(f"cannot read images from {path}: {first_line(exc)}") from exc

    def arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        try:
            for x, y in dataset.as_numpy_iterator():
                xs.append(x)
                ys.append(y)
        except Exception as exc:  # TensorFlow decodes the files only now
            raise DataError(_undecodable(path, getattr(dataset, "file_paths", ()), exc)) from exc
        if not xs:
            raise DataError(f"image folder {path} holds too few images to split off a validation set")
        return np.stack(xs).astype("float32"), np.stack(ys)

    return arrays(train_ds), arrays(val_ds)


def _undecodable(folder: Path, paths: Sequence[str], exc: BaseException) -> str:
    """The line for an image folder TensorFlow failed to read: the first file that does
    not decode, when one can be found."""
    import tensorflow as tf

    for name in paths:
        try:
            tf.io.decode_image(tf.io.read_file(name), expand_animations=False)
        except Exception as bad:  # noqa: BLE001 - any failure names the file
            return (f"image file {name} in {folder} cannot be decoded ({data_cause(bad)}); "
                    "remove or replace it")
    return f"cannot read the images in {folder}: {data_cause(exc)}; check the files in it"


def load_data_file(
    path: str | Path,
    *,
    target: str | None = None,
    model: Any = None,
    val_split: float = 0.2,
    seed: int = 0,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read `(train, validation)` arrays from an `.npz`, a CSV, or an image folder.

    - `.npz`: arrays `x_train, y_train, x_val, y_val`.
    - CSV: `target` names the label column; all other columns are numeric features;
      text labels are encoded as integers in sorted order; `val_split` of the rows
      (shuffled with `seed`) become the validation set.
    - a folder: one sub-folder per class of images, resized to the model's input
      (height, width, channels) and kept as 0-255 floats (put a `Rescaling` layer in the
      model); labels follow the model's loss (integers, one-hot, or binary).

    Args:
        path: the data file or folder.
        target: label column of a CSV.
        model: the model the data is for (needed for an image folder).
        val_split: validation fraction for CSVs and image folders.
        seed: shuffling seed of that split.

    Returns:
        `((x_train, y_train), (x_val, y_val))` as NumPy arrays.

    Raises:
        DataError: missing file, unknown kind, missing arrays or columns, unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist; check --data")
    if path.is_dir():
        return _load_images(path, model, val_split, seed)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix in {".csv", ".tsv", ".txt"}:
        return _load_csv(path, target, val_split, seed)
    raise DataError(
        f"unknown data file kind {path.name}; use an .npz (x_train, y_train, x_val, y_val), "
        "a CSV with --target, or a folder of images with one sub-folder per class"
    )
