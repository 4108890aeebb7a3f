"""`hwsim rtl generate | sim | synth` in-process: files, JSON documents, one-line errors."""
import json

import pytest

from quant.errors import ConfigError
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


def test_generate_weight_stationary(capsys, tmp_path):
    code, out, _ = run(capsys, "rtl", "generate", "--array", "4x2", "--dataflow", "ws", "--depth", "64", "--out",
                       str(tmp_path), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["dataflow"] == "ws"
    engine = next(p for p in doc["files"] if "engine_" in p)
    assert engine.endswith("engine_4x2_d8_a32_ws_r64x16_b64_o64_p64.v")
    text = open(engine).read()
    assert "shadow" in text and "active" in text  # the WS PEs, not the OS grid
    assert "im2col" in text and "a_mem" not in text  # raw inputs through the hardware im2col, no A memory
    # 8 banks x (even, odd) raw memories of 64 words x 4 bytes (the next power of two >= 4 rows)
    assert doc["memory_bytes"] == {"ifmap": 16 * 64 * 4, "filter": 64 * 2 + 64 * 9, "acc": 2 * 64 * 4,
                                   "ofmap": 2 * 64}


def test_generate_sizes_the_memories_as_the_config_srams(capsys, tmp_path):
    """--memories: the engine's memories, read back from its Verilog, are the config's SRAMs byte for byte:
    the edge8 preset, and a TOML config with small, unequal SRAMs on a 4x8 array (4-byte raw words)."""
    from hwsim.config import load_config, preset
    toml = tmp_path / "small.toml"
    toml.write_text("rows = 4\ncols = 8\nifmap_sram_kib = 16\nfilter_sram_kib = 16\nofmap_sram_kib = 8\n"
                    "acc_sram_kib = 4\n")
    for name, array, cfg in (("edge8", "8x8", preset("edge8")), (str(toml), "4x8", load_config(toml))):
        code, out, _ = run(capsys, "rtl", "generate", "--array", array, "--dataflow", "ws", "--memories", name,
                           "--out", str(tmp_path / array), "--json")
        assert code == 0
        assert json.loads(out)["memory_bytes"] == {b: cfg.sram_bytes(b) for b in ("ifmap", "filter", "acc", "ofmap")}
    code, _, err = run(capsys, "rtl", "generate", "--memories", "edge8", "--out", str(tmp_path / "os"))
    assert_one_line_error(code, err, "need the weight-stationary engine")
    code, _, err = run(capsys, "rtl", "generate", "--memories", "edge8", "--dataflow", "ws", "--depth", "64",
                       "--out", str(tmp_path / "os"))
    assert_one_line_error(code, err, "leave out --model and --depth")


def test_generate_sized_for_a_model(capsys, tmp_path):
    code, out, _ = run(capsys, "rtl", "generate", "--model", str(LENET), "--out", str(tmp_path), "--json")
    assert code == 0 and any("engine_8x8_d8_a32_a2450_b6000_o784_p120" in p for p in json.loads(out)["files"])


def test_generate_bad_parameters_write_nothing(capsys, tmp_path):
    out = tmp_path / "rtl"
    code, _, err = run(capsys, "rtl", "generate", "--array", "0x4", "--out", str(out))
    assert_one_line_error(code, err, "positive")
    code, _, err = run(capsys, "rtl", "generate", "--array", "4x4", "--acc-bits", "12", "--out", str(out))
    assert_one_line_error(code, err, "acc_bits = 12: must be an integer in 17..")
    code, _, err = run(capsys, "rtl", "generate", "--model", str(LENET), "--acc-bits", "20", "--out", str(out))
    assert_one_line_error(code, err, "node_conv2d_1: K = 150 needs a 23-bit accumulator")
    assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "rtl", "generate", "--out", str(blocker))
    assert_one_line_error(code, err, "not a folder")


def test_rtl_takes_the_accumulator_widths_map_takes(capsys, tmp_path):
    """`hwsim map` refuses a 16-bit accumulator; every rtl command refuses it with map's own message."""
    code, _, map_err = run(capsys, "map", str(LENET), "--acc-bits", "16")
    assert_one_line_error(code, map_err, "acc_bits = 16")
    rule = map_err.split("acc_bits = 16", 1)[1].strip()
    for argv in (("generate", "--out", str(tmp_path / "rtl")), ("sim", str(LENET)),
                 ("synth", "--cache-dir", str(tmp_path / "cache"))):
        code, _, err = run(capsys, "rtl", *argv, "--acc-bits", "16")
        assert_one_line_error(code, err, rule)
    assert not (tmp_path / "rtl").exists()


