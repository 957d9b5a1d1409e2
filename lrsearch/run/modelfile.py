"""Model files and data files: what `lrsearch auto MODEL_FILE` trains.

A model file is either

- a Python file defining `build_model()` (a fresh compiled `keras.Model` per call) and
  `load_data()` returning `(train, validation)`, each `(x, y)` arrays or a batched
  `tf.data.Dataset`; or
- a saved `.keras` model (loaded with `safe_mode=True` unless `unsafe=True`), trained
  on a data file: an `.npz` holding `x_train, y_train, x_val, y_val`, a CSV with a
  target column and numeric features, or an image folder with one sub-folder per
  class. Every trial starts from the saved weights (fine-tuning).

The file is checked once, then imported or loaded; `load_model_file` then runs the one
pre-flight check (`lrsearch.study.preflight.check_data_fits`). Data files are read by
`lrsearch.data.files`. Each problem raises `ModelFileError` or `DataError` (or
`DivergenceError` for a loss that is NaN before a single update) with a one-line
message.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrsearch.data.files import load_data_file
from lrsearch.core.errors import DataError, ModelFileError, first_line
from lrsearch.run.user_code import exit_message, import_model_file

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


def check_file(path: str | Path, what: str) -> Path:
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
            raise ModelFileError(f"cannot read {what} {path}: {first_line(exc)}") from exc
    return path


def _name(path: Path) -> str:
    """A readable default study name: the file's stem, or its folder for `model.py`."""
    return path.resolve().parent.name if path.stem == "model" else path.stem


def _is_compiled_model(model: Any) -> bool:
    return getattr(model, "optimizer", None) is not None and getattr(model, "loss", None) is not None


# --------------------------------------------------------------------------- Python


def _checked_builder(build: Callable[[], Any], where: str) -> Callable[[], Any]:
    """Wrap `build_model` so that every call returns a compiled Keras model or says why not."""
    import keras

    def build_model() -> Any:
        try:
            model = build()
        except SystemExit as exc:
            raise ModelFileError(exit_message(where, exc.code, "building the model (build_model())")) from None
        except Exception as exc:
            raise ModelFileError(
                f"build_model() in {where} raised {type(exc).__name__}: {first_line(exc)}"
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
            f"load_data() in {where} must return (train, validation). "
            f"Received: {type(value).__name__}{'' if not hasattr(value, '__len__') else f' of length {len(value)}'}"
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
    return _python_source(check_file(path, "model file"))


def _python_builder(module: Any, path: Path) -> Callable[[], Any]:
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise ModelFileError(
            f"model file {path} defines no build_model(); add one that returns a fresh compiled keras.Model"
        )
    return _checked_builder(build, str(path))


def _python_source(path: Path) -> ModelSource:
    module = import_model_file(path)
    builder = _python_builder(module, path)
    load = getattr(module, "load_data", None)
    if not callable(load):
        raise ModelFileError(
            f"model file {path} defines no load_data(); add one that returns (train, validation)"
        )
    try:
        loaded = load()
    except SystemExit as exc:
        raise ModelFileError(exit_message(path, exc.code, "loading the data (load_data())")) from None
    except Exception as exc:
        raise DataError(
            f"load_data() in {path} raised {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    train, validation = _split_pair(loaded, str(path))
    return ModelSource(
        build_model=builder,
        train=_pair(train, "training data"),
        validation=_pair(validation, "validation data"),
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
    return _load_keras(check_file(path, "model file"), unsafe)


def _load_keras(path: Path, unsafe: bool) -> Any:
    import keras

    from lrsearch import optimizers, schedules  # noqa: F401  (a model saved with them loads back)

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
        message = first_line(exc)
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
        return _load_keras(path, unsafe)

    build_model.__doc__ = f"The saved model {path} with its saved weights (fine-tuning)."
    return build_model


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
            # a model made under a distribution strategy (TensorFlow's only) is copied under it too
            strategy = getattr(model, "distribute_strategy", None)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                clone = keras.models.clone_model(model)
                clone.set_weights(weights)
                clone.compile_from_config(config)
            return clone

        return build_model
    if callable(model_or_builder):
        return _checked_builder(model_or_builder, getattr(model_or_builder, "__name__", "build_model"))
    raise ModelFileError(
        f"Argument `model_or_builder` must be a model file path, a compiled keras.Model or a "
        f"build_model function. Received: {type(model_or_builder).__name__}"
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
        _pair(train, "training data"),
        _pair(validation, "validation data"),
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
    metric: str | None = None,
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
        metric: a metric the check makes sure the model logs.

    Returns:
        A `ModelSource`.

    Raises:
        ModelFileError, DataError, DivergenceError: see `load_python_model`,
            `load_keras_model`, `load_data_file`, `check_data_fits`.
    """
    path = check_file(path, "model file")
    suffix = path.suffix.lower()
    model = None
    if suffix == ".py":
        if data is None:
            source = _python_source(path)
        else:
            builder = _python_builder(import_model_file(path), path)
            model = builder()
            train, validation = load_data_file(data, target=target, model=model, val_split=val_split, seed=seed)
            source = ModelSource(builder, train, validation, _name(path), "python", path)
    elif suffix == ".keras":
        model = _load_keras(path, unsafe)
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
        check_data_fits(model, source.train, source.validation, batch_size=batch_size, metric=metric)
        del model
    return source


def _pair(data: Any, what: str) -> Any:
    from lrsearch.data.fit_data import as_pair

    return as_pair(data, what)


def check_data_fits(model: Any, train: Any, validation: Any, **kwargs: Any) -> float:
    """`lrsearch.study.preflight.check_data_fits`: the one check before any training."""
    from lrsearch.study.preflight import check_data_fits as check

    return check(model, train, validation, **kwargs)
