"""A report folder is replaced whole or not at all, and never written where it should not be."""
import json

import pytest

from hwsim.report import plots
from hwsim.report.write import check_output, write_report
from quant.errors import ConfigError


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rewrite_replaces_the_report(lenet_summary, tmp_path):
    out = tmp_path / "lenet"
    write_report(lenet_summary, out)
    (out / "stale.txt").write_text("from an older run")
    changed = {**lenet_summary, "report": {**lenet_summary["report"], "command": "second run"}}
    written = write_report(changed, out)
    assert not (out / "stale.txt").exists() and out / "report.html" in written
    assert json.loads((out / "summary.json").read_text())["report"]["command"] == "second run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet"]  # no temporary folders left


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
