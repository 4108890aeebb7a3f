"""A report folder is replaced whole or not at all, only if hwsim wrote it, and never written where it
should not be (the folder rules in detail: test_folder.py)."""
import errno
import json
import os
from pathlib import Path

import pytest

from hwsim.report import folder, plots
from hwsim.report.write import MARKER, check_output, render, write_report
from quant.errors import ConfigError


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rewrite_replaces_the_report(lenet_summary, tmp_path):
    out = tmp_path / "lenet"
    write_report(lenet_summary, out)
    changed = {**lenet_summary, "report": {**lenet_summary["report"], "command": "second run"}}
    written = write_report(changed, out)
    assert out / "report.html" in written and out / MARKER in written
    assert json.loads((out / "summary.json").read_text())["report"]["command"] == "second run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet"]  # no temporary folders left


def test_rewrite_keeps_files_the_user_added(lenet_summary, tmp_path):
    out = tmp_path / "lenet"
    write_report(lenet_summary, out)
    (out / "notes.txt").write_text("my notes on this run")
    before = _snapshot(out)
    with pytest.raises(ConfigError, match=r"notes\.txt, which hwsim did not write"):
        write_report(lenet_summary, out)
    assert _snapshot(out) == before


def test_a_summary_json_does_not_make_a_folder_a_report(lenet_summary, tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not an hwsim report"):
        write_report(lenet_summary, out)
    assert _snapshot(out) == {Path("summary.json"): b"{}", Path("thesis.tex"): b"precious"}


def test_disk_full_keeps_the_old_report(lenet_summary, tmp_path, monkeypatch):
    out = tmp_path / "lenet"
    write_report(lenet_summary, out)
    before = _snapshot(out)
    real = folder._write_file

    def full(path, data):
        if path.name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)
    monkeypatch.setattr(folder, "_write_file", full)
    with pytest.raises(ConfigError, match=r"\(No space left on device\); the previous report is unchanged"):
        write_report(lenet_summary, out)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet"]


def test_a_model_file_name_that_is_not_utf8(lenet_summary):
    """Linux file names are bytes: Python keeps undecodable ones as lone surrogates, which must not
    crash the writer after minutes of measuring."""
    summary = {**lenet_summary, "model": {**lenet_summary["model"], "file": "models/l\udcffnet.onnx"}}
    files = render(summary)
    assert "models/l\\udcffnet.onnx" in files["report.md"].decode() and b"l\\udcffnet" in files["summary.json"]
    assert "models/l\\udcffnet.onnx" in files["report.html"].decode()


def test_failure_midway_keeps_the_old_report(lenet_summary, tmp_path, monkeypatch):
    out = tmp_path / "lenet"
    write_report(lenet_summary, out)
    before = _snapshot(out)

    def broken(summary):
        raise RuntimeError("plot failed")
    monkeypatch.setitem(plots.FIGURES, "roofline", broken)
    with pytest.raises(RuntimeError):
        write_report(lenet_summary, out)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet"]


def test_refuses_bad_output_paths(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_output(tmp_path / "file")
    with pytest.raises(ConfigError, match="cannot write there"):
        check_output(tmp_path / "file" / "report")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not an hwsim report"):
        check_output(tmp_path / "mine")
    check_output(tmp_path / "new" / "deeper")  # missing parents are created
    assert (tmp_path / "new").is_dir() and not (tmp_path / "new" / "deeper").exists()
