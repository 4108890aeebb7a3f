"""Accelerator config: presets, overrides, TOML files, and one ConfigError per bad value."""
import pytest

from hwsim.config import PRESETS, AcceleratorConfig, Dataflow, load_config, override, parse_array, preset
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
    ({"dataflow": "rs"}, "unknown dataflow"), ({"sram": "64,64"}, "three"), ({"sram": "64,0,8"}, "positive"),
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
