"""The accelerator configuration: one frozen dataclass, named presets, TOML files
and CLI overrides. Every way in goes through `AcceleratorConfig.validate()`, so
a bad value is one ConfigError naming the field, never a crash later on."""
from __future__ import annotations

import enum
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from quant.errors import ConfigError


class Dataflow(enum.Enum):
    OS = "os"  # output stationary: rows <- M, cols <- N, K streams
    WS = "ws"  # weight stationary: rows <- K, cols <- N, M streams
    IS = "is"  # input stationary:  rows <- K, cols <- M, N streams


@dataclass(frozen=True)
class AcceleratorConfig:
    name: str = "edge8"
    rows: int = 8
    cols: int = 8
    dataflow: Dataflow = Dataflow.OS
    ifmap_sram_kib: int = 64  # each buffer is double-buffered: half holds the working set
    filter_sram_kib: int = 64
    ofmap_sram_kib: int = 64
    dram_bytes_per_cycle: float = 4.0
    clock_mhz: float = 100.0
    acc_bits: int = 32
    vector_lanes: int = 8

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"

    def sram_bytes(self, buffer: str) -> int:
        return getattr(self, f"{buffer}_sram_kib") * 1024

    def validate(self) -> AcceleratorConfig:
        for f in ("rows", "cols", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib", "vector_lanes"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"config {f} = {v!r}: must be a positive integer")
        for f in ("dram_bytes_per_cycle", "clock_mhz"):
            v = getattr(self, f)
            if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
                raise ConfigError(f"config {f} = {v!r}: must be a positive number")
        if not isinstance(self.acc_bits, int) or not 17 <= self.acc_bits <= 64:
            raise ConfigError(f"config acc_bits = {self.acc_bits!r}: must be an integer in 17..64 "
                              "(an int8 x int8 product alone needs 16 bits plus sign)")
        if not isinstance(self.dataflow, Dataflow):
            raise ConfigError(f"config dataflow = {self.dataflow!r}: must be one of os, ws, is")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dataflow"] = self.dataflow.value
        return d


PRESETS: dict[str, AcceleratorConfig] = {
    "edge8": AcceleratorConfig(),
    "mid16": AcceleratorConfig(name="mid16", rows=16, cols=16, ifmap_sram_kib=256, filter_sram_kib=256,
                               ofmap_sram_kib=128, dram_bytes_per_cycle=8.0, clock_mhz=200.0, vector_lanes=16),
    "tpu128": AcceleratorConfig(name="tpu128", rows=128, cols=128, dataflow=Dataflow.WS, ifmap_sram_kib=8192,
                                filter_sram_kib=8192, ofmap_sram_kib=8192, dram_bytes_per_cycle=32.0,
                                clock_mhz=700.0, vector_lanes=128),
}
DEFAULT_PRESET = "edge8"
_FIELDS = {f.name for f in fields(AcceleratorConfig)}


def parse_dataflow(text: str) -> Dataflow:
    try:
        return Dataflow(str(text).lower())
    except ValueError:
        raise ConfigError(f"unknown dataflow {text!r}: choose os, ws or is") from None


def parse_array(text: str) -> tuple[int, int]:
    """'16x16' -> (16, 16)."""
    parts = str(text).lower().split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"array {text!r}: expected ROWSxCOLS, e.g. 16x16") from None
    if rows <= 0 or cols <= 0:
        raise ConfigError(f"array {text!r}: rows and cols must be positive")
    return rows, cols


def parse_sram(text: str) -> tuple[int, int, int]:
    """'64,64,32' -> ifmap, filter, ofmap KiB."""
    try:
        sizes = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        raise ConfigError(f"sram {text!r}: expected three KiB sizes IFMAP,FILTER,OFMAP, e.g. 64,64,32") from None
    if len(sizes) != 3 or min(sizes) <= 0:
        raise ConfigError(f"sram {text!r}: expected three positive KiB sizes IFMAP,FILTER,OFMAP")
    return sizes


def preset(name: str) -> AcceleratorConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose {', '.join(PRESETS)}")
    return PRESETS[name]


def override(cfg: AcceleratorConfig, **values: Any) -> AcceleratorConfig:
    """Replace fields (None = keep); 'array', 'sram' and 'dataflow' accept their CLI spellings."""
    values = {k: v for k, v in values.items() if v is not None}
    if "array" in values:
        values["rows"], values["cols"] = parse_array(values.pop("array"))
    if "sram" in values:
        values["ifmap_sram_kib"], values["filter_sram_kib"], values["ofmap_sram_kib"] = parse_sram(values.pop("sram"))
    if "dataflow" in values and not isinstance(values["dataflow"], Dataflow):
        values["dataflow"] = parse_dataflow(values["dataflow"])
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}: known keys are {', '.join(sorted(_FIELDS))}, "
                          "array, sram, preset")
    return replace(cfg, **values).validate()


def read_toml(path: Path, what: str) -> dict:
    """A TOML document, or one ConfigError line: missing, unreadable or invalid."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read {what} ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def load_config(path: str | Path) -> AcceleratorConfig:
    """A TOML file of config keys, optionally starting from `preset = "mid16"`; keys may sit at
    the top level or under [accelerator]."""
    path = Path(path)
    doc = read_toml(path, "config")
    doc = doc.get("accelerator", doc)
    base = preset(doc.pop("preset", DEFAULT_PRESET))
    try:
        return override(base, **doc)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
