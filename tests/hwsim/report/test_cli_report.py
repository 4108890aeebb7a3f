"""`hwsim report` from the command line: a full run, a model without a labelled test set,
headless Chromium on the HTML, and one-line errors for bad input."""
import gzip
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import LENET
from tests.helpers import rgb_model
from tests.hwsim.test_cli import assert_one_line_error, run


def test_cli_writes_the_report(capsys, tmp_path, fashion_test):
    out = tmp_path / "r"
    code, stdout, err = run(capsys, "report", str(LENET), "--out", str(out), "--images", "300", "--array", "16x16")
    assert code == 0, err
    assert "int8" in stdout and f"wrote {out / 'report.html'}" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["rows"] == 16 and summary["accuracy"]["images"] == 300
    assert summary["report"]["command"].startswith("hwsim report ") and "16x16" in summary["report"]["command"]
    assert "float vs int8: 300 images" in err  # progress lines on stderr when not on a terminal


def test_model_without_a_labelled_test_set(capsys, tmp_path):
    model, calib = rgb_model(tmp_path)
    out = tmp_path / "r"
    code, _, err = run(capsys, "report", str(model), "--out", str(out), "--calib-data", str(calib))
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] is None and "accuracy not measured" in summary["data"]["note"]
    assert all(r["sqnr_db"] is not None for r in summary["layers"])
    assert not (out / "plots" / "confusion.png").exists() and (out / "plots" / "sqnr.png").exists()


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: apt-get install chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def test_html_renders_in_headless_chromium(lenet_report, tmp_path):
    import matplotlib.image as mpimg
    chromium = _chromium()
    shot = tmp_path / "report.png"
    page = (lenet_report / "report.html").as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    proc = subprocess.run([chromium, *flags, "--window-size=1280,2400", f"--screenshot={shot}", page],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console_errors == []
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page: text, tables and plots drawn
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and dom.stdout.count("<img") == 6 and dom.stdout.count("<table>") >= 6


def _idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_bad_inputs_one_line_errors(capsys, tmp_path):
    code, _, err = run(capsys, "report", str(LENET), "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a"))
    assert_one_line_error(code, err, "no such dataset folder")

    small = tmp_path / "cifar_like"
    small.mkdir()
    _idx(small / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32)))
    _idx(small / "t10k-labels-idx1-ubyte.gz", np.arange(20) % 10)
    code, _, err = run(capsys, "report", str(LENET), "--data", str(small), "--out", str(tmp_path / "b"))
    assert_one_line_error(code, err, "test images are 32x32")

    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "report", str(LENET), "--out", str(tmp_path / "file" / "r"))
    assert_one_line_error(code, err, "cannot write there")
    code, _, err = run(capsys, "report", str(LENET), "--images", "0", "--out", str(tmp_path / "c"))
    assert_one_line_error(code, err, "--images 0")
    code, _, err = run(capsys, "report", str(tmp_path / "lenet.int8.npz"), "--out", str(tmp_path / "d"))
    assert_one_line_error(code, err, "float ONNX model")
    code, _, err = run(capsys, "report", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "e"))
    assert_one_line_error(code, err, "missing.onnx")
    code, _, err = run(capsys, "report", str(LENET), "--array", "0x8", "--out", str(tmp_path / "f"))
    assert_one_line_error(code, err, "array")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar_like", "file"]  # nothing half-written


def test_out_that_is_not_an_hwsim_report_one_line_errors(capsys, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("{}")
    (mine / "thesis.tex").write_text("precious")
    (tmp_path / "link").symlink_to(mine)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    for out, match in ((mine, "not an hwsim report"), (tmp_path / "link", "symbolic link"), (".", "current folder"),
                       ("/", "root folder")):
        code, _, err = run(capsys, "report", str(LENET), "--out", str(out))
        assert_one_line_error(code, err, match)
    assert sorted(p.name for p in mine.iterdir()) == ["summary.json", "thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "link", "mine"]


def test_rtl_section(capsys, tmp_path, fashion_test):
    from tests.hwsim.report.test_document import numbers_not_in_summary
    out = tmp_path / "r"
    code, stdout, err = run(capsys, "report", str(LENET), "--out", str(out), "--images", "200", "--rtl", "1",
                            "--rtl-simulator", "icarus")
    assert code == 0, err
    assert "RTL on 1 images (icarus): bit-exact, GEMM compute cycles exact" in stdout
    summary = json.loads((out / "summary.json").read_text())
    rtl = summary["rtl"]
    assert rtl["bit_exact"] and rtl["cycle_exact"] and rtl["images"] == 1
    # the RTL engine runs each GEMM layer as the mapper's chunks: its cycles are the layer's compute
    # cycles in the report's own accelerator table
    assert [layer["rtl_cycles"] for layer in rtl["layers"]] == [layer["hwsim_cycles"] for layer in rtl["layers"]]
    compute = {layer["name"]: layer["compute_cycles"] for layer in summary["layers"]}
    assert [layer["hwsim_cycles"] for layer in rtl["layers"]] == [compute[layer["name"]] for layer in rtl["layers"]]
    md = (out / "report.md").read_text()
    assert "## RTL check" in md and numbers_not_in_summary(md, summary) == []
