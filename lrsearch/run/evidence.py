"""What produced the evidence in a run folder, so a rerun reuses it only when it still holds.

`auto` keeps the range test, the sweeps and the study in its run folder so that a rerun
resumes instead of redoing them. That is right only while the model, the data and the
settings are the ones that produced them, and only for whole files. Each piece of
evidence is therefore recorded in `evidence.json` beside it, after its files are written:

- its fingerprint (`lrsearch.study.digests`): the model file's code, the code of the
  user's modules it imports (those under its folder), the model's architecture (every
  layer's config, the loss, metrics and optimizer config, weight shapes), the data's
  digest and shapes, batch size, seed, the range and steps tested (a sweep also: its
  values and the range test it read), and the lrsearch version;
- the digests of the files written, so a file cut short or edited afterwards is seen;
- whether its curve could be read.

`stale(folder, name, fingerprint)` says why a piece must be redone ("--steps changed
(100 -> 400)"), or None when it can be reused. A study is recorded with the model and
data it was made from (`study_name`): a rerun on another model starts a new study
beside it instead of mixing trials of both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrsearch.core.fileio import write_text
from lrsearch.study.digests import (
    architecture_fingerprint,
    data_fingerprint,
    data_shape,
    file_digest,
    imported_modules,
    source_digest,
)

__all__ = [
    "EVIDENCE_FILE",
    "file_digest",
    "architecture_fingerprint",
    "data_fingerprint",
    "source_fingerprint",
    "model_fingerprint",
    "range_fingerprint",
    "sweep_fingerprint",
    "stale",
    "record",
    "forget",
    "reusable",
    "study_name",
    "study_options",
    "keep_interrupted",
    "curve_suggestion",
]

logger = logging.getLogger(__name__)

EVIDENCE_FILE = "evidence.json"
FORMAT, VERSION = "lrsearch.run.evidence", 1

# how a fingerprint key is named in a "redone" line: a flag where there is one
_LABELS = {
    "model_file": "the model file",
    "modules": "the model file's modules",
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
_OPAQUE = {"model_file", "modules", "architecture", "data", "data_file", "range_test"}  # digests: no values shown
MODEL_KEYS = ("model_file", "modules", "architecture", "data", "data_shape", "data_file")
"""What a study's trials depend on: a study is resumed only while these match."""


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
    path = getattr(source, "path", None)
    fp: dict[str, Any] = {
        "model_file": source_digest(path) if path else None,
        "modules": imported_modules(path) if path and Path(path).suffix == ".py" else {},
        "architecture": architecture_fingerprint(model),
        "data": data_fingerprint((source.train, source.validation)),
        "data_shape": data_shape(source.train),
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


def model_fingerprint(base: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a `source_fingerprint` a study depends on: the model and the data."""
    return {key: base.get(key) for key in MODEL_KEYS}


def _book(folder: Path) -> dict[str, Any]:
    """`evidence.json` as a dict (a fresh one when it is missing, cut short or another format)."""
    try:
        book = json.loads((folder / EVIDENCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        book = None
    if not isinstance(book, dict) or book.get("format") != FORMAT or book.get("version") != VERSION:
        book = {}
    for part in ("entries", "studies"):
        if not isinstance(book.get(part), dict):
            book[part] = {}
    return {**book, "format": FORMAT, "version": VERSION}


def _write(folder: Path, book: Mapping[str, Any]) -> None:
    write_text(folder / EVIDENCE_FILE, json.dumps(book, indent=2, sort_keys=True) + "\n")


def _read(folder: Path) -> dict[str, Any]:
    return _book(folder)["entries"]


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


def _modules_changed(old: Any, new: Mapping[str, str]) -> str:
    old = old if isinstance(old, dict) else {}
    names = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    if not names:
        return "the model file's imports changed"
    said = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{said} (imported by the model file) changed"


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changed = []
    for key in new:
        if key == "data_shape" or old.get(key) == new[key]:
            continue
        label = _LABELS.get(key, key)
        if key == "data":
            before, after = old.get("data_shape"), new.get("data_shape")
            changed.append(f"the data changed ({before} -> {after})" if before != after else "the data changed")
        elif key == "modules":
            changed.append(_modules_changed(old.get(key), new[key]))
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
    book = _book(folder)
    for f in files:  # a range test whose curve could not be read says so in its meta
        if f.endswith(".meta.json") and (folder / f).is_file() and problem is None:
            try:
                problem = json.loads((folder / f).read_text(encoding="utf-8")).get("suggestion_error")
            except (OSError, ValueError, AttributeError):
                problem = f"{f} is not JSON"
    book["entries"][name] = {
        "fingerprint": _normal(fingerprint),
        "files": {f: file_digest(folder / f) for f in files if (folder / f).is_file()},
        "usable": bool(usable) and problem is None,
        "problem": problem,
    }
    _write(folder, book)


def forget(folder: str | Path, name: str) -> None:
    """Drop the record of `name` (before it is redone: a kill mid-way then leaves no record)."""
    folder = Path(folder)
    book = _book(folder)
    if name in book["entries"]:
        del book["entries"][name]
        _write(folder, book)


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


_IN_FOLDER = "sqlite:///<run folder>/"
"""How a record names a SQLite file inside its run folder: the record holds wherever the folder moves."""


def _storage_key(folder: Path, url: Any) -> Any:
    """`url` as a study record keeps it: a SQLite file inside `folder` by its path there
    (`_IN_FOLDER + "study.db"`, also for a record an older version wrote with the whole path)."""
    if not isinstance(url, str) or not url.startswith("sqlite:///") or url.startswith(_IN_FOLDER):
        return url
    try:
        inside = Path(url[len("sqlite:///"):]).resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return url
    return _IN_FOLDER + inside.as_posix()


def study_name(folder: str | Path, name: str, fingerprint: Mapping[str, Any], *, storage: str,
               exists: Callable[[str], bool], reuse: bool = True) -> str:
    """The study this run adds its trials to: `name` while it was made from the same model
    and data (`model_fingerprint(fingerprint)`), else a study beside it.

    Each study started here is recorded in `folder/evidence.json` with the model and data
    it was made from. A stored study recorded with others is left as it is (its trials
    kept) and the run goes on in `name-2` (`name-3`, ...: the first made from this model,
    or not stored yet), saying so in one line. A stored study without a record (made
    before records were kept, or by a worker with another run folder) is resumed.

    Args:
        folder: the run folder.
        name: the study name asked for (`--study`, or the model file's).
        fingerprint: the run's `source_fingerprint`.
        storage: the storage URL (a record holds for that storage only; a SQLite file in
            `folder` is recorded by its place there, so a moved folder keeps its records).
        exists: whether the storage holds a study of a given name.
        reuse: False (`--fresh`): `name`, which the caller deletes.
    """
    folder = Path(folder)
    book = _book(folder)
    studies = book["studies"]
    want = _normal(model_fingerprint(fingerprint))
    where = _storage_key(folder, storage)

    def made_from(candidate: str) -> dict[str, Any] | None:
        entry = studies.get(candidate)
        if isinstance(entry, dict) and _storage_key(folder, entry.get("storage")) == where:
            return entry.get("fingerprint") or {}
        return None

    chosen = name
    if reuse:
        for k in range(1, 10_000):
            candidate = name if k == 1 else f"{name}-{k}"
            recorded = made_from(candidate)
            if recorded == want or not exists(candidate) or (recorded is None and k == 1):
                chosen = candidate
                break
    if chosen != name:
        why = "; ".join(_differences(made_from(name) or {}, want)) or "another model or data"
        then = f"resuming study {chosen!r}, made from this one" if exists(chosen) else f"this run starts study {chosen!r}"
        logger.info("study %r was made from another model or data (%s): its trials are kept; %s",
                    name, why, then)
    studies[chosen] = {"fingerprint": want, "storage": where}
    _write(folder, book)
    return chosen


def study_options(folder: str | Path, options: Any, default_name: str, fingerprint: Mapping[str, Any], *,
                  reuse: bool = True) -> Any:
    """`options` (a `StudyOptions`) naming the study this run goes on in (`study_name`):
    the one asked for while it was made from this model and data, else one beside it."""
    from lrsearch.study.storage import default_storage_url, storage_url, study_names

    folder = Path(folder)
    name = options.study_name or default_name
    if options.backend == "optuna":
        storage = options.storage or default_storage_url(folder)
        stored = set(study_names(storage))
        url = storage_url(storage)
        chosen = study_name(folder, name, fingerprint, storage=url, exists=stored.__contains__, reuse=reuse)
    else:
        def exists(candidate: str) -> bool:
            return (folder / "keras_tuner" / candidate).is_dir()

        chosen = study_name(folder, name, fingerprint, storage="keras-tuner", exists=exists, reuse=reuse)
    return options if chosen == name else options.from_kwargs(options, study_name=chosen)


def keep_interrupted(exc: BaseException, path: str | Path, what: str) -> str | None:
    """Save what an interrupted range test or sweep finished (the result Ctrl-C or SIGTERM
    left on `exc`) to `path`, unrecorded, so a rerun redoes it; the sentence saying so is
    added to `exc`'s notes and returned (None when nothing was finished)."""
    path = Path(path)
    sweep = getattr(exc, "sweep_result", None)
    curve = getattr(exc, "range_test_result", None)
    try:
        if sweep is not None and sweep.results:
            sweep.save(path)
            values = ", ".join(f"{v:g}" for v in sweep.results)
            said = f"the {what}'s finished values ({values}) are saved in {path}"
        elif sweep is None and curve is not None and len(curve.frame):
            curve.save(path)
            said = f"the {what}'s curve so far ({len(curve.frame)} steps) is saved in {path}"
        else:
            return None
    except OSError as exc_saving:
        logger.warning("could not save the interrupted %s to %s: %s", what, path, exc_saving)
        return None
    said += f"; a rerun redoes the {what}"
    exc.add_note(said)
    return said


def curve_suggestion(path: str | Path) -> Any:
    """The suggestion of the range-test CSV at `path` (`lrsearch tune --range-test`), which
    must be readable as a fresh range test's must: a curve without a descent or flat is
    refused, not studied between fallback bounds.

    Raises:
        DataError: the file is missing or not a range-test CSV.
        CurveError: the curve is too short, flat or shows no descent.
    """
    from lrsearch.core.errors import CurveError
    from lrsearch.rangetest.analysis import UNREADABLE
    from lrsearch.rangetest.result import RangeTestResult

    suggestion = RangeTestResult.load(path).suggestion
    if set(suggestion.problems) & set(UNREADABLE):
        said = suggestion.warnings[0] if suggestion.warnings else ", ".join(suggestion.problems)
        raise CurveError(f"the range-test curve in {path} cannot be read: {said}; or pass --bounds BASE_LR MAX_LR")
    return suggestion
