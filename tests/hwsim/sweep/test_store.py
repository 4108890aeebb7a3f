"""The sweep folder under hostile conditions: a full disk while files are written, a sweep.json
left empty or garbled by an earlier crash, an unreadable tables.json, files that are not ours."""
import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest

import hwsim.sweep.store as store_module
from hwsim.sweep.store import ResultStore, write_atomic
from quant.errors import ConfigError
from tests.conftest import LENET, ROOT
from tests.hwsim.test_cli import assert_one_line_error, run

COLUMNS = ("point", "value")
SIGNATURE = {"model": "m", "space": [1, 2]}


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_the_folder_is_created_leaves_no_sweep_json(tmp_path, monkeypatch):
    """sweep.json was written in place: a full disk left it empty, and every later run crashed on it."""
    monkeypatch.setattr(store_module.os, "fsync", enospc)
    with pytest.raises(ConfigError, match=r"sweep.json: cannot write \(No space left on device\); free some space"):
        ResultStore(tmp_path / "s", SIGNATURE, COLUMNS).open()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [".lock"]  # no sweep.json, no temporary file
    monkeypatch.undo()
    store = ResultStore(tmp_path / "s", SIGNATURE, COLUMNS)
    assert store.open() == {}
    store.close()
    assert json.loads((tmp_path / "s" / "sweep.json").read_text()) == SIGNATURE


@pytest.mark.parametrize("damage", [b"", b'{"model": "m", "spa', b"\xff\xfe", b"[1, 2]"])
def test_damaged_sweep_json_without_rows_is_rewritten(tmp_path, damage):
    """What an older version left after ENOSPC: an empty sweep.json, and results.csv with at most a header."""
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.json").write_bytes(damage)
    (folder / "results.csv").write_text("point,value\r\n")
    store = ResultStore(folder, SIGNATURE, COLUMNS)
    assert store.open() == {}
    store.append([{"point": "a", "value": 1.5}])
    store.close()
    assert json.loads((folder / "sweep.json").read_text()) == SIGNATURE
    assert store.rows() == [{"point": "a", "value": 1.5}]


def test_damaged_sweep_json_with_rows_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.json").write_bytes(b"")
    (folder / "results.csv").write_bytes(b"point,value\r\na,1.5\r\n")
    with pytest.raises(ConfigError, match=r"sweep.json is damaged .* use another --out, or delete the folder"):
        ResultStore(folder, SIGNATURE, COLUMNS).open()
    assert (folder / "results.csv").read_bytes() == b"point,value\r\na,1.5\r\n"  # nothing deleted


class FullDiskFile:
    """A results file on a disk that fills up after `room` more bytes: the write lands partly, then ENOSPC."""

    def __init__(self, real, room):
        self.real, self.room = real, room

    def write(self, data):
        if len(data) > self.room:
            self.real.write(bytes(data[:self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_full_disk_while_appending_keeps_whole_rows_only(tmp_path):
    store = ResultStore(tmp_path, SIGNATURE, COLUMNS)
    store.open()
    store.append([{"point": "a", "value": 1}])
    store._file = FullDiskFile(store._file, room=4)
    with pytest.raises(ConfigError, match=r"results.csv: cannot write \(No space left on device\)"):
        store.append([{"point": "b", "value": 2}, {"point": "c", "value": 3}])
    store._file = store._file.real
    store.close()
    assert (tmp_path / "results.csv").read_bytes() == b"point,value\r\na,1\r\n"  # the partial write was cut back
    again = ResultStore(tmp_path, SIGNATURE, COLUMNS)
    assert again.open() == {"a": {"point": "a", "value": 1}}
    again.close()


def test_write_atomic_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "pareto.csv"
    path.write_bytes(b"old")
    monkeypatch.setattr(store_module.os, "replace", enospc)
    with pytest.raises(ConfigError, match=r"pareto\.csv: cannot write"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["pareto.csv"]


def test_files_that_are_not_ours_are_not_written_over(capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "pareto.png").write_bytes(b"my plot")
    code, _, err = run(capsys, "sweep", str(LENET), "--axis", "array=4x4", "--out", str(out), "--workers", "1")
    assert_one_line_error(code, err, "pareto.png exists without sweep.json")
    assert (out / "pareto.png").read_bytes() == b"my plot"


def test_unreadable_tables_json_is_recomputed(capsys, tmp_path):
    out = tmp_path / "s"
    args = ("sweep", str(LENET), "--axis", "array=4x4,8x8", "--out", str(out), "--workers", "1")
    assert run(capsys, *args)[0] == 0
    rows = (out / "results.csv").read_text()
    (out / "results.csv").write_text(rows.split("\n", 1)[0] + "\n")  # recompute every point
    (out / "tables.json").write_text('{"accuracy": ')
    code, stdout, err = run(capsys, *args)
    assert code == 0 and "2 evaluated now" in stdout, err
    assert sorted((out / "results.csv").read_text().splitlines()) == sorted(rows.splitlines())


def _limit_file_size(max_bytes):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return limit


def test_a_real_write_failure_mid_sweep_is_one_line_and_resumes(tmp_path):
    """The kernel refuses writes past 20 KB (RLIMIT_FSIZE, as a full disk would past its free space):
    one error line, exit 2, whole rows kept; the rerun completes the same rows as an untroubled run."""
    space = tmp_path / "space.toml"
    space.write_text('[space]\narray = ["2x2", "4x4", "8x8", "16x16"]\ndataflow = ["os", "ws", "is"]\n'
                     'sram_kib = [4, 8, 16, 32, 64]\nbatch = [1, 2, 4, 8]\n[accuracy]\nimages = 0\n')  # 240 points
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "hwsim.cli", "sweep", str(LENET), "--space", str(space), "--workers", "1",
           "--chunk", "10", "--json", "--out"]
    full = subprocess.run([*cmd, str(tmp_path / "full")], env=env, cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=_limit_file_size(20_000), timeout=300)
    assert full.returncode == 2 and full.stderr.count("\n") == 1 and "Traceback" not in full.stderr, full.stderr
    assert "results.csv: cannot write (File too large)" in full.stderr
    kept = (tmp_path / "full" / "results.csv").read_bytes()
    assert kept.endswith(b"\r\n") and 0 < kept.count(b"\n") - 1 < 240
    subprocess.run([*cmd, str(tmp_path / "full")], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    subprocess.run([*cmd, str(tmp_path / "whole")], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    lines = {name: sorted((tmp_path / name / "results.csv").read_text().splitlines()) for name in ("full", "whole")}
    assert lines["full"] == lines["whole"] and len(lines["whole"]) == 241
