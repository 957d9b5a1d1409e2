"""Model files and data files: what `lrsearch auto MODEL_FILE` trains.

A model file is either

- a Python file defining `build_model()` (a fresh compiled `keras.Model` per call) and
  `load_data()` returning `(train, validation)`, each `(x, y)` arrays or a batched
  `tf.data.Dataset`; or
- a saved `.keras` model (loaded with `safe_mode=True` unless `unsafe=True`), trained
  on a data file: an `.npz` holding `x_train, y_train, x_val, y_val`, a CSV with a
  target column and numeric features, or an image folder with one sub-folder per
  class. Every trial starts from the saved weights (fine-tuning).

Everything is checked before any training: the file imports, the model is compiled, the
data holds no NaN, and the model evaluates a loss on the first batch. Each problem
raises `ModelFileError` or `DataError` (or `DivergenceError` for a loss that is NaN
before a single update) with a one-line message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrsearch.errors import DataError, DivergenceError, ModelFileError

__all__ = [
    "ModelSource",
    "load_model_file",
    "load_python_model",
    "load_keras_model",
    "load_data_file",
    "check_data_fits",
    "source_from_model",
    "make_builder",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


@dataclass(frozen=True)
class ModelSource:
    """A way to build fresh models plus the data to train and validate them on.

    Attributes:
        build_model: returns a fresh compiled `keras.Model` each call (for a saved
            `.keras` model: the saved weights, so trials fine-tune it).
        train: training data, `(x, y)` arrays or a batched dataset.
        validation: validation data of the same kind.
        name: a readable name (the file's stem), the default study name.
        kind: `"python"`, `"keras"` or `"object"`.
        path: the model file, when there is one.
    """

    build_model: Callable[[], Any]
    train: Any
    validation: Any
    name: str
    kind: str
    path: Path | None = None


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """The first non-empty line of an exception's message, shortened."""
    text = str(exc).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if not line:
        line = type(exc).__name__
    line = line.rstrip(".")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} {path} does not exist; check the path")
    if what == "model file" and path.is_dir():
        raise ModelFileError(f"{what} {path} is a folder; pass a .py file or a .keras model")
    if path.is_file():
        try:
            with path.open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ModelFileError(f"cannot read {what} {path}: {_one_line(exc)}") from exc
    return path


def _name(path: Path) -> str:
    """A readable default study name: the file's stem, or its folder for `model.py`."""
    return path.resolve().parent.name if path.stem == "model" else path.stem


def _is_compiled_model(model: Any) -> bool:
    return getattr(model, "optimizer", None) is not None and getattr(model, "loss", None) is not None


# --------------------------------------------------------------------------- Python


