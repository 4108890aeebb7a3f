"""The CLI in-process: JSON documents, tables, and one-line errors with exit 2 for bad input."""
import json
import os
import shutil

import numpy as np

from hwsim.cli import main
from tests.conftest import LENET, write_model


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hwsim: error: ") and match in lines[0], err


def test_summary_json(capsys):
    code, out, _ = run(capsys, "summary", str(LENET), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["total_params"] == 61706 and doc["total_macs"] == 416520
    assert {"name", "op", "output_shape", "params", "macs"} <= set(doc["layers"][1])


def test_summary_table(capsys):
    code, out, _ = run(capsys, "summary", str(LENET))
    assert code == 0 and "61,706" in out and "Conv+relu" in out and "MaxPool" in out


def test_quantize_json_and_outputs(capsys, tmp_path, fashion_test):
    model = tmp_path / "lenet.onnx"
    shutil.copy(LENET, model)
    code, out, _ = run(capsys, "quantize", str(model), "--images", "500", "--json", "--qdq", str(tmp_path / "q.onnx"))
    doc = json.loads(out)
    assert code == 0 and doc["images"] == 500
    assert 0.8 < doc["float_top1"] <= 1 and 0.8 < doc["int8_top1"] <= 1
    assert doc["ort_basic"]["top1_agreement"] >= 0.99
    assert (tmp_path / "lenet.int8.npz").is_file() and (tmp_path / "q.onnx").is_file()


def test_quantize_table(capsys, tmp_path, fashion_test):
    code, out, _ = run(capsys, "quantize", str(LENET), "--images", "300", "--no-ort", "--out", str(tmp_path / "q.npz"))
    assert code == 0 and "int8 top-1 (integer-only)" in out and "drop" in out


def test_missing_file(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "summary", str(tmp_path / "none.onnx"))[::2], "no such file")


def test_non_onnx_and_truncated(capsys, tmp_path):
    (tmp_path / "a.onnx").write_text("hello")
    assert_one_line_error(*run(capsys, "summary", str(tmp_path / "a.onnx"))[::2], "ONNX")
    (tmp_path / "b.onnx").write_bytes(LENET.read_bytes()[:5000])
    code, _, err = run(capsys, "quantize", str(tmp_path / "b.onnx"), "--out", str(tmp_path / "b.npz"))
    assert_one_line_error(code, err, "b.onnx")
    assert not (tmp_path / "b.npz").exists()


def test_unsupported_op_names_node(capsys, tmp_path):
    path = write_model(tmp_path / "m.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,1,28,28] x) => (float[1,1,28,28] y) { y = Elu(x) }""")
    code, _, err = run(capsys, "summary", str(path))
    assert_one_line_error(code, err, "Elu")


def test_dynamic_spatial_dims(capsys, tmp_path):
    path = write_model(tmp_path / "m.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[N,1,H,W] x) => (float[N,1,H,W] y) { y = Relu(x) }""")
    assert_one_line_error(*run(capsys, "quantize", str(path))[::2], "dynamic")


def test_calibration_data_of_wrong_shape(capsys, tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 3, 28, 28), np.float32))
    out = tmp_path / "q.npz"
    code, _, err = run(capsys, "quantize", str(LENET), "--calib-data", str(tmp_path / "c.npy"), "--out", str(out))
    assert_one_line_error(code, err, "(4, 3, 28, 28)")
    assert not out.exists()


def test_missing_dataset_dir_and_bad_output(capsys, tmp_path):
    out = str(tmp_path / "q.npz")
    code, _, err = run(capsys, "quantize", str(LENET), "--data", str(tmp_path / "nowhere"), "--out", out)
    assert_one_line_error(code, err, "nowhere")
    code, _, err = run(capsys, "quantize", str(LENET), "--out", str(tmp_path / "no" / "dir" / "q.npz"))
    assert_one_line_error(code, err, "does not exist")


def test_unwritable_output_folder(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            target = tmp_path / "file.txt"
            target.write_text("x")
            out = target / "q.npz"
        else:
            out = locked / "q.npz"
        code, _, err = run(capsys, "quantize", str(LENET), "--no-eval", "--out", str(out))
        assert code == 2 and err.startswith("hwsim: error: ") and err.count("\n") == 1
    finally:
        locked.chmod(0o700)


def test_bad_std(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "quantize", str(LENET), "--std", "0", "--out", str(tmp_path / "q.npz"))[::2],
                          "--std")


def test_console_script_exits_2(tmp_path):
    import subprocess
    proc = subprocess.run(["hwsim", "summary", str(tmp_path / "x.onnx")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
