"""Atomic writes: the new file appears whole or not at all; a failed write keeps the old one."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from lrsearch.core.fileio import atomic_write, write_csv, write_text


class _BrokenFrame:
    """A frame whose CSV export writes half a line, then fails (as a kill or full disk would)."""

    def to_csv(self, path, index=False):
        with open(path, "w") as f:
            f.write("lr,loss\n1e-3,0.")
        raise OSError(28, "No space left on device")


def test_write_csv_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "curve.csv"
    write_csv(pd.DataFrame({"lr": [1e-3, 1e-2], "loss": [2.5, 1.5]}), path)
    write_csv(pd.DataFrame({"lr": [1e-4], "loss": [3.0]}), path)
    assert path.read_text() == "lr,loss\n0.0001,3.0\n"
    assert os.listdir(tmp_path) == ["curve.csv"]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "trials.csv"
    write_text(path, "number,value\n0,0.5\n")
    with pytest.raises(OSError, match="No space left"):
        write_csv(_BrokenFrame(), path)
    assert path.read_text() == "number,value\n0,0.5\n"
    assert os.listdir(tmp_path) == ["trials.csv"]


def test_interrupt_during_write_keeps_old_file(tmp_path):
    path = tmp_path / "s.json"
    write_text(path, "{}\n")

    def interrupted(tmp):
        tmp.write_text('{"half": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "{}\n"
    assert os.listdir(tmp_path) == ["s.json"]


def test_range_test_save_keeps_old_curve(tmp_path, monkeypatch):
    """A range test's save keeps the old curve when the CSV write fails midway."""
    from lrsearch.rangetest.curve import smooth_loss
    from lrsearch.rangetest.result import RangeTestResult

    lrs = [10 ** (-6 + 5 * i / 39) for i in range(40)]
    loss = [2.0 - 0.02 * i for i in range(40)]
    frame = pd.DataFrame({"step": range(40), "lr": lrs, "loss": loss,
                          "smooth_loss": smooth_loss(loss)})
    path = RangeTestResult(frame=frame, meta={}).save(tmp_path / "range_test.csv")
    before = path.read_text()
    assert sorted(os.listdir(tmp_path)) == ["range_test.csv", "range_test.meta.json"]

    def fail(self, tmp, index=False):
        with open(tmp, "w") as f:
            f.write("step,lr,loss\n0,1e-6,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        RangeTestResult(frame=frame.iloc[:20], meta={}).save(path)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["range_test.csv", "range_test.meta.json"]


# --------------------------------------------------------------------------- output folders


def test_writable_folder_refuses_files_and_paths_under_files(tmp_path):
    from lrsearch.core.errors import ConfigError
    from lrsearch.core.fileio import writable_folder

    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder; pass a folder path"):
        writable_folder(tmp_path / "f")
    with pytest.raises(ConfigError, match="lies under the file"):
        writable_folder(tmp_path / "f" / "run")
    with pytest.raises(ConfigError, match="has a name too long for the file system"):
        writable_folder(tmp_path / ("x" * 300))
    assert writable_folder(tmp_path / "a" / "b").is_dir()
    assert os.listdir(tmp_path / "a" / "b") == []  # the write check leaves nothing


def test_writable_folder_refuses_a_read_only_folder(tmp_path):
    from lrsearch.core.errors import ConfigError
    from lrsearch.core.fileio import writable_folder

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"cannot write in output folder .* \(Permission denied\); pass a folder"):
            writable_folder(folder)
    finally:
        folder.chmod(0o700)


def test_writable_folder_refuses_a_read_only_file_system(tmp_path, monkeypatch):
    """As root (where permissions do not stop a write), the refusal of the file system."""
    import errno
    import tempfile

    from lrsearch.core.errors import ConfigError
    from lrsearch.core.fileio import writable_folder

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError, match=r"\(Read-only file system\); pass a folder you can write to"):
        writable_folder(tmp_path)


def test_atomic_write_refuses_a_folder_and_leaves_no_temp(tmp_path):
    from lrsearch.core.errors import ConfigError

    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="is a folder; pass the path of a file"):
        write_text(tmp_path / "out", "{}")
    assert os.listdir(tmp_path / "out") == [] and os.listdir(tmp_path) == ["out"]
