"""What produced the evidence in a run folder, so a rerun reuses it only when it still holds.

`auto` keeps the range test and the sweeps in its run folder so that a rerun resumes
instead of redoing them. That is right only while the model, the data and the settings
are the ones that produced them, and only for whole files. Each piece of evidence is
therefore recorded in `evidence.json` beside it, after its files are written:

- its fingerprint: the model file's digest, the model's architecture (layer classes,
  weight shapes, optimizer and loss), the data's digest and shapes, batch size, seed,
  the range and steps tested (a sweep also: its values and the range test it read),
  and the lrsearch version;
- the digests of the files written, so a file cut short or edited afterwards is seen;
- whether its curve could be read.

`stale(folder, name, fingerprint)` says why a piece must be redone ("--steps changed
(100 -> 400)"), or None when it can be reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrsearch.core.fileio import write_text

__all__ = [
    "EVIDENCE_FILE",
    "file_digest",
    "source_fingerprint",
    "range_fingerprint",
    "sweep_fingerprint",
    "stale",
    "record",
    "forget",
    "reusable",
]

logger = logging.getLogger(__name__)

EVIDENCE_FILE = "evidence.json"
FORMAT, VERSION = "lrsearch.run.evidence", 1

# how a fingerprint key is named in a "redone" line: a flag where there is one
_LABELS = {
    "model_file": "the model file",
    "architecture": "the model (layers, optimizer or loss)",
    "data": "the data",
    "data_file": "the data file",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "min_lr": "--min-lr",
    "max_lr": "--max-lr",
    "steps": "--steps",
    "mode": "--mode",
    "lrsearch": "the lrsearch version",
    "values": "the swept values",
    "window": "the sweep window",
    "range_test": "the range test",
}
_OPAQUE = {"model_file", "architecture", "data", "data_file", "range_test"}  # digests: no values shown


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


def _shape_of(data: Any) -> str:
    arrays = _array_parts(data)
    if not arrays:
        return type(data).__name__
    return " ".join(str(tuple(np.shape(a))) for a in arrays if a is not None)


_COUNTER = re.compile(r"_\d+(?=/|$)")  # Keras numbers names per session: dense_3 -> dense


def _plain(value: Any) -> Any:
    """A config with the names Keras generates removed (they change from build to build)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in sorted(value.items()) if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(type(value).__name__)


def architecture_fingerprint(model: Any) -> str:
    """A digest of a model's layer classes, weight shapes and dtypes, optimizer class and
    configuration, and loss: what decides the curve besides the data and the seed."""
    parts: list[Any] = [type(model).__name__]
    parts += [type(layer).__name__ for layer in model.layers]
    parts += [(_COUNTER.sub("", w.path), tuple(w.shape), str(w.dtype)) for w in model.weights]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        try:
            config = optimizer.get_config()
        except Exception:  # noqa: BLE001 - an optimizer without a config: its class then
            config = {}
        parts.append((type(optimizer).__name__, _plain(config)))
    loss = getattr(model, "loss", None)
    parts.append(getattr(loss, "__name__", None) or (type(loss).__name__ if not isinstance(loss, str) else loss))
    h = _hasher()
    h.update(json.dumps(parts, default=repr, sort_keys=True).encode())
    return h.hexdigest()


def source_fingerprint(source: Any, options: Any, *, data: Any = None, model: Any = None) -> dict[str, Any]:
    """What a run's evidence depends on besides the range: model, data, batch size, seed.

    Args:
        source: the checked `ModelSource`.
        options: the run's `StudyOptions`.
        data: the data file given with the model, if any.
        model: a model built by `source.build_model` (one is built when None).
    """
    from lrsearch.core.version import __version__

    model = source.build_model() if model is None else model
    fp: dict[str, Any] = {
        "model_file": file_digest(source.path) if getattr(source, "path", None) else None,
        "architecture": architecture_fingerprint(model),
        "data": data_fingerprint((source.train, source.validation)),
        "data_shape": _shape_of(source.train),
        "data_file": file_digest(data) if isinstance(data, (str, Path)) and Path(data).exists() else None,
        "batch_size": options.array_batch_size,
        "seed": options.seed,
        "lrsearch": __version__,
    }
    return fp


def range_fingerprint(base: Mapping[str, Any], options: Any) -> dict[str, Any]:
    """The fingerprint of a range test run with `options`' range on `base`'s model and data."""
    return {**base, "min_lr": float(options.min_lr), "max_lr": float(options.max_lr),
            "steps": options.range_steps, "mode": options.mode}