def _import_file(path: Path) -> Any:
    """Import a Python file as a fresh module, its folder on `sys.path` meanwhile."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"_lrsearch_model_{path.stem}_{digest}"
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {_one_line(exc)}") from exc
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ModelFileError(
            f"model file {path} has a syntax error at line {exc.lineno}: {exc.msg}; fix it and rerun"
        ) from exc
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's own model file
    except ImportError as exc:
        sys.modules.pop(module_name, None)
        raise ModelFileError(
            f"model file {path} failed to import: {_one_line(exc)}; install the package or fix the import"
        ) from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ModelFileError(
            f"model file {path} raised {type(exc).__name__} while being imported: {_one_line(exc)}"
        ) from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _checked_builder(build: Callable[[], Any], where: str) -> Callable[[], Any]:
    """Wrap `build_model` so that every call returns a compiled Keras model or says why not."""
    import keras

    def build_model() -> Any:
        try:
            model = build()
        except Exception as exc:
            raise ModelFileError(
                f"build_model() in {where} raised {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        if not isinstance(model, keras.Model):
            raise ModelFileError(
                f"build_model() in {where} returned {type(model).__name__}, not a keras.Model; "
                "return the compiled model"
            )
        if not _is_compiled_model(model):
            raise ModelFileError(
                f"build_model() in {where} returned a model that is not compiled; "
                "call model.compile(optimizer=..., loss=...) before returning it"
            )
        return model

    build_model.__name__ = getattr(build, "__name__", "build_model")
    build_model.__doc__ = getattr(build, "__doc__", None)
    return build_model


def _split_pair(value: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ModelFileError(
            f"load_data() in {where} must return (train, validation), "
            f"got {type(value).__name__}{'' if not hasattr(value, '__len__') else f' of length {len(value)}'}"
        )
    return value[0], value[1]


def load_python_model(path: str | Path) -> ModelSource:
    """Import a Python model file defining `build_model()` and `load_data()`.

    Args:
        path: the `.py` file.

    Returns:
        A `ModelSource` (data not yet checked against the model: see `check_data_fits`).

    Raises:
        ModelFileError: the file is missing, unreadable, has a syntax or import error,
            or lacks `build_model` / `load_data`.
        DataError: `load_data()` fails.
    """
    path = _check_file(path, "model file")
    module = _import_file(path)
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise ModelFileError(
            f"model file {path} defines no build_model(); add one that returns a fresh compiled keras.Model"
        )
    load = getattr(module, "load_data", None)
    if not callable(load):
        raise ModelFileError(
            f"model file {path} defines no load_data(); add one that returns (train, validation)"
        )
    try:
        loaded = load()
    except Exception as exc:
        raise DataError(
            f"load_data() in {path} raised {type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    train, validation = _split_pair(loaded, str(path))
    return ModelSource(
        build_model=_checked_builder(build, str(path)),
        train=_as_pair(train, "training data"),
        validation=_as_pair(validation, "validation data"),
        name=_name(path),
        kind="python",
        path=path,
    )


# --------------------------------------------------------------------------- .keras


def load_keras_model(path: str | Path, *, unsafe: bool = False) -> Any:
    """Load a saved `.keras` model, refusing code-running layers unless `unsafe`.

    Args:
        path: the `.keras` file.
        unsafe: load with `safe_mode=False` (needed for `Lambda` layers; runs code stored
            in the file, so only for files you trust).

    Returns:
        The compiled `keras.Model`, with its saved weights.

    Raises:
        ModelFileError: missing, not a `.keras` archive, corrupt, holds a Lambda layer
            without `unsafe`, or was saved without `compile()`.
    """
    import keras

    path = _check_file(path, "model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a .keras model archive (corrupt or another format); "
            "save the model again with model.save('model.keras')"
        )
    try:
        with warnings.catch_warnings():
            # the optimizer's saved slots are dropped anyway: trials rebuild the optimizer
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.saving.load_model(path, compile=True, safe_mode=not unsafe)
    except Exception as exc:
        message = _one_line(exc)
        if "safe_mode" in str(exc) or "lambda" in str(exc).lower():
            raise ModelFileError(
                f"{path} holds a Lambda layer, which runs code from the file; "
                "pass --unsafe to load it, only if you trust the file"
            ) from exc
        raise ModelFileError(
            f"cannot load {path} ({type(exc).__name__}: {message}); "
            "save the model again with model.save('model.keras')"
        ) from exc
    if not _is_compiled_model(model):
        raise ModelFileError(
            f"{path} was saved without compile(); compile it with an optimizer and a loss, then save it"
        )
    return model


def _keras_builder(path: Path, unsafe: bool) -> Callable[[], Any]:
    def build_model() -> Any:
        return load_keras_model(path, unsafe=unsafe)

    build_model.__doc__ = f"The saved model {path} with its saved weights (fine-tuning)."
    return build_model


# --------------------------------------------------------------------------- data files


def _split(x: np.ndarray, y: np.ndarray, val_split: float, seed: int) -> tuple[tuple, tuple]:
    if not 0.0 < val_split < 1.0:
        raise DataError(f"val_split must be between 0 and 1, got {val_split}")
    n = len(x)
    n_val = int(round(n * val_split))
    if n_val < 1 or n - n_val < 1:
        raise DataError(f"{n} samples are too few to split off a validation set; add data")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _load_npz(path: Path) -> tuple[tuple, tuple]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise DataError(f"cannot read {path} as .npz ({_one_line(exc)}); save it with numpy.savez") from exc
    expected = ("x_train", "y_train", "x_val", "y_val")
    missing = [key for key in expected if key not in arrays]
    if missing:
        raise DataError(
            f"{path} lacks the arrays {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'}); "
            "save x_train, y_train, x_val, y_val"
        )
    for part in ("train", "val"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise DataError(f"{path}: x_{part} has {len(x)} rows but y_{part} has {len(y)}; they must match")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_val"], arrays["y_val"])


def _load_csv(path: Path, target: str | None, val_split: float, seed: int) -> tuple[tuple, tuple]:
    import pandas as pd

    if not target:
        raise DataError(f"{path} is a CSV: name the column to predict with --target COLUMN")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"cannot read {path} as CSV: {_one_line(exc)}") from exc
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
        y = pd.Categorical(y_col).codes.astype("int64")
    x = features.to_numpy(dtype="float32")
    return _split(x, y, val_split, seed)


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
            f"an image folder needs a model with a fixed (height, width, channels) input; got {shape}"
        )
    height, width, channels = shape[1], shape[2], shape[3]
    color = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels)
    if color is None:
        raise DataError(f"the model takes {channels} channels; images need 1, 3 or 4")
    try:
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
    except Exception as exc:
        raise DataError(f"cannot read images from {path}: {_one_line(exc)}") from exc

    def arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for x, y in dataset.as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        if not xs:
            raise DataError(f"image folder {path} holds too few images to split off a validation set")
        return np.stack(xs).astype("float32"), np.stack(ys)

    return arrays(train_ds), arrays(val_ds)


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


# --------------------------------------------------------------------------- checks


def _as_pair(data: Any, what: str) -> Any:
    """Tuples/lists of arrays become tuples; datasets pass through."""
    if isinstance(data, list):
        data = tuple(data)
    if isinstance(data, tuple) and len(data) not in (2, 3):
        raise DataError(f"{what} must be (x, y) or (x, y, sample_weight), got a tuple of {len(data)}")
    if data is None:
        raise DataError(f"{what} is missing; return (train, validation) with both parts")
    return data


def _first_batch(data: Any, what: str, batch_size: int) -> tuple[Any, Any]:
    """The first `(x, y)` batch of arrays or of a batched dataset."""
    if isinstance(data, tuple):
        x, y = data[0], data[1]
        n = _length(x)
        m = _length(y)
        if n is not None and m is not None and n != m:
            raise DataError(f"{what}: x has {n} samples but y has {m}; they must match")
        if n == 0:
            raise DataError(f"{what} is empty; it needs at least one sample")
        return _take(x, batch_size), _take(y, batch_size)
    try:
        if hasattr(data, "__getitem__") and hasattr(data, "num_batches"):  # keras PyDataset
            batch = data[0]
        else:
            batch = next(iter(data))
    except StopIteration:
        raise DataError(f"{what} is an empty dataset; it needs at least one batch") from None
    except Exception as exc:
        raise DataError(f"cannot read a batch of {what}: {_one_line(exc)}") from exc
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise DataError(f"{what} must yield (x, y) batches, got {type(batch).__name__}")
    return batch[0], batch[1]


def _length(x: Any) -> int | None:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (tuple, list)):
        x = x[0]
    try:
        return len(x)
    except TypeError:
        return None


def _take(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(v[:n] for v in x)
    return x[:n]


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [leaf for value in x.values() for leaf in _leaves(value)]
    if isinstance(x, (tuple, list)):
        return [leaf for value in x for leaf in _leaves(value)]
    return [x]


def _check_finite(data: Any, what: str) -> None:
    """Arrays must be finite; a dataset's first batch is checked in `check_data_fits`."""
    if not isinstance(data, tuple):
        return
    for name, part in zip(("x", "y", "sample_weight"), data):
        for leaf in _leaves(part):
            array = np.asarray(leaf)
            if not np.issubdtype(array.dtype, np.number) or array.size == 0:
                continue
            bad = ~np.isfinite(array)
            if bad.all():
                raise DataError(f"{what}: {name} is all NaN/inf; check how the data is loaded")
            count = int(bad.sum())
            if count:
                raise DataError(
                    f"{what}: {name} holds {count} NaN/inf values out of {array.size}; clean or impute them"
                )


