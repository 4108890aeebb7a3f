"""Accelerator config: presets, overrides, TOML files, and one ConfigError per bad value."""
import re

import pytest

from hwsim.config import (
    MAX_BATCH,
    PRESETS,
    AcceleratorConfig,
    Dataflow,
    check_acc_bits,
    check_batch,
    load_config,
    override,
    parse_array,
    parse_float,
    parse_int,
    parse_sram,
    preset,
)
from quant.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    assert PRESETS[name].validate() is PRESETS[name]


def test_overrides_use_cli_spellings():
    cfg = override(preset("edge8"), array="16x4", dataflow="WS", sram="8,16,32", dram_bytes_per_cycle=2.5)
    assert (cfg.rows, cfg.cols, cfg.dataflow) == (16, 4, Dataflow.WS)
    assert (cfg.ifmap_sram_kib, cfg.filter_sram_kib, cfg.ofmap_sram_kib) == (8, 16, 32)
    assert cfg.sram_bytes("filter") == 16 * 1024 and cfg.dram_bytes_per_cycle == 2.5
    assert override(cfg, clock_mhz=None) == cfg  # None keeps the value


@pytest.mark.parametrize("values, match", [
    ({"array": "0x8"}, "positive"), ({"array": "8by8"}, "ROWSxCOLS"), ({"rows": -1}, "rows"),
    ({"dataflow": "rs"}, "unknown dataflow"), ({"sram": "64,64"}, "three or four"), ({"sram": "64,0,8"}, "positive"),
    ({"sram": "1,2,3,4,5"}, r"IFMAP,FILTER,OFMAP\[,ACC\]"), ({"sram": "8,8,8,0"}, "positive"),
    ({"dram_bytes_per_cycle": 0}, "dram_bytes_per_cycle"), ({"clock_mhz": -100}, "clock_mhz"),
    ({"acc_bits": 12}, "acc_bits"), ({"vector_lanes": 0}, "vector_lanes"), ({"banks": 4}, "unknown config key"),
])
def test_bad_values_are_one_config_error(values, match):
    with pytest.raises(ConfigError, match=match):
        override(AcceleratorConfig(), **values)


def test_parse_array():
    assert parse_array("128x128") == (128, 128)


def test_toml_file_with_preset_and_section(tmp_path):
    path = tmp_path / "acc.toml"
    path.write_text('[accelerator]\npreset = "mid16"\ndataflow = "is"\narray = "32x8"\nclock_mhz = 250\n')
    cfg = load_config(path)
    assert cfg.name == "mid16" and cfg.dataflow is Dataflow.IS and (cfg.rows, cfg.cols) == (32, 8)
    assert cfg.clock_mhz == 250 and cfg.ifmap_sram_kib == PRESETS["mid16"].ifmap_sram_kib


@pytest.mark.parametrize("text, match", [
    ("rows = 0\n", "rows"), ("colums = 8\n", "unknown config key 'colums'"), ("rows = [\n", "not valid TOML"),
    ('preset = "huge"\n', "unknown preset"), ('dataflow = "xs"\n', "unknown dataflow"),
])
def test_bad_toml_names_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_missing_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


