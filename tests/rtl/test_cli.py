"""`hwsim rtl generate | sim | synth` in-process: files, JSON documents, one-line errors."""
import json

from tests.conftest import LENET
from tests.hwsim.test_cli import assert_one_line_error, run


def test_generate_writes_the_array_requant_unit_and_engine(capsys, tmp_path):
    code, out, err = run(capsys, "rtl", "generate", "--array", "4x2", "--out", str(tmp_path / "rtl"), "--json")
    doc = json.loads(out)
    assert code == 0 and not err and doc["array"] == "4x2"
    names = sorted(p.split("/")[-1] for p in doc["files"])
    assert names == ["array_4x2_d8_a32.v", "engine_4x2_d8_a32_a1024_b1024_o1024_p1024.v", "requant_a32_d8.v"]
    for path in doc["files"]:
        text = open(path).read()
        assert "module " in text and "endmodule" in text
    assert sorted(p.name for p in (tmp_path / "rtl").iterdir()) == names  # no temporary folder left behind


def test_generate_sized_for_a_model(capsys, tmp_path):
    code, out, _ = run(capsys, "rtl", "generate", "--model", str(LENET), "--out", str(tmp_path), "--json")
    assert code == 0 and any("engine_8x8_d8_a32_a2450_b6000_o784_p120" in p for p in json.loads(out)["files"])


def test_generate_bad_parameters_write_nothing(capsys, tmp_path):
    out = tmp_path / "rtl"
    code, _, err = run(capsys, "rtl", "generate", "--array", "0x4", "--out", str(out))
    assert_one_line_error(code, err, "positive")
    code, _, err = run(capsys, "rtl", "generate", "--array", "4x4", "--acc-bits", "12", "--out", str(out))
    assert_one_line_error(code, err, "acc_bits must be an integer in 16..48")
    code, _, err = run(capsys, "rtl", "generate", "--model", str(LENET), "--acc-bits", "20", "--out", str(out))
    assert_one_line_error(code, err, "node_conv2d_1: K = 150 needs a 23-bit accumulator")
    assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "rtl", "generate", "--out", str(blocker))
    assert_one_line_error(code, err, "not a folder")


def test_sim_json_reports_bit_and_cycle_exactness(capsys, rtl_build):
    code, out, _ = run(capsys, "rtl", "sim", str(LENET), "--images", "1", "--simulator", "icarus", "--json",
                       "--build-dir", str(rtl_build))
    doc = json.loads(out)
    assert code == 0 and doc["bit_exact"] is True and doc["images"] == 1
    assert doc["layers"][0]["name"] == "node_conv2d"
    assert all(layer["rtl_cycles"] == layer["hwsim_cycles"] for layer in doc["layers"])
    assert doc["layers"][0]["hwsim_cycles"] == 2473  # 98 folds of K = 25: 97 * 25 + 25 + 16 + 8 - 1


def test_sim_bad_input(capsys, tmp_path):
    code, _, err = run(capsys, "rtl", "sim", str(LENET), "--images", "0")
    assert_one_line_error(code, err, "--images 0")
    code, _, err = run(capsys, "rtl", "sim", str(tmp_path / "none.onnx"))
    assert_one_line_error(code, err, "none.onnx")


def test_synth_runs_yosys_and_nextpnr_for_real(capsys, tmp_path):
    args = ("rtl", "synth", "--array", "2x2", "--target", "ice40", "--json", "--cache-dir", str(tmp_path))
    code, out, _ = run(capsys, *args)
    doc = json.loads(out)
    assert code == 0 and doc["target"] == "ice40" and doc["array"] == "2x2" and not doc["cached"]
    assert doc["dsps"] == 4  # one SB_MAC16 per PE
    assert doc["luts"] > 50 and doc["ffs"] > 4 * 2 * 32  # at least each PE's two 32-bit accumulators
    assert doc["brams"] == 0 and 10 < doc["fmax_mhz"] < 500
    code, out, _ = run(capsys, *args)
    again = json.loads(out)
    assert again["cached"] and again["luts"] == doc["luts"] and again["fmax_mhz"] == doc["fmax_mhz"]