def check_data_fits(model: Any, train: Any, validation: Any, *, batch_size: int = 32) -> float:
    """Check, before any training, that the data is usable by the model.

    Evaluates the compiled loss of the first training batch and of the first validation
    batch under the model's current weights (no update).

    Args:
        model: a compiled `keras.Model`.
        train, validation: `(x, y)` arrays or batched datasets.
        batch_size: rows of arrays to evaluate.

    Returns:
        The loss of the first training batch.

    Raises:
        DataError: NaN/inf values in the arrays, mismatched lengths, or data the model
            cannot take (wrong shape, labels out of range).
        DivergenceError: the loss is NaN/inf before a single update.
    """
    import keras

    loss = float("nan")
    for what, data in (("training data", train), ("validation data", validation)):
        _check_finite(data, what)
        x, y = _first_batch(data, what, batch_size)
        for leaf in _leaves(x):
            arr = np.asarray(leaf)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).any():
                raise DataError(f"{what}: the first batch of x is all NaN/inf; check how the data is loaded")
        try:
            y_pred = model(x, training=False)
            value = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
            value = float(keras.ops.convert_to_numpy(value))
        except Exception as exc:
            shape = getattr(model, "input_shape", None)
            x_shape = tuple(np.shape(x)) if not isinstance(x, (dict, list, tuple)) else "structured"
            raise DataError(
                f"{what} does not fit the model (input {shape}, batch x {x_shape}): {_one_line(exc, 160)}"
            ) from exc
        if not np.isfinite(value):
            raise DivergenceError(
                f"the loss on the first batch of {what} is {value} before any training; "
                "check the data's values and the model's loss"
            )
        if what == "training data":
            loss = value
    return loss


