"""`hwsim map` in-process: table, JSON, CSV, the cycle engine, and one-line errors for bad input."""
import csv
import io
import json

import pytest

from tests.conftest import LENET
from tests.helpers import wide_conv_model
from tests.hwsim.test_cli import assert_one_line_error, run


def test_default_table_has_what_a_hardware_person_expects(capsys):
    code, out, err = run(capsys, "map", str(LENET))
    assert code == 0 and not err
    for text in ("8x8 OS array (edge8)", "M", "K", "N", "tile MxKxN", "512x25x6 mn", "steps",
                 "total cyc", "util", "SRAM rd", "DRAM wr",
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


@pytest.mark.parametrize("command", ["map", "report"])
def test_accumulator_and_dram_flags_reach_the_config(tmp_path, command):
    from hwsim.cli import accelerator_config, build_parser  # the config alone: no engine runs
    def config(*argv):
        return accelerator_config(build_parser().parse_args([command, str(LENET), *argv]))
    cfg = config("--acc-sram", "16", "--dram-latency", "0", "--dram-request", "32")
    assert (cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == (16, 0, 32)
    (tmp_path / "acc.toml").write_text('preset = "tpu128"\ndram_latency_cycles = 35\n')
    cfg = config("--config", str(tmp_path / "acc.toml"), "--sram", "64,64,64,8")
    assert (cfg.ifmap_sram_kib, cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == (64, 8, 35, 64)
    assert config("--sram", "8,8,8", "--acc-sram", "4").acc_sram_kib == 4


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
    (["--sram", "0,64,64"], "positive KiB sizes"), (["--batch", "0"], "--batch"), (["--freq", "0"], "clock_mhz"),
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


@pytest.mark.parametrize("argv, match", [
    (["--array", "99999999999x1"], "rows = 99999999999: must be an integer in 1..4096"),
    (["--array", "8x4097"], "cols = 4097"), (["--sram=-1,2,3"], "three or four positive KiB sizes"),
    (["--sram", "nan,1,1"], "expected three or four KiB sizes IFMAP,FILTER,OFMAP[,ACC]"),
    (["--sram", "1,1,9999999999"], "ofmap_sram_kib"), (["--sram", "8,8,8,9999999999"], "acc_sram_kib = 9999999999"),
    (["--sram", "8,8,8,8", "--acc-sram", "8"], "both set acc_sram_kib: give one of them"),
    (["--acc-sram", "0"], "acc_sram_kib = 0: must be an integer in 1..1048576"),
    (["--acc-sram", "1.5"], "--acc-sram '1.5': expected an integer"),
    (["--dram-latency", "-1"], "dram_latency_cycles = -1: must be an integer in 0..1000000"),
    (["--dram-latency", "ten"], "--dram-latency 'ten': expected an integer"),
    (["--dram-request", "0"], "dram_request_bytes = 0: must be an integer in 1..1048576"),
    (["--dram-request", "1e3"], "--dram-request '1e3': expected an integer"),
    (["--batch", "1000000000"], "--batch 1000000000: must be an integer in 1..1000000"),
    (["--batch", "10**9"], "--batch '10**9': expected an integer"), (["--batch", "-3"], "--batch -3"),
    (["--dram-bw", "0"], "dram_bytes_per_cycle = 0.0: must be a number in 0.001..65536"),
    (["--dram-bw", "nan"], "dram_bytes_per_cycle = nan"), (["--dram-bw", "1e9"], "dram_bytes_per_cycle"),
    (["--lanes", "0"], "vector_lanes = 0: must be an integer in 1..4096"),
    (["--lanes", "8.5"], "--lanes '8.5': expected an integer"), (["--lanes", "1e9"], "expected an integer"),
    (["--freq", "inf", "--json"], "clock_mhz = inf"), (["--freq", "nan"], "clock_mhz = nan"),
    (["--freq", "1e-300"], "clock_mhz = 1e-300: must be a number in 0.001..100000 (1 kHz..100 GHz)"),
    (["--freq", "fast"], "--freq 'fast': expected a number"),
    (["--acc-bits", "16"], "acc_bits = 16: must be an integer in 17..64"), (["--acc-bits", "65"], "17..64"),
    (["--acc-bits", "32.0"], "expected an integer"),
])
def test_hostile_accelerator_flags_are_one_line(capsys, argv, match):
    code, out, err = run(capsys, "map", str(LENET), *argv)
    assert_one_line_error(code, err, match)
    assert out == ""


def test_report_takes_the_same_checks(capsys, tmp_path):
    code, _, err = run(capsys, "report", str(LENET), "--freq", "inf", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "clock_mhz = inf")
    code, _, err = run(capsys, "report", str(LENET), "--acc-sram", "0", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "acc_sram_kib = 0: must be an integer in 1..1048576")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text, match", [
    ("preset = [1]\n", "unknown preset [1]"), ("accelerator = 5\n", "must be a table"),
    ('rows = 4\n[accelerator]\ncols = 16\n', "beside the [accelerator] table"), ("clock_mhz = inf\n", "clock_mhz"),
])
def test_hostile_config_files_are_one_line(capsys, tmp_path, text, match):
    path = tmp_path / "acc.toml"
    path.write_text(text)
    assert_one_line_error(*run(capsys, "map", str(LENET), "--config", str(path))[::2], match)


def test_unreadable_config_files_are_one_line(capsys, tmp_path):
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    assert_one_line_error(*run(capsys, "map", str(LENET), "--config", str(tmp_path / "latin1.toml"))[::2],
                          "not UTF-8")
    assert_one_line_error(*run(capsys, "map", str(LENET), "--config", str(tmp_path))[::2], "cannot read config")


def test_json_is_strict(capsys):
    from hwsim.cli import _print_json
    from quant.errors import HwsimError
    for bad in (float("inf"), float("nan"), {"deep": [1.0, float("-inf")]}):
        with pytest.raises(HwsimError, match="non-finite"):
            _print_json({"value": bad})
    assert capsys.readouterr().out == ""  # nothing half-printed


def test_cycle_engine_refuses_a_batch_it_cannot_hold(capsys):
    """--batch 10000 made the cycle engine allocate > 12 GB; now it names the size up front
    (before calibration and input loading) and points at the analytical engine."""
    code, out, err = run(capsys, "map", str(LENET), "--engine", "cycle", "--batch", "10000")
    assert_one_line_error(code, err, "the cycle engine would need about")
    assert "GiB for layer 'node_conv2d' at batch 10000" in err and "--engine analytical" in err and out == ""


def test_a_layer_no_tile_fits_is_refused_naming_the_buffer(capsys, tmp_path):
    model = wide_conv_model(tmp_path / "wide.onnx")
    code, out, err = run(capsys, "map", str(model), "--sram", "1,64,64")
    assert out == ""
    assert_one_line_error(code, err, "'conv0': its smallest tile needs 6,144 B of ifmap SRAM, 5,632 B more than "
                                     "half the buffer (512 B)")


def test_fuse_pool_flag_marks_the_pools_fused(capsys):
    code, out, _ = run(capsys, "map", str(LENET), "--fuse-pool", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["config"]["fuse_pool"] is True
    assert [r["fused_into"] for r in doc["layers"] if r["op"] == "MaxPool"] == ["node_conv2d", "node_conv2d_1"]
