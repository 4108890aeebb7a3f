"""hwsim replaces a folder only if it wrote it, never follows a link, never leaves no report behind
(even when killed between its two renames), and fails on a full disk with one line, the previous
report byte-identical. Small byte files stand in for a report: nothing here depends on speed."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.report import folder
from hwsim.report.folder import MARKER, check_output, publish
from quant.errors import ConfigError

V1 = {"summary.json": b'{"run": 1}\n', "report.md": b"# one\n", "plots/a.png": b"\x89PNG one"}
V2 = {"summary.json": b'{"run": 2}\n', "report.md": b"# two\n", "plots/a.png": b"\x89PNG two",
      "plots/b.png": b"\x89PNG b"}
DEAD_PID = 2**31 - 1  # above any pid_max: no such process


def snapshot(root: Path) -> dict:
    """Every entry under `root`: file bytes, link targets, folders; links are not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = ("link", os.readlink(p)) if p.is_symlink() else ("dir",) if p.is_dir() else p.read_bytes()
    return out


def refused(out: Path, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        check_output(out)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_writes_the_files_and_a_manifest(tmp_path):
    out = tmp_path / "r"
    written = publish(V1, out)
    assert written == sorted(out / rel for rel in [*V1, MARKER])
    assert {rel: data for rel, data in snapshot(out).items() if rel in V1} == V1
    doc = json.loads((out / MARKER).read_text())
    assert doc["complete"] is True and sorted(doc["files"]) == sorted(V1)
    assert doc["files"]["report.md"]["bytes"] == len(V1["report.md"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no build folder left


def test_replaces_its_own_report_whole(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    publish({"summary.json": b"{}"}, out)  # fewer files: the others go too
    assert sorted(snapshot(out)) == [MARKER, "summary.json"]
    publish(V2, out)
    assert {rel: data for rel, data in snapshot(out).items() if rel in V2} == V2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_an_empty_folder_becomes_a_report(tmp_path):
    (tmp_path / "r").mkdir()
    publish(V1, tmp_path / "r")
    assert (tmp_path / "r" / "report.md").read_bytes() == V1["report.md"]


def test_a_summary_json_does_not_make_a_folder_ours(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "thesis.tex").write_text("precious")
    before = snapshot(out)
    refused(out, "not an hwsim report")
    with pytest.raises(ConfigError, match="not an hwsim report"):
        publish(V1, out)
    (out / "thesis.tex").unlink()
    refused(out, "not an hwsim report")  # summary.json alone is not enough either
    (out / "summary.json").unlink()
    (out / "summary.json").symlink_to(tmp_path / "elsewhere.json")
    refused(out, "not an hwsim report")
    assert snapshot(out) == {"summary.json": ("link", str(tmp_path / "elsewhere.json"))}
    assert before["thesis.tex"] == b"precious"


@pytest.mark.parametrize("intrude", ["user_file", "user_folder", "edited", "same_size_edit", "link", "marker_link",
                                     "marker_lists_outside", "incomplete_marker"])
def test_refuses_anything_hwsim_did_not_write(tmp_path, intrude):
    out = tmp_path / "r"
    publish(V1, out)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    marker = json.loads((out / MARKER).read_text())
    if intrude == "user_file":
        (out / "plots" / "notes.txt").write_text("mine")
    elif intrude == "user_folder":
        (out / "drafts").mkdir()
    elif intrude == "edited":
        (out / "report.md").write_text("# one, with my notes\n")
    elif intrude == "same_size_edit":
        (out / "report.md").write_bytes(b"# 1ne\n")
    elif intrude == "link":
        (out / "plots" / "data").symlink_to(tmp_path)
    elif intrude == "marker_link":
        (tmp_path / "marker.json").write_bytes((out / MARKER).read_bytes())
        (out / MARKER).unlink()
        (out / MARKER).symlink_to(tmp_path / "marker.json")
    elif intrude == "marker_lists_outside":
        marker["files"]["../victim.txt"] = {"bytes": 7, "sha256": "0" * 64}
        (out / MARKER).write_text(json.dumps(marker))
    elif intrude == "incomplete_marker":
        (out / MARKER).write_text(json.dumps({**marker, "complete": False}))
    before, around = snapshot(out), snapshot(tmp_path)
    message = refused(out, "refusing to replace it")
    assert "move it away or choose another --out" in message
    with pytest.raises(ConfigError, match="refusing to replace it"):
        publish(V2, out)
    assert snapshot(out) == before and snapshot(tmp_path) == around and victim.read_text() == "keep me"


def test_names_what_is_in_the_way(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    (out / "plots" / "notes.txt").write_text("mine")
    assert "plots/notes.txt, which hwsim did not write" in refused(out, "notes")
    (out / "plots" / "notes.txt").unlink()
    (out / "report.md").write_text("edited")
    assert "report.md, changed since hwsim wrote it" in refused(out, "changed")


def test_an_unreadable_file_is_refused_in_one_line(tmp_path, monkeypatch):
    out = tmp_path / "r"
    publish(V1, out)

    def unreadable(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    monkeypatch.setattr(folder, "_sha256", unreadable)
    assert "cannot read (Permission denied)" in refused(out, "refusing to replace it")
    assert (out / "report.md").read_bytes() == V1["report.md"]


def test_out_a_symbolic_link_is_refused(tmp_path):
    publish(V1, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    before = snapshot(tmp_path)
    refused(tmp_path / "link", "symbolic link")
    with pytest.raises(ConfigError, match="symbolic link"):
        publish(V2, tmp_path / "link")
    assert snapshot(tmp_path) == before


def test_refuses_the_root_home_and_current_folders(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "home" / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    refused(Path("/"), "root folder")
    refused(home, "home folder")
    refused(Path("."), "current folder")
    refused(Path(".."), "home folder")
    refused(Path(str(work) + "/"), "current folder")
    refused(Path("sub/.."), "current folder")
    (work / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (work / "link").symlink_to(tmp_path / "elsewhere")
    assert check_output(Path("link/../r")).path == tmp_path / "r"  # ".." after a link, as the OS reads it
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["elsewhere", "home", "link", "sub", "work"]


def test_a_parent_that_is_a_file(tmp_path):
    (tmp_path / "model.onnx").write_text("x")
    message = refused(tmp_path / "model.onnx" / "deeper" / "r", "cannot write there")
    assert "model.onnx is a file, not a folder" in message


def test_the_folder_holding_the_model_is_refused(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "lenet.onnx").write_bytes(b"onnx")
    refused(tmp_path / "models", "not an hwsim report")
    assert (tmp_path / "models" / "lenet.onnx").read_bytes() == b"onnx"


def _fail_nth_write(monkeypatch, n: int) -> None:
    real, calls = folder._write_file, []

    def write(path, data):
        calls.append(path)
        if len(calls) == n + 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)
    monkeypatch.setattr(folder, "_write_file", write)


@pytest.mark.parametrize("n", range(len(V2) + 2))  # the placeholder marker, each file, the final marker
def test_disk_full_keeps_the_previous_report(tmp_path, monkeypatch, n):
    out = tmp_path / "r"
    publish(V1, out)
    before = snapshot(tmp_path)
    _fail_nth_write(monkeypatch, n)
    with pytest.raises(ConfigError, match="No space left on device") as info:
        publish(V2, out)
    assert "\n" not in str(info.value) and "previous report is unchanged" in str(info.value)
    assert snapshot(tmp_path) == before  # byte-identical, no build folder left


def test_disk_full_making_the_build_folder(tmp_path, monkeypatch):
    out = tmp_path / "r"
    publish(V1, out)
    before = snapshot(tmp_path)
    real, calls = folder.tempfile.mkdtemp, []

    def mkdtemp(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:  # check_output's probe passes, the build folder does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(**kwargs)
    monkeypatch.setattr(folder.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(ConfigError, match="No space left on device"):
        publish(V2, out)
    assert snapshot(tmp_path) == before


def test_disk_full_on_a_first_report_leaves_nothing(tmp_path, monkeypatch):
    _fail_nth_write(monkeypatch, 2)
    with pytest.raises(ConfigError, match=r"\(No space left on device\); nothing was written"):
        publish(V1, tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def _fail_rename(monkeypatch, fails) -> None:
    real = os.rename

    def rename(src, dst):
        if fails(Path(src), Path(dst)):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(src, dst)
    monkeypatch.setattr(os, "rename", rename)


def test_a_failed_rename_puts_the_old_report_back(tmp_path, monkeypatch):
    out = tmp_path / "r"
    publish(V1, out)
    before = snapshot(tmp_path)
    _fail_rename(monkeypatch, lambda src, dst: dst == out and ".tmp-" in src.name)  # the second rename
    with pytest.raises(ConfigError, match=r"could not move the new report into place .*previous report is unchanged"):
        publish(V2, out)
    assert snapshot(tmp_path) == before
    monkeypatch.undo()
    _fail_rename(monkeypatch, lambda src, dst: src == out)  # the first rename
    with pytest.raises(ConfigError, match="Input/output error"):
        publish(V2, out)
    assert snapshot(tmp_path) == before


def test_a_failed_rename_back_says_where_the_report_is(tmp_path, monkeypatch):
    out = tmp_path / "r"
    publish(V1, out)
    _fail_rename(monkeypatch, lambda src, dst: dst == out)  # the new one, and the old one back
    with pytest.raises(ConfigError, match=r"the previous report is in .*\.r\.hwsim-old: the next run puts it back"):
        publish(V2, out)
    monkeypatch.undo()
    check_output(out)
    assert {rel: data for rel, data in snapshot(out).items() if rel in V1} == V1


KILL = """
import os, sys
from pathlib import Path
from hwsim.report import folder
when, out = sys.argv[1], Path(sys.argv[2])
rename, remove = os.rename, folder.remove_listed
def killed_rename(src, dst):
    if when == "between" and Path(dst) == out and ".tmp-" in Path(src).name:
        os._exit(17)  # killed: no except, no finally
    rename(src, dst)
def killed_remove(path, files):
    if when == "after" and path.name.endswith(".hwsim-old"):
        os._exit(17)
    return remove(path, files)
os.rename, folder.remove_listed = killed_rename, killed_remove
folder.publish({"summary.json": b"new"}, out)
"""


def _killed(when: str, out: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILL, when, str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 17, proc.stderr


def test_killed_between_the_renames_the_next_run_puts_the_report_back(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    before = snapshot(out)
    _killed("between", out)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "r" not in names and ".r.hwsim-old" in names  # the old report, kept
    assert any(n.startswith(".r.tmp-") for n in names)  # the complete new one, never moved in
    check_output(out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # the dead run's build folder removed
    _killed("between", out)
    publish(V2, out)  # a write recovers too, then replaces
    assert {rel: data for rel, data in snapshot(out).items() if rel in V2} == V2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_killed_after_the_renames_the_next_run_removes_the_old_report(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    _killed("after", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.hwsim-old", "r"]
    assert (out / "summary.json").read_bytes() == b"new"
    check_output(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"] and (out / "summary.json").read_bytes() == b"new"


def test_a_leftover_old_report_with_user_files_is_not_deleted(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    _killed("after", out)
    (tmp_path / ".r.hwsim-old" / "notes.txt").write_text("mine")
    refused(out, "left from an interrupted run")
    assert (tmp_path / ".r.hwsim-old" / "notes.txt").read_text() == "mine"
    (tmp_path / ".r.hwsim-old" / "notes.txt").unlink()
    (out / "summary.json").write_bytes(b"edited")  # the new one is not what hwsim wrote: keep both
    refused(out, "both it and the previous report")
    assert (tmp_path / ".r.hwsim-old" / "summary.json").read_bytes() == V1["summary.json"]


def test_an_empty_leftover_old_folder_is_removed(tmp_path):
    out = tmp_path / "r"
    publish(V1, out)
    (tmp_path / ".r.hwsim-old").mkdir()
    check_output(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    (tmp_path / ".r.hwsim-old").write_text("a file")
    refused(out, "is in the way")
    assert (tmp_path / ".r.hwsim-old").read_text() == "a file"


def test_only_dead_runs_build_folders_are_removed(tmp_path):
    out = tmp_path / "r"
    dead = tmp_path / f".r.tmp-{DEAD_PID}-abc123"
    dead.mkdir()
    (dead / MARKER).write_bytes(folder._marker(dict.fromkeys(V1), complete=False))
    (dead / "summary.json").write_bytes(b"half")
    (dead / "plots").mkdir()
    empty = tmp_path / f".r.tmp-{DEAD_PID}-probe1"
    empty.mkdir()
    alive = tmp_path / f".r.tmp-{os.getpid()}-xyz"  # a run still writing
    alive.mkdir()
    (alive / MARKER).write_bytes(folder._marker(dict.fromkeys(V1), complete=False))
    unmarked = tmp_path / f".r.tmp-{DEAD_PID}-user"  # not ours: no marker
    unmarked.mkdir()
    (unmarked / "data.csv").write_text("1,2")
    extra = tmp_path / f".r.tmp-{DEAD_PID}-extra"  # ours, with a file we did not list
    extra.mkdir()
    (extra / MARKER).write_bytes(folder._marker(dict.fromkeys(V1), complete=False))
    (extra / "notes.txt").write_text("mine")
    check_output(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, unmarked.name, extra.name])
    assert (unmarked / "data.csv").read_text() == "1,2" and sorted(p.name for p in extra.iterdir()) == ["notes.txt"]