@pytest.mark.parametrize("values, match", [
    ({"rows": 10**17}, "rows = 100000000000000000: must be an integer in 1..4096"),
    ({"array": "99999999999x1"}, "rows = 99999999999: must be an integer in 1..4096"),
    ({"cols": 4097}, "cols = 4097: must be an integer in 1..4096"),
    ({"rows": 8.0}, "rows = 8.0: must be an integer"), ({"rows": True}, "rows = True: must be an integer"),
    ({"vector_lanes": 8.5}, "vector_lanes"), ({"ifmap_sram_kib": 2**20 + 1}, "ifmap_sram_kib = 1048577: must be an "
                                                                          "integer in 1..1048576"),
    ({"clock_mhz": 1e-300}, "clock_mhz = 1e-300: must be a number in 0.001..100000 (1 kHz..100 GHz)"),
    ({"clock_mhz": float("inf")}, "clock_mhz = inf"), ({"clock_mhz": float("nan")}, "clock_mhz = nan"),
    ({"clock_mhz": 1e6}, "clock_mhz"), ({"clock_mhz": True}, "clock_mhz = True"), ({"clock_mhz": "100"}, "clock_mhz"),
    ({"dram_bytes_per_cycle": float("-inf")}, "dram_bytes_per_cycle = -inf: must be a number in 0.001..65536"),
    ({"dram_bytes_per_cycle": 1e9}, "dram_bytes_per_cycle"),
    ({"acc_bits": 16}, "acc_bits = 16: must be an integer in 17..64"), ({"acc_bits": 65}, "17..64"),
    ({"acc_bits": True}, "acc_bits = True"), ({"acc_bits": 32.0}, "acc_bits = 32.0"),
    ({"name": ""}, "name"), ({"name": "a\x1b[31m"}, "printable"), ({"name": 5}, "name = 5"),
    ({"array": "8x8", "rows": 4}, "'array' and 'rows' both set rows"),
    ({"sram": "8,8,8", "ofmap_sram_kib": 4}, "give one of them"),
    ({"sram": "8,8,8,8", "acc_sram_kib": 4}, "'sram' (with four sizes) and 'acc_sram_kib' both set acc_sram_kib"),
    ({"acc_sram_kib": 0}, "acc_sram_kib = 0: must be an integer in 1..1048576"),
    ({"acc_sram_kib": 2**20 + 1}, "acc_sram_kib = 1048577: must be an integer in 1..1048576"),
    ({"acc_sram_kib": 32.0}, "acc_sram_kib = 32.0: must be an integer"),
    ({"dram_latency_cycles": -1}, "dram_latency_cycles = -1: must be an integer in 0..1000000"),
    ({"dram_latency_cycles": 1_000_001}, "dram_latency_cycles = 1000001: must be an integer in 0..1000000"),
    ({"dram_latency_cycles": True}, "dram_latency_cycles = True"),
    ({"dram_request_bytes": 0}, "dram_request_bytes = 0: must be an integer in 1..1048576"),
    ({"dram_request_bytes": 2**20 + 1}, "dram_request_bytes = 1048577: must be an integer in 1..1048576"),
    ({"dram_request_bytes": 64.5}, "dram_request_bytes = 64.5"),
])
def test_every_key_is_bounded(values, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        override(AcceleratorConfig(), **values)


def test_the_bounds_themselves_are_accepted():
    cfg = override(AcceleratorConfig(), rows=4096, cols=1, ifmap_sram_kib=2**20, filter_sram_kib=1,
                   clock_mhz=0.001, dram_bytes_per_cycle=65536, acc_bits=64, vector_lanes=4096)
    assert (cfg.rows, cfg.clock_mhz, cfg.acc_bits) == (4096, 0.001, 64)
    assert override(cfg, clock_mhz=100_000, acc_bits=17, dram_bytes_per_cycle=0.001).clock_mhz == 100_000


def test_new_keys_are_one_line_errors_and_their_bounds_are_accepted():
    for values in ({"acc_sram_kib": 0}, {"dram_latency_cycles": -5}, {"dram_request_bytes": 0}):
        with pytest.raises(ConfigError) as err:
            override(AcceleratorConfig(), **values)
        assert "\n" not in str(err.value) and str(err.value).startswith(f"config {next(iter(values))} = ")
    cfg = override(AcceleratorConfig(), acc_sram_kib=1, dram_latency_cycles=0, dram_request_bytes=1)
    assert (cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == (1, 0, 1)
    cfg = override(cfg, acc_sram_kib=2**20, dram_latency_cycles=1_000_000, dram_request_bytes=2**20)
    assert (cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == (2**20, 1_000_000, 2**20)


def test_accumulator_and_dram_defaults_and_presets():
    cfg = AcceleratorConfig()
    assert (cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == (32, 10, 64)
    assert cfg.sram_bytes("acc") == 32 * 1024 and cfg.sram_kib_total == 64 + 64 + 64 + 32
    got = {name: (p.acc_sram_kib, p.dram_latency_cycles, p.dram_request_bytes) for name, p in PRESETS.items()}
    assert got == {"edge8": (32, 10, 64), "mid16": (128, 20, 64), "tpu128": (4096, 70, 64)}
    assert PRESETS["edge8"] == AcceleratorConfig()
    assert {"acc_sram_kib", "dram_latency_cycles", "dram_request_bytes"} <= set(cfg.to_dict())


def test_sram_takes_three_or_four_sizes():
    three = override(AcceleratorConfig(), sram="8,16,32", acc_sram_kib=4)
    assert (three.ifmap_sram_kib, three.filter_sram_kib, three.ofmap_sram_kib, three.acc_sram_kib) == (8, 16, 32, 4)
    assert override(AcceleratorConfig(), sram="8,16,32").acc_sram_kib == 32  # three sizes keep acc
    four = override(AcceleratorConfig(), sram="8,16,32,12")
    assert (four.ifmap_sram_kib, four.filter_sram_kib, four.ofmap_sram_kib, four.acc_sram_kib) == (8, 16, 32, 12)
    assert parse_sram("1,2,3") == (1, 2, 3) and parse_sram("1,2,3,4") == (1, 2, 3, 4)
    for bad in ("1,2", "1,2,3,4,5", "a,b,c", "1,2,3,-4"):
        with pytest.raises(ConfigError, match=re.escape("IFMAP,FILTER,OFMAP[,ACC]")):
            parse_sram(bad)


def test_toml_takes_the_new_keys(tmp_path):
    path = tmp_path / "acc.toml"
    path.write_text('preset = "tpu128"\nacc_sram_kib = 2048\ndram_latency_cycles = 0\ndram_request_bytes = 128\n')
    cfg = load_config(path)
    assert (cfg.name, cfg.acc_sram_kib, cfg.dram_latency_cycles, cfg.dram_request_bytes) == ("tpu128", 2048, 0, 128)
    path.write_text('[accelerator]\nsram = "8,8,8,16"\n')
    assert load_config(path).acc_sram_kib == 16
    path.write_text("dram_request_bytes = 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: config dram_request_bytes = 0: must be an integer")):
        load_config(path)
    path.write_text('sram = "8,8,8,16"\nacc_sram_kib = 16\n')
    with pytest.raises(ConfigError, match="both set acc_sram_kib"):
        load_config(path)


def test_acc_bits_is_one_rule_for_every_data_width():
    assert check_acc_bits(17) == 17 and check_acc_bits(33, data_bits=16) == 33
    for bits, data_bits in ((16, 8), (32, 16), (65, 8), (True, 8)):
        with pytest.raises(ConfigError, match="acc_bits"):
            check_acc_bits(bits, data_bits)
    with pytest.raises(ConfigError, match="data_bits"):
        check_acc_bits(32, data_bits=0)


def test_batch_bounds():
    assert check_batch(1) == 1 and check_batch(MAX_BATCH) == MAX_BATCH
    for bad in (0, MAX_BATCH + 1, 2.0, True):
        with pytest.raises(ConfigError, match="batch"):
            check_batch(bad)


@pytest.mark.parametrize("text, match", [
    ("preset = [1]\n", "unknown preset [1]"), ("preset = 5\n", "unknown preset 5"),
    ("accelerator = 5\n", "accelerator = 5: must be a table"),
    ("accelerator = [1, 2]\n", "must be a table"),
    ('rows = 4\n[accelerator]\ncols = 4\n', "top-level key 'rows' beside the [accelerator] table"),
    ('preset = "mid16"\n[accelerator]\ncols = 4\n', "top-level key 'preset'"),
    ("rows = 1e17\n", "rows = 1e+17: must be an integer"), ("rows = 100000000000000000\n", "1..4096"),
    ("clock_mhz = nan\n", "clock_mhz = nan"), ("clock_mhz = inf\n", "clock_mhz = inf"),
    ("rows = true\n", "rows = True"), ("[accelerator]\nrows = {a = 1}\n", "rows = {'a': 1}"),
    ('name = "x\\u001b[2J"\n', "printable"), ("[other]\nrows = 4\n", "unknown config key 'other'"),
    ('array = "8x8"\nrows = 4\n', "both set rows"),
])
def test_hostile_toml_is_one_config_error(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(match)) as err:
        load_config(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_unreadable_config_files(tmp_path):
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin1.toml")
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "folder.toml")
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError):
        load_config(tmp_path / "binary.toml")


def test_command_line_numbers():
    assert parse_int("16", "--lanes") == 16 and parse_float("2.5", "--freq") == 2.5
    for text in ("16.0", "1e3", "nan", "", "0x10"):
        with pytest.raises(ConfigError, match=r"--lanes .*expected an integer"):
            parse_int(text, "--lanes")
    with pytest.raises(ConfigError, match="--freq 'fast': expected a number"):
        parse_float("fast", "--freq")


def test_fuse_pool_is_a_boolean_switch(tmp_path):
    from hwsim.config import load_config
    assert not preset("edge8").fuse_pool and override(preset("edge8"), fuse_pool=True).fuse_pool
    path = tmp_path / "f.toml"
    path.write_text("fuse_pool = true\n")
    assert load_config(path).fuse_pool
    path.write_text('fuse_pool = "yes"\n')
    with pytest.raises(ConfigError, match="fuse_pool = 'yes': must be true or false"):
        load_config(path)
