"""Atomic writes: the new file appears whole or not at all; a failed write keeps the old one."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from lrsearch.core.errors import ConfigError
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
    with pytest.raises(ConfigError) as info:
        write_csv(_BrokenFrame(), path)
    assert str(info.value) == f"cannot write {path} (No space left on device); free space on the disk or pass another path"
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
    with pytest.raises(ConfigError, match=r"cannot write .*range_test.csv \(disk full\)"):
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


# --------------------------------------------------------------------------- file modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_of_a_plain_open(tmp_path, umask, mode):
    """The temporary file's 0600 does not survive the rename: a new file has 0666 less the umask."""
    old = os.umask(umask)
    try:
        write_text(tmp_path / "schedule.json", "{}\n")
        write_csv(pd.DataFrame({"lr": [1e-3]}), tmp_path / "curve.csv")
        with open(tmp_path / "plain.txt", "w"):
            pass
    finally:
        os.umask(old)
    assert oct((tmp_path / "plain.txt").stat().st_mode & 0o777) == oct(mode)
    assert oct((tmp_path / "schedule.json").stat().st_mode & 0o777) == oct(mode)
    assert oct((tmp_path / "curve.csv").stat().st_mode & 0o777) == oct(mode)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "schedule.json"
    path.write_text("{}\n")
    path.chmod(0o640)
    old = os.umask(umask)
    try:
        write_text(path, '{"lr": 0.1}\n')
    finally:
        os.umask(old)
    assert path.read_text() == '{"lr": 0.1}\n'
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)


# --------------------------------------------------------------------------- tables


def test_write_table_round_trips_numpy_scalars_beside_the_csv(tmp_path):
    import numpy as np

    from lrsearch.core.fileio import meta_path, read_table, write_table

    frame = pd.DataFrame({"lr": [1e-3, 1e-2], "loss": [2.5, 1.5]})
    path = write_table(tmp_path / "sweep_momentum.csv", frame,
                       {"best": np.float32(0.5), "steps": np.int64(71), "values": [0.9, 0.85]})
    assert meta_path(path) == tmp_path / "sweep_momentum.meta.json"
    assert sorted(os.listdir(tmp_path)) == ["sweep_momentum.csv", "sweep_momentum.meta.json"]
    back, meta = read_table(path, pd.read_csv)
    assert back.to_dict("list") == {"lr": [1e-3, 1e-2], "loss": [2.5, 1.5]}
    assert meta == {"best": 0.5, "steps": 71, "values": [0.9, 0.85]}


def test_write_table_refuses_unserializable_meta_before_writing(tmp_path):
    from lrsearch.core.fileio import write_table

    with pytest.raises(TypeError, match="not JSON serializable: object"):
        write_table(tmp_path / "t.csv", pd.DataFrame({"lr": [1.0]}), {"x": object()})
    assert os.listdir(tmp_path) == []


def test_read_table_without_meta_and_with_broken_meta(tmp_path):
    from lrsearch.core.errors import DataError
    from lrsearch.core.fileio import read_table

    (tmp_path / "t.csv").write_text("lr,loss\n0.001,2.0\n")
    frame, meta = read_table(tmp_path / "t.csv", pd.read_csv)
    assert meta == {} and frame["loss"].tolist() == [2.0]
    (tmp_path / "t.meta.json").write_text('{"half": ')
    with pytest.raises(DataError, match=r"t\.meta\.json is not JSON .*; delete it or save again"):
        read_table(tmp_path / "t.csv", pd.read_csv)
    (tmp_path / "t.meta.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"holds a JSON list, not an object; delete it or save again"):
        read_table(tmp_path / "t.csv", pd.read_csv)


def test_files_written_before_the_shared_writer_still_load(tmp_path):
    """A range test and a sweep as the 0.1 layout wrote them (same names, same keys)."""
    from lrsearch.rangetest.result import RangeTestResult
    from lrsearch.rangetest.sweeps import SweepResult

    (tmp_path / "range_test.csv").write_text("step,lr,loss,smooth_loss\n0,1e-06,2.3,2.3\n1,1e-05,2.2,2.25\n")
    (tmp_path / "range_test.meta.json").write_text(
        '{"format": "lrsearch.range_test", "version": 1, "smooth": 0.98, "diverge": 4.0, '
        '"optimizer": "SGD", "stopped": "diverged", "suggestion": null, "suggestion_error": "short"}\n')
    rt = RangeTestResult.load(tmp_path / "range_test.csv")
    assert rt.meta == {"smooth": 0.98, "diverge": 4.0, "optimizer": "SGD", "stopped": "diverged"}
    assert rt.frame["loss"].tolist() == [2.3, 2.2]
    (tmp_path / "sweep_momentum.csv").write_text("value,step,lr,loss,smooth_loss\n0.9,0,1e-3,2.0,2.0\n"
                                                 "0.85,0,1e-3,1.9,1.9\n")
    (tmp_path / "sweep_momentum.meta.json").write_text(
        '{"format": "lrsearch.sweep", "version": 1, "param": "momentum", "values": [0.9, 0.85], '
        '"tolerance": 0.1, "max_candidates": 2, "tests": [{"stopped": "completed"}, {"stopped": "nan"}], '
        '"best": 0.85, "candidates": [0.85, 0.9]}\n')
    sw = SweepResult.load(tmp_path / "sweep_momentum.csv")
    assert (sw.param, sw.values, sw.tolerance, sw.max_candidates) == ("momentum", (0.9, 0.85), 0.1, 2)
    assert [r.stopped for r in sw.results.values()] == ["completed", "nan"]


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    """A real full file system (a 64 KiB tmpfs, which needs root to mount)."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    try:
        with pytest.raises(ConfigError) as info:
            write_text(disk / "big.txt", "x" * 1_000_000)
        assert str(info.value).startswith(f"cannot write {disk / 'big.txt'} (No space left on device)")
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_read_only_folder_is_one_line_naming_the_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("chmod does not stop root from writing")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="cannot write .*ro/s.json .*pass a path you can write to"):
            write_text(folder / "s.json", "{}")
    finally:
        folder.chmod(0o755)
