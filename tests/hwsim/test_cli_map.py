"""`hwsim map` in-process: table, JSON, CSV, the cycle engine, and one-line errors for bad input."""
import csv
import io
import json

import pytest

from tests.conftest import LENET
from tests.hwsim.test_cli import assert_one_line_error, run


def test_default_table_has_what_a_hardware_person_expects(capsys):
    code, out, err = run(capsys, "map", str(LENET))
    assert code == 0 and not err
    for text in ("8x8 OS array (edge8)", "M", "K", "N", "folds", "total cyc", "util", "SRAM rd", "DRAM wr",
                 "latency", "node_conv2d", "vector", "total", "416,520 MACs"):
        assert text in out, text


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_json_document(capsys, df):
    code, out, _ = run(capsys, "map", str(LENET), "--array", "16x8", "--dataflow", df, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["config"]["rows"] == 16 and doc["config"]["cols"] == 8 and doc["config"]["dataflow"] == df
    assert doc["total_macs"] == 416520 and doc["total_cycles"] == sum(x["total_cycles"] for x in doc["layers"])
    conv = doc["layers"][0]
    assert (conv["m"], conv["k"], conv["n"]) == (784, 25, 6) and conv["macs"] == 784 * 25 * 6
    assert doc["latency_s"] == pytest.approx(doc["total_cycles"] / 100e6)


def test_csv_and_batch(capsys):
    code, out, _ = run(capsys, "map", str(LENET), "--csv", "--batch", "4")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["name"] == "node_conv2d" and int(rows[0]["m"]) == 4 * 784
    assert sum(int(r["macs"]) for r in rows) == 4 * 416520


def test_config_file_and_timing_scalesim(capsys, tmp_path):
    (tmp_path / "acc.toml").write_text('preset = "mid16"\ndataflow = "ws"\n')
    code, out, _ = run(capsys, "map", str(LENET), "--config", str(tmp_path / "acc.toml"), "--timing", "scalesim",
                       "--json")
    doc = json.loads(out)
    assert code == 0 and doc["config"]["name"] == "mid16" and doc["timing"] == "scalesim"
    # WS on 16x16: K=25 -> 2 row folds, N=6 -> 1 col fold; each pays M + 2R + C - 2; minus 1 (last cycle index)
    assert doc["layers"][0]["compute_cycles"] == 2 * (784 + 2 * 16 + 16 - 2) - 1


def test_cycle_engine_is_bit_exact(capsys, fashion_test):
    code, out, _ = run(capsys, "map", str(LENET), "--engine", "cycle", "--batch", "2", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["engine"] == "cycle" and doc["bit_exact"] is True and doc["batch"] == 2


def test_quantized_npz_model(capsys, tmp_path):
    out = tmp_path / "q.npz"
    assert run(capsys, "quantize", str(LENET), "--no-eval", "--out", str(out))[0] == 0
    code, text, _ = run(capsys, "map", str(out), "--engine", "cycle")
    assert code == 0 and "bit-exact" in text


@pytest.mark.parametrize("argv, match", [
    (["--array", "0x8"], "positive"), (["--array=-4x4"], "positive"), (["--dataflow", "rs"], "unknown dataflow"),
    (["--sram", "1,64,64"], "cannot fit one OS fold"), (["--batch", "0"], "--batch"), (["--freq", "0"], "clock_mhz"),
    (["--dram-bw", "-1"], "dram_bytes_per_cycle"), (["--preset", "huge"], "unknown preset"),
    (["--engine", "cycle", "--timing", "scalesim"], "analytical only"),
    (["--engine", "cycle", "--acc-bits", "18"], "accumulator overflow at output channel"),
])
def test_bad_input_is_one_line(capsys, argv, match):
    assert_one_line_error(*run(capsys, "map", str(LENET), *argv)[::2], match)


def test_missing_model_and_config(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "map", str(tmp_path / "none.onnx"))[::2], "no such file")
    assert_one_line_error(*run(capsys, "map", str(tmp_path / "none.npz"))[::2], "no such file")
    assert_one_line_error(*run(capsys, "map", str(LENET), "--config", str(tmp_path / "x.toml"))[::2], "not found")