def sweep_fingerprint(base: Mapping[str, Any], values: Sequence[float], window: Mapping[str, Any],
                      range_test: str | Path) -> dict[str, Any]:
    """The fingerprint of a sweep: `base`, its values and window, and the range test it read."""
    return {**base, "values": [float(v) for v in values],
            "window": {k: (float(v) if isinstance(v, float) else v) for k, v in sorted(window.items())},
            "range_test": file_digest(range_test)}


def _read(folder: Path) -> dict[str, Any]:
    path = folder / EVIDENCE_FILE
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(book, dict) or book.get("format") != FORMAT or book.get("version") != VERSION:
        return {}
    entries = book.get("entries")
    return entries if isinstance(entries, dict) else {}


def _normal(fp: Mapping[str, Any]) -> dict[str, Any]:
    """`fp` as it reads back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(fp, default=repr))


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "default"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changed = []
    for key in new:
        if key == "data_shape" or old.get(key) == new[key]:
            continue
        label = _LABELS.get(key, key)
        if key == "data":
            before, after = old.get("data_shape"), new.get("data_shape")
            changed.append(f"the data changed ({before} -> {after})" if before != after else "the data changed")
        elif key in _OPAQUE or isinstance(new[key], dict):
            changed.append(f"{label} changed")
        else:
            changed.append(f"{label} changed ({_show(old.get(key))} -> {_show(new[key])})")
    return changed


def stale(folder: str | Path, name: str, fingerprint: Mapping[str, Any]) -> str | None:
    """Why the evidence `name` in `folder` cannot be reused with `fingerprint`; None if it can.

    It can be reused when its files exist, are the very files recorded (not cut short
    or edited), its curve could be read, and every part of the fingerprint matches.
    """
    folder = Path(folder)
    if not (folder / name).exists():
        return "not there"
    entry = _read(folder).get(name)
    if not isinstance(entry, dict):
        return f"{name} has no record of what produced it (an older or interrupted run)"
    files = entry.get("files") or {}
    if name not in files:
        return f"{name} has no record of its contents"
    for fname, digest in files.items():
        path = folder / fname
        if not path.exists():
            return f"{fname} is missing"
        if file_digest(path) != digest:
            return f"{fname} is not the file recorded (cut short or edited)"
    if not entry.get("usable", False):
        return f"the last one could not be read ({entry.get('problem') or 'no usable curve'})"
    changed = _differences(entry.get("fingerprint") or {}, _normal(fingerprint))
    return "; ".join(changed) if changed else None


def record(folder: str | Path, name: str, fingerprint: Mapping[str, Any], files: Sequence[str], *,
           usable: bool = True, problem: str | None = None) -> None:
    """Note in `folder/evidence.json` that `files` (written, whole) hold the evidence `name`
    made with `fingerprint`. Written atomically, after the files themselves."""
    folder = Path(folder)
    entries = _read(folder)
    for f in files:  # a range test whose curve could not be read says so in its meta
        if f.endswith(".meta.json") and (folder / f).is_file() and problem is None:
            try:
                problem = json.loads((folder / f).read_text(encoding="utf-8")).get("suggestion_error")
            except (OSError, ValueError, AttributeError):
                problem = f"{f} is not JSON"
    entries[name] = {
        "fingerprint": _normal(fingerprint),
        "files": {f: file_digest(folder / f) for f in files if (folder / f).is_file()},
        "usable": bool(usable) and problem is None,
        "problem": problem,
    }
    book = {"format": FORMAT, "version": VERSION, "entries": entries}
    write_text(folder / EVIDENCE_FILE, json.dumps(book, indent=2, sort_keys=True) + "\n")


def forget(folder: str | Path, name: str) -> None:
    """Drop the record of `name` (before it is redone: a kill mid-way then leaves no record)."""
    folder = Path(folder)
    entries = _read(folder)
    if name in entries:
        del entries[name]
        book = {"format": FORMAT, "version": VERSION, "entries": entries}
        write_text(folder / EVIDENCE_FILE, json.dumps(book, indent=2, sort_keys=True) + "\n")


def reusable(folder: str | Path, name: str, fingerprint: Mapping[str, Any], *, what: str,
             reuse: bool = True) -> bool:
    """Whether the evidence `name` (told as `what`, e.g. "range test") can be reused; when
    not, its record is dropped and one line says why it is redone (or nothing, the first
    time)."""
    why = stale(folder, name, fingerprint) if reuse else "--fresh"
    if why is None:
        logger.info("reusing the %s in %s (same model, data and settings)", what, Path(folder) / name)
        return True
    if why != "not there":
        logger.info("%s redone: %s", what, why)
    forget(folder, name)
    return False