# the generator once took > 6 GB for --depth 1048576; each of these is refused before anything is built
HOSTILE = [
    (("generate", "--depth", "1048576"), "would need about 76.0 GiB to generate; the generator's limit is 524,288"),
    (("generate", "--depth", "0"), "a_depth must be an integer in 1..1048576, not 0"),
    (("generate", "--depth", "-5"), "not -5"),
    (("generate", "--array", "256x256"), "65,536 PEs and would need about 8.0 GiB"),
    (("generate", "--array", "100000000000000000000x1"), "256x256 limit"),
    (("generate", "--array", "8x8x8"), "expected ROWSxCOLS"),
    (("generate", "--data-bits", "0"), "data_bits must be an integer in 2..16, not 0"),
    (("generate", "--data-bits", "99999999999"), "data_bits must be an integer in 2..16"),
    (("generate", "--acc-bits", "49"), "acc_bits = 49"),
    (("generate", "--acc-bits", "40"), "at most 32 bits"),
    (("generate", "--model", str(LENET), "--depth", "64"), "--depth 64: with --model"),
    (("generate", "--model", str(LENET), "--data-bits", "4"), "--data-bits 4: quantized models are int8"),
    (("generate", "--model", ""), "model '': give a path"),
    (("sim", str(LENET), "--images", "100000000"), "--images 100000000: must be an integer in 1..10,000"),
    (("sim", str(LENET), "--images", "-1"), "--images -1"),
    (("sim", str(LENET), "--data-bits", "4"), "--data-bits 4: quantized models are int8"),
    (("sim", str(LENET), "--calib-data", " "), "--calib-data ' ': give a path"),
    (("sim", ""), "model '': give a path"),
    (("synth", "--array", "64x65"), "4,160 PEs"),
    (("generate", "--array", "2x8", "--dataflow", "ws"), "weight-stationary engine needs at least 3 rows"),
    (("sim", str(LENET), "--waves", "/tmp/run.vcd"), "--waves dumps from the Verilator harness"),
    (("sim", str(LENET), "--simulator", "verilator", "--waves", "/no/such/run.vcd"), "/no/such does not exist"),
    (("sim", str(LENET), "--images", "3", "--batch", "2"), "3 images must be a whole number of batches"),
]


@pytest.mark.parametrize("argv, words", HOSTILE, ids=[" ".join(a[:1] + a[-2:]) for a, _ in HOSTILE])
def test_hostile_numbers_are_one_line_errors(capsys, tmp_path, argv, words):
    out = tmp_path / "rtl"
    extra = {"generate": ("--out", str(out)), "sim": ("--build-dir", str(tmp_path / "build")),
             "synth": ("--cache-dir", str(tmp_path / "cache"))}[argv[0]]
    code, _, err = run(capsys, "rtl", *argv, *extra)
    assert_one_line_error(code, err, words)
    assert not out.exists() or not list(out.iterdir())


def test_empty_or_blocked_folders_are_refused_up_front(capsys, tmp_path, monkeypatch):
    """An empty --out once wrote the Verilog into the current folder; a file as --cache-dir failed
    only after minutes of synthesis."""
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv, words in [(("generate", "--out", ""), "--out '': give a folder name"),
                        (("sim", str(LENET), "--build-dir", ""), "--build-dir '': give a folder name"),
                        (("sim", str(LENET), "--build-dir", str(blocker)), "not a folder (--build-dir)"),
                        (("synth", "--cache-dir", str(blocker)), "not a folder (--cache-dir)"),
                        (("synth", "--cache-dir", ""), "--cache-dir '': give a folder name")]:
        code, _, err = run(capsys, "rtl", *argv)
        assert_one_line_error(code, err, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_synthesis_refuses_a_cache_that_is_a_file_before_running_yosys(tmp_path, monkeypatch):
    from rtl import synth
    from rtl.params import ArrayParams
    monkeypatch.setattr(synth, "_run", lambda *a, **k: pytest.fail("Yosys ran before the cache was checked"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(synth.CACHE_ENV, str(blocker))  # the way `hwsim sweep --synth` names its cache
    with pytest.raises(ConfigError, match="not a folder"):
        synth.synthesize(ArrayParams(2, 2), "ice40")


def test_sim_json_reports_bit_and_cycle_exactness(capsys, rtl_build):
    """Through the Verilator harness (the build test_e2e's LeNet check shares; Icarus runs there)."""
    code, out, _ = run(capsys, "rtl", "sim", str(LENET), "--images", "1", "--simulator", "verilator", "--json",
                       "--build-dir", str(rtl_build))
    doc = json.loads(out)
    assert code == 0 and doc["bit_exact"] is True and doc["images"] == 1
    assert doc["layers"][0]["name"] == "node_conv2d"
    assert all(layer["rtl_cycles"] == layer["hwsim_cycles"] for layer in doc["layers"])
    # the mapper runs conv1 (M = 784, K = 25) as m tiles of 512 and 272 rows: 64 and 34 folds of P = 25
    assert doc["layers"][0]["hwsim_cycles"] == 2516 == (63 * 25 + 25 + 23 + 10) + (33 * 25 + 25 + 23 + 10)


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
