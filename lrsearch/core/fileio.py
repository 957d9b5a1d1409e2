"""Atomic file writes: a reader (or a rerun after a kill) never sees half a file.

Each write goes to a temporary file in the target's folder, then `os.replace` puts it
in place in one step; on failure the temporary file is removed and any old file stays.
The file gets the mode a plain `open(path, "w")` would give it (0666 less the umask),
or keeps the mode of the file it replaces.

A table (a range test's or a sweep's curve) is a CSV with its metadata as JSON beside
it, `<stem>.meta.json`: `write_table` and `read_table` are its one writer and reader.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary file next to `path`, then rename it to `path`.

    The temporary name is unique per call, so several processes may write the same
    file: the last rename wins and each reader sees one whole version.

    Its folder is made when missing.

    Raises:
        ConfigError: `path` is a folder, lies under a file, or its folder cannot be
            written in (read-only, no permission).
    """
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            from lrsearch.core.errors import ConfigError

            raise ConfigError(f"cannot write {path}: {parent} is a file, not a folder; pass another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    if path.is_dir():
        from lrsearch.core.errors import ConfigError

        raise ConfigError(f"{path} is a folder; pass the path of a file to write in it, such as "
                          f"{path / ('schedule.json' if path.suffix != '.png' else 'plot.png')}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only folder or file system, no permission
        raise _write_error(path, exc) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _mode_for(path))  # mkstemp makes it 0600, private to its owner
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a file system gone read-only
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_error(path: Path, exc: OSError) -> Exception:
    """The one-line `ConfigError` for a write the file system refused."""
    import errno

    from lrsearch.core.errors import ConfigError

    reason = exc.strerror or str(exc) or type(exc).__name__
    fix = "free space on the disk or pass another path" if exc.errno in (errno.ENOSPC, errno.EDQUOT) \
        else "pass a path you can write to"
    return ConfigError(f"cannot write {path} ({reason}); {fix}")


def _umask() -> int:
    """The process's umask; Linux shows it in /proc, elsewhere it is set and set back."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode of the file `path` (when it exists), else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(frame: Any, path: str | Path) -> Path:
    """Write a pandas DataFrame to `path` as CSV (no index) atomically."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def meta_path(path: str | Path) -> Path:
    """The metadata file beside the table `path`: `curve.csv` -> `curve.meta.json`."""
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # NumPy scalars (np.float32, np.int64, ...)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_table(path: str | Path, frame: Any, meta: Mapping[str, Any]) -> Path:
    """Write `frame` as CSV at `path` and `meta` as JSON at `meta_path(path)`, each
    atomically; NumPy scalars in `meta` are written as numbers.

    Returns:
        The CSV path.
    """
    path = Path(path)
    text = json.dumps(dict(meta), indent=2, default=_json_default) + "\n"  # refused before anything is written
    write_csv(frame, path)
    write_text(meta_path(path), text)
    return path


def read_table(path: str | Path, read_frame: Callable[[Path], Any]) -> tuple[Any, dict[str, Any]]:
    """The table `read_frame(path)` and its metadata (`{}` when there is no
    `.meta.json` beside it).

    Raises:
        DataError: the metadata file is not JSON, or not a JSON object.
        whatever `read_frame` raises for a missing or malformed CSV.
    """
    from lrsearch.core.errors import DataError

    path = Path(path)
    frame = read_frame(path)
    mp = meta_path(path)
    if not mp.exists():
        return frame, {}
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{mp} is not JSON ({exc}); delete it or save again") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{mp} holds a JSON {type(meta).__name__}, not an object; delete it or save again")
    return frame, meta


def writable_folder(path: str | Path, what: str = "output folder") -> Path:
    """Make the folder `path` (and its parents) and check that files can be written in it,
    before any long computation that would write there.

    Raises:
        ConfigError: `path` is a file, lies under a file, has a name the file system
            refuses (too long), or cannot be written (read-only, no permission).
    """
    import errno

    from lrsearch.core.errors import ConfigError

    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{what} {path} is a file, not a folder; pass a folder path")
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                raise ConfigError(f"{what} {path} lies under the file {parent}; pass a folder path")
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".lrsearch-write-check.", dir=path)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ConfigError(f"{what} {str(path)[:60]}... has a name too long for the file system; "
                              "pass a shorter folder or study name") from exc
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write in {what} {path} ({reason}); pass a folder you can write to") from exc
    return path
