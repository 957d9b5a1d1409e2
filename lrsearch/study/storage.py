"""Where studies live: storage URLs turned into Optuna storages with a heartbeat.

A study is kept in a relational database so that it survives the process that ran it
and so that several worker processes (on one machine or many) can share it:

- no URL: a SQLite file `study.db` in the run's output directory;
- `sqlite:///path/to/file.db`: a SQLite file (several processes on ONE machine);
- `postgresql://user@host:port/db` (or `postgresql+psycopg2://`, `mysql://`, ...): a
  database server, the choice for workers on several machines.

Every storage is an `optuna.storages.RDBStorage` with a heartbeat: a running trial
records a heartbeat every `heartbeat_interval` seconds, and when any worker starts a
trial Optuna marks trials whose heartbeat is older than `grace_period` as failed (their
worker died: SIGKILL, a lost machine) and queues a retry of each (up to `max_retry`
times), which the next free worker runs first.

Example:

    storage = open_storage("sqlite:///runs/digits/study.db")
    study = optuna.create_study(storage=storage, study_name="digits", load_if_exists=True)
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from lrsearch.core.errors import StorageError, argument_error, first_line
from lrsearch.core.defaults import DEFAULT_HEARTBEAT_INTERVAL

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "SCHEMES",
    "default_storage_url",
    "delete_study",
    "existing_storage",
    "open_storage",
    "retried",
    "retry_trial",
    "storage_failure",
    "storage_url",
    "study_names",
]

logger = logging.getLogger(__name__)

SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
"""Database kinds (SQLAlchemy dialects) a storage URL may name."""

# A SQLite database is locked for the length of one write; workers wait this long for
# the lock instead of failing at once with "database is locked". A lock held longer is
# another process's open transaction, told as such (`storage_failure`).
_SQLITE_TIMEOUT_S = 10.0

# A database server that accepts a connection but never answers is given up after this.
_CONNECT_TIMEOUT_S = 10

# The SQLite files this process opened, newest last: named by `storage_failure`.
_SQLITE_PATHS: list[str] = []

# What SQLite says -> what the one line tells.
_SQLITE_REASONS = (
    ("database is locked", "is locked by another process (an open write transaction) for over "
                           f"{_SQLITE_TIMEOUT_S:g} s; end that process or use another file"),
    ("database or disk is full", "cannot be written: no space left on the disk; free space or use another file"),
    ("readonly database", "cannot be written: the file or its folder is read-only; use a file you can write"),
    ("unable to open database file", "cannot be opened (no permission, or its folder is gone); "
                                     "use a file you can write"),
    ("disk i/o error", "cannot be written: disk I/O error; check the disk or use another file"),
)


def default_storage_url(out_dir: str | Path) -> str:
    """The storage a study uses when none is given: `sqlite:///<out_dir>/study.db`.

    Args:
        out_dir: the run's output directory (created if missing).

    Returns:
        A SQLite URL with an absolute path, so that it means the same file from any
        working directory.
    """
    path = Path(out_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'study.db'}"


def storage_url(storage: str | optuna.storages.BaseStorage) -> str:
    """The URL of a storage (for messages and provenance), without any password."""
    if isinstance(storage, str):
        url = storage
    else:
        inner = getattr(storage, "_backend", storage)
        url = getattr(inner, "url", type(inner).__name__)
    return _hide_password(url)


def open_storage(
    url: str | optuna.storages.BaseStorage,
    *,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int | None = 1,
) -> optuna.storages.BaseStorage:
    """Open (and create if needed) the database behind a storage URL.

    Args:
        url: a SQLAlchemy database URL (see the module docstring), or an Optuna storage
            object, which is returned unchanged.
        heartbeat_interval: seconds between heartbeats of a running trial; `None`
            turns the heartbeat off (a dead worker's trial then stays RUNNING forever).
        grace_period: seconds without a heartbeat after which a running trial is marked
            failed; default `2 * heartbeat_interval` (Optuna's default).
        max_retry: how many times a trial whose worker died is queued again with the
            same parameters (`None`: no limit, 0: never).

    Returns:
        An `optuna.storages.RDBStorage`.

    Raises:
        StorageError: the URL is not a database URL of a known kind, or the database
            cannot be reached or opened.
    """
    if isinstance(url, optuna.storages.BaseStorage):
        return url
    if not isinstance(url, str) or "://" not in url:
        raise argument_error("storage", "a database URL such as sqlite:///study.db or postgresql://user@host/db",
                             url, StorageError)
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in SCHEMES:
        raise StorageError(
            f"unknown storage kind {scheme!r} in {_hide_password(url)}: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES[:3])
        )
    if heartbeat_interval is not None and heartbeat_interval <= 0:
        raise argument_error("heartbeat_interval", "> 0 seconds", heartbeat_interval, StorageError)

    given, url = url, _with_installed_driver(url, scheme)
    engine_kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        path = _make_sqlite_parent(url)
        if path is not None:
            _SQLITE_PATHS.append(path)
        engine_kwargs["connect_args"] = {"timeout": _SQLITE_TIMEOUT_S}
    else:
        # A dropped connection (server restart, idle timeout) is replaced, not fatal.
        engine_kwargs["pool_pre_ping"] = True
        if scheme in ("postgresql", "postgres", "mysql", "mariadb") and "connect_timeout=" not in url:
            engine_kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}

    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = int(heartbeat_interval)
        kwargs["grace_period"] = int(grace_period or 2 * heartbeat_interval)
        if max_retry is None or max_retry > 0:
            kwargs.update(_retry_callback(max_retry))

    # Two workers creating the tables of a new database at the same moment can collide;
    # the loser retries once the winner has finished.
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", FutureWarning)
                storage = optuna.storages.RDBStorage(url, **kwargs)
            if scheme == "sqlite":
                _write_ahead_log(storage)
            return storage
        except ImportError as exc:
            raise StorageError(
                f"no database driver for {_hide_password(given)}: install one "
                "(psycopg[binary] for PostgreSQL, PyMySQL for MySQL as mysql+pymysql://)"
            ) from exc
        except Exception as exc:  # SQLAlchemy and driver errors share no base we can name
            if attempt < 2 and _is_transient(exc):
                time.sleep(0.5 * (attempt + 1))
                continue
            failure = storage_failure(exc, given)
            if failure is not None:
                raise failure from exc
            raise StorageError(
                f"cannot open storage {_hide_password(given)}: {_first_line(exc)}; check the "
                "URL, that the server is running and that the database exists"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def existing_storage(url: str) -> str:
    """`url` unchanged, checked for a command that reads a study: a SQLite file that does
    not exist is refused (opening it would create an empty database).

    Raises:
        StorageError: the URL names a SQLite file that does not exist.
    """
    path = _sqlite_path(url) if isinstance(url, str) and "://" in url else None
    if path is not None and not Path(path).expanduser().is_file():
        raise StorageError(f"the study file {path} does not exist; check the path in the storage URL {url} "
                           "(a run's study.db is made by 'lrsearch tune' or 'lrsearch auto')")
    return url


def storage_failure(exc: BaseException, url: str | None = None) -> StorageError | None:
    """The one-line `StorageError` for a database failure met while a study runs (Optuna
    raises `StorageInternalError` around SQLAlchemy's error): a locked SQLite file, a full
    disk, a read-only file, or a server that does not answer, naming the file or host.
    None when `exc` (or its causes) is no such failure.

    Args:
        exc: the error raised by Optuna or SQLAlchemy.
        url: the storage's URL when known; else the SQLite file this process opened last.
    """
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(e) for e in seen).lower()
    for needle, reason in _SQLITE_REASONS:
        if needle in text:
            path = _sqlite_path(url) if url else (_SQLITE_PATHS[-1] if _SQLITE_PATHS else None)
            return StorageError(f"the study file {path or 'of the storage'} {reason}")
    if "timeout expired" in text or "timed out" in text:
        host = _host(url) if url else "the database server"
        return StorageError(f"the database server {host} accepts connections but does not answer "
                            f"(no reply within {_CONNECT_TIMEOUT_S} s); check that it is a database server "
                            "and that it is running")
    return None


def delete_study(storage: str | optuna.storages.BaseStorage, study_name: str) -> int | None:
    """Delete the study `study_name` (and its trials) if the storage holds it.

    Returns:
        How many trials it held, or None when there was no such study.
    """
    opened = open_storage(storage, heartbeat_interval=None)
    for summary in opened.get_all_studies():
        if summary.study_name == study_name:
            count = opened.get_n_trials(summary._study_id)
            optuna.delete_study(study_name=study_name, storage=opened)
            return count
    return None


def study_names(storage: str | optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies a storage holds, oldest first."""
    opened = open_storage(storage, heartbeat_interval=None)
    return [s.study_name for s in opened.get_all_studies()]


def retry_trial(study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue `trial`'s parameters again as Optuna's heartbeat queues a killed trial's: the
    new trial lists it in its `retry_history` system attribute."""
    (callback,) = _retry_callback(None).values()
    callback(study, trial)


def retried(trials: Sequence[optuna.trial.FrozenTrial]) -> set[int]:
    """The numbers of the trials some trial of `trials` retries (its `retry_history`)."""
    return {int(n) for t in trials for n in (t.system_attrs.get("retry_history") or ())}


def _retry_callback(max_retry: int | None) -> dict[str, Any]:
    storages = optuna.storages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
            cb = storages.RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry, inherit_intermediate_values=False
            )
            return {"heartbeat_stale_trial_callback": cb}
        cb = storages.RetryFailedTrialCallback(max_retry=max_retry)
        return {"failed_trial_callback": cb}


def _with_installed_driver(url: str, scheme: str) -> str:
    """`postgresql://` with the driver that is installed.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which lrsearch depends on,
    so the URL a user copies works in lrsearch, `optuna.load_study` and optuna-dashboard
    alike. Where only psycopg2 is importable (an older environment), a bare URL is pointed
    at it; `postgresql+psycopg2://` URLs are kept as written.
    """
    if scheme not in ("postgresql", "postgres") or "+" in url.split("://", 1)[0]:
        return url
    if importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in write-ahead-log mode: readers do not block the writer (several workers
    on one machine) and a commit costs about half as much (a trial commits each epoch).
    WAL needs a local disk, as SQLite shared by several processes always does."""
    import sqlalchemy

    path = storage.url.split("://", 1)[1].lstrip("/")
    if not path or path.startswith(":memory:") or "mode=memory" in path:
        return

    def pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened while creating the tables lack them


def _sqlite_path(url: str) -> str | None:
    """The file of a `sqlite://` URL (None for an in-memory database or another kind)."""
    if not url.lower().startswith("sqlite"):
        return None
    path = url.split("://", 1)[1]
    if path.startswith("/"):
        path = path[1:]  # sqlite:///relative.db -> relative.db, sqlite:////abs -> /abs
    if not path or path.startswith(":memory:") or path.startswith("file:"):
        return None
    return path.split("?", 1)[0]


def _host(url: str) -> str:
    """`host:port` of a server URL."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0] or "localhost"


def _make_sqlite_parent(url: str) -> str | None:
    """Make the folder of a SQLite URL's file; returns the file (None: in memory)."""
    path = _sqlite_path(url)
    if path is None:
        return None
    parent = Path(path).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder {parent} for {url}: {exc.strerror}") from exc
    return str(Path(path).expanduser())


def _is_transient(exc: Exception) -> bool:
    text = str(exc).lower()
    # a locked SQLite file was already waited for (_SQLITE_TIMEOUT_S)
    return any(s in text for s in ("already exists", "duplicate key"))


def _first_line(exc: BaseException) -> str:
    line = first_line(exc)
    for prefix in ("(psycopg.OperationalError) ", "(psycopg2.OperationalError) "):
        line = line.removeprefix(prefix)
    return line.strip()


def _hide_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