# --------------------------------------------------------------------------- entry points


def make_builder(model_or_builder: Any) -> Callable[[], Any]:
    """A checked `build_model()` from a compiled model (copies keep its weights) or a builder.

    Raises:
        ModelFileError: the model is not compiled, or the argument is neither.
    """
    import keras

    if isinstance(model_or_builder, keras.Model):
        model = model_or_builder
        if not _is_compiled_model(model):
            raise ModelFileError("the model is not compiled; call model.compile(optimizer=..., loss=...)")
        config = model.get_compile_config()
        weights = model.get_weights()

        def build_model() -> Any:
            # a model made under a distribution strategy is copied under it too
            with model.distribute_strategy.scope():
                clone = keras.models.clone_model(model)
                clone.set_weights(weights)
                clone.compile_from_config(config)
            return clone

        return build_model
    if callable(model_or_builder):
        return _checked_builder(model_or_builder, getattr(model_or_builder, "__name__", "build_model"))
    raise ModelFileError(
        f"expected a model file path, a compiled keras.Model or a build_model function, "
        f"got {type(model_or_builder).__name__}"
    )


def source_from_model(
    model_or_builder: Any, train: Any, validation: Any, *, name: str = "model"
) -> ModelSource:
    """A `ModelSource` from a compiled model (fine-tuned from its weights) or a builder.

    Args:
        model_or_builder: a compiled `keras.Model` or a `build_model()` callable.
        train, validation: the data.
        name: the default study name.

    Raises:
        ModelFileError: the model is not compiled.
    """
    return ModelSource(
        make_builder(model_or_builder),
        _as_pair(train, "training data"),
        _as_pair(validation, "validation data"),
        name,
        "object",
    )


def load_model_file(
    path: str | Path,
    *,
    data: str | Path | None = None,
    target: str | None = None,
    unsafe: bool = False,
    val_split: float = 0.2,
    seed: int = 0,
    check: bool = True,
    batch_size: int = 32,
) -> ModelSource:
    """Load a Python model file or a saved `.keras` model with its data, and check them.

    Args:
        path: a `.py` file with `build_model()` / `load_data()`, or a `.keras` model.
        data: a data file (`.npz`, CSV, image folder); required for a `.keras` model,
            and replaces `load_data()` for a Python file.
        target: label column when `data` is a CSV.
        unsafe: allow Lambda layers in a `.keras` model (runs code from the file).
        val_split, seed: validation split of a CSV or an image folder.
        check: build one model and check the data against it (`check_data_fits`).
        batch_size: rows evaluated by the check.

    Returns:
        A `ModelSource`.

    Raises:
        ModelFileError, DataError, DivergenceError: see `load_python_model`,
            `load_keras_model`, `load_data_file`, `check_data_fits`.
    """
    path = _check_file(path, "model file")
    suffix = path.suffix.lower()
    model = None
    if suffix == ".py":
        if data is None:
            source = load_python_model(path)
        else:
            module = _import_file(path)
            build = getattr(module, "build_model", None)
            if not callable(build):
                raise ModelFileError(
                    f"model file {path} defines no build_model(); "
                    "add one that returns a fresh compiled keras.Model"
                )
            builder = _checked_builder(build, str(path))
            model = builder()
            train, validation = load_data_file(data, target=target, model=model, val_split=val_split, seed=seed)
            source = ModelSource(builder, train, validation, _name(path), "python", path)
    elif suffix == ".keras":
        model = load_keras_model(path, unsafe=unsafe)
        if data is None:
            raise DataError(
                f"{path} is a saved model: pass its data with --data (an .npz, a CSV with --target, "
                "or an image folder)"
            )
        train, validation = load_data_file(data, target=target, model=model, val_split=val_split, seed=seed)
        source = ModelSource(_keras_builder(path, unsafe), train, validation, path.stem, "keras", path)
    elif suffix in {".h5", ".hdf5"}:
        raise ModelFileError(
            f"{path} is a legacy HDF5 file; load it in Keras and save it as .keras (model.save('model.keras'))"
        )
    else:
        raise ModelFileError(
            f"unknown model file kind {path.name}; pass a .py file with build_model()/load_data() "
            "or a saved .keras model"
        )
    if check:
        if model is None:
            model = source.build_model()
        check_data_fits(model, source.train, source.validation, batch_size=batch_size)
        del model
    return source
