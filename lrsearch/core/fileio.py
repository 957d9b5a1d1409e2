"""Atomic file writes: a reader (or a rerun after a kill) never sees half a file.

Each write goes to a temporary file in the target's folder, then `os.replace` puts it
in place in one step; on failure the temporary file is removed and any old file stays.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary file next to `path`, then rename it to `path`.

    The temporary name is unique per call, so several processes may write the same
    file: the last rename wins and each reader sees one whole version.

    Its folder is made when missing.

    Raises:
        ConfigError: `path` is a folder, or lies under a file.
    """
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            from lrsearch.core.errors import ConfigError

            raise ConfigError(f"cannot write {path}: {parent} is a file, not a folder; pass another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        from lrsearch.core.errors import ConfigError

        raise ConfigError(f"{path} is a folder; pass the path of a file to write in it, such as "
                          f"{path / ('schedule.json' if path.suffix != '.png' else 'plot.png')}")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(frame: Any, path: str | Path) -> Path:
    """Write a pandas DataFrame to `path` as CSV (no index) atomically."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


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
