"""Digests of what a run's evidence depends on: files, the user's modules, data, models.

`lrsearch.run.evidence` compares these to tell whether a range test, a sweep or a study
in a run folder was made from the model and data of this run, and `lrsearch.study.tune`
records a study's model and data with it, so a resumed study is one of the same model:

- `source_digest`: a Python file's syntax tree (comments and layout do not count), any
  other file's bytes;
- `imported_modules`: the user's modules a model file imports, directly or through
  each other (those under its folder, found by `modulefinder` without running them);
- `architecture_fingerprint`: the model's Keras serialization (every layer's config:
  activations, regularizers, initializers, dropout rates; the loss, metrics and the
  optimizer's config), each nested layer's config, and the weights' shapes and dtypes;
- `data_fingerprint`: every array's shape, dtype and bytes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import modulefinder
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "file_digest",
    "source_digest",
    "imported_modules",
    "data_fingerprint",
    "data_shape",
    "architecture_fingerprint",
]


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=16)


def file_digest(path: str | Path) -> str:
    """The digest of a file's bytes; for a folder, of its files' names, sizes and times."""
    path = Path(path)
    h = _hasher()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_digest(path: str | Path) -> str:
    """The digest of a Python file's syntax tree (a comment or blank line changes nothing),
    or of the bytes of a file that is not Python or does not parse."""
    path = Path(path)
    if path.suffix == ".py":
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return file_digest(path)
        h = _hasher()
        h.update(ast.dump(tree).encode())
        return h.hexdigest()
    return file_digest(path)


def imported_modules(model_file: str | Path) -> dict[str, str]:
    """`{path relative to the model file's folder: source_digest}` of the modules under
    that folder that the model file imports, directly or through one another.

    The imports are read from the compiled code (`modulefinder`), not run; one made at
    run time by name (`importlib.import_module(name)`) is not seen.
    """
    path = Path(model_file).resolve()
    folder = path.parent
    finder = modulefinder.ModuleFinder(path=[str(folder)])
    try:
        finder.run_script(str(path))
    except Exception:  # noqa: BLE001 - a helper that does not compile: import itself says so
        pass
    found: dict[str, str] = {}
    for module in finder.modules.values():
        file = getattr(module, "__file__", None)
        if not file or module.__name__ == "__main__":
            continue
        file = Path(file).resolve()
        if file != path and folder in file.parents and file.is_file():
            found[file.relative_to(folder).as_posix()] = source_digest(file)
    return dict(sorted(found.items()))


def _array_parts(data: Any) -> Iterable[Any] | None:
    """The arrays of `(x, y)` / `(x, y, w)` data (nested dicts and lists too), or None."""
    if isinstance(data, Mapping):
        return [a for key in sorted(data) for a in (_array_parts(data[key]) or [None])]
    if isinstance(data, (tuple, list)):
        parts: list[Any] = []
        for item in data:
            sub = _array_parts(item)
            if sub is None:
                return None
            parts.extend(sub)
        return parts
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") and hasattr(data, "shape"):
        return [data]
    return None


def data_fingerprint(data: Any) -> str:
    """A digest of training or validation data: of every array's shape, dtype and bytes;
    for a dataset, of its element structure and length (its source file, if any, is
    fingerprinted separately)."""
    h = _hasher()
    arrays = _array_parts(data)
    if arrays is None:
        spec = getattr(data, "element_spec", None)
        h.update(f"{type(data).__name__}\0{spec!r}".encode())
        for attr in ("cardinality", "__len__"):
            try:
                size = getattr(data, attr)()
                h.update(f"\0{int(size)}".encode())
                break
            except Exception:  # noqa: BLE001 - a length is a bonus, not a requirement
                continue
        return h.hexdigest()
    for array in arrays:
        if array is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(np.asarray(array))
        h.update(f"{a.shape}\0{a.dtype.str}\0".encode())
        h.update(a.view(np.uint8).reshape(-1) if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()


def data_shape(data: Any) -> str:
    """The shapes of `data`'s arrays, as a "redone" line shows them: `(40, 4) (40,)`."""
    arrays = _array_parts(data)
    if not arrays:
        return type(data).__name__
    return " ".join(str(tuple(np.shape(a))) for a in arrays if a is not None)


_COUNTER = re.compile(r"_\d+(?=/|$)")  # Keras numbers names per session: dense_3 -> dense


def _plain(value: Any) -> Any:
    """A config as JSON values, with the numbers Keras adds to generated names removed
    (`dense_3` -> `dense`: they change from build to build)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _COUNTER.sub("", value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return type(value).__name__


def _config(obj: Any, how: Any) -> Any:
    try:
        return _plain(how(obj))
    except Exception:  # noqa: BLE001 - an object Keras cannot serialize: its class then
        return type(obj).__name__


def _sublayers(model: Any) -> list[Any]:
    """Every layer inside `model`, nested ones too (a subclassed model's and layer's)."""
    flatten = getattr(model, "_flatten_layers", None)
    if callable(flatten):
        return list(flatten(include_self=False, recursive=True))
    return list(getattr(model, "layers", []))


def architecture_fingerprint(model: Any) -> str:
    """A digest of what decides a model's training besides data and seed: its Keras
    serialization (layer configs, compile config: loss, metrics, optimizer config), each
    nested layer's class and config, and the weights' paths, shapes and dtypes."""
    import keras

    parts: list[Any] = [type(model).__name__, _config(model, keras.saving.serialize_keras_object)]
    parts += [(type(layer).__name__, _config(layer, lambda obj: obj.get_config())) for layer in _sublayers(model)]
    parts += [(_COUNTER.sub("", w.path), tuple(w.shape), str(w.dtype)) for w in model.weights]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        parts.append((type(optimizer).__name__, _config(optimizer, lambda obj: obj.get_config())))
    loss = getattr(model, "loss", None)
    parts.append(getattr(loss, "__name__", None) or (type(loss).__name__ if not isinstance(loss, str) else loss))
    h = _hasher()
    h.update(json.dumps(parts, default=repr, sort_keys=True).encode())
    return h.hexdigest()
