"""The accelerator configuration: one frozen dataclass, named presets, TOML files
and CLI overrides. Every way in goes through `AcceleratorConfig.validate()`, so
a bad value is one ConfigError naming the field, never a crash later on."""
from __future__ import annotations

import enum
import math
import reprlib
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from quant.errors import ConfigError


class Dataflow(enum.Enum):
    OS = "os"  # output stationary: rows <- M, cols <- N, K streams
    WS = "ws"  # weight stationary: rows <- K, cols <- N, M streams
    IS = "is"  # input stationary:  rows <- K, cols <- M, N streams


# The range every config key must lie in (inclusive): a value outside is refused, never simulated.
INT_RANGES: dict[str, tuple[int, int]] = {
    "rows": (1, 4096),
    "cols": (1, 4096),
    "ifmap_sram_kib": (1, 1 << 20),  # 1 KiB .. 1 GiB per buffer
    "filter_sram_kib": (1, 1 << 20),
    "ofmap_sram_kib": (1, 1 << 20),
    "acc_sram_kib": (1, 1 << 20),
    "dram_latency_cycles": (0, 1_000_000),
    "dram_request_bytes": (1, 1 << 20),
    "vector_lanes": (1, 4096),
}
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "dram_bytes_per_cycle": (0.001, 65536.0),
    "clock_mhz": (0.001, 100_000.0),  # 1 kHz .. 100 GHz
}
ACC_BITS_MAX = 64  # the simulators hold sums in int64
MAX_BATCH = 1_000_000  # images per inference
NAME_CHARS_MAX = 64


def _show(value: Any) -> str:
    """A value for an error message: repr, shortened, control characters escaped."""
    return reprlib.repr(value)


def _range_text(lo: float, hi: float) -> str:
    return f"{lo:g}..{hi:g}" if isinstance(lo, float) else f"{lo}..{hi}"


def check_int(key: str, value: Any, lo: int, hi: int) -> int:
    """An int (not a bool, not a float) in lo..hi, or one ConfigError naming `key` and the range."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{key} = {_show(value)}: must be an integer in {lo}..{hi}")
    return value


def check_acc_bits(bits: Any, data_bits: int = 8) -> int:
    """The one rule for accumulator widths (hwsim map, report, sweep and the generated RTL):
    an integer from 2 * data_bits + 1 (two products of signed data_bits values already
    overflow 2 * data_bits bits: 2 * (-2^(d-1))^2 = 2^(2d-1)) to ACC_BITS_MAX."""
    if not isinstance(data_bits, int) or isinstance(data_bits, bool) or data_bits < 1:
        raise ConfigError(f"data_bits = {_show(data_bits)}: must be a positive integer")
    lo = 2 * data_bits + 1
    if not isinstance(bits, int) or isinstance(bits, bool) or not lo <= bits <= ACC_BITS_MAX:
        raise ConfigError(f"acc_bits = {_show(bits)}: must be an integer in {lo}..{ACC_BITS_MAX} "
                          f"(a sum of two int{data_bits} x int{data_bits} products needs {lo} bits)")
    return bits


def check_batch(batch: Any) -> int:
    """Images per inference: an integer in 1..MAX_BATCH."""
    return check_int("batch", batch, 1, MAX_BATCH)


@dataclass(frozen=True)
class AcceleratorConfig:
    name: str = "edge8"
    rows: int = 8
    cols: int = 8
    dataflow: Dataflow = Dataflow.OS
    ifmap_sram_kib: int = 64  # each buffer is double-buffered: half holds the working set
    filter_sram_kib: int = 64
    ofmap_sram_kib: int = 64
    acc_sram_kib: int = 32  # int32 partial sums of K-split tiles, double-buffered like the others
    dram_bytes_per_cycle: float = 4.0
    dram_latency_cycles: int = 10  # a DMA transfer's first request to its first data (~100 ns at 100 MHz)
    dram_request_bytes: int = 64  # DRAM burst/request size: transfers take whole requests in time
    clock_mhz: float = 100.0
    acc_bits: int = 32
    vector_lanes: int = 8
    fuse_pool: bool = False  # pool a conv's output tiles on their way to memory (non-overlapping pools)

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"

    @property
    def sram_kib_total(self) -> int:
        """All on-chip buffers: ifmap + filter + ofmap + acc, KiB."""
        return self.ifmap_sram_kib + self.filter_sram_kib + self.ofmap_sram_kib + self.acc_sram_kib

    def sram_bytes(self, buffer: str) -> int:
        return getattr(self, f"{buffer}_sram_kib") * 1024

    def validate(self) -> AcceleratorConfig:
        """Every field in its documented range (INT_RANGES, FLOAT_RANGES, check_acc_bits), or one
        ConfigError naming the key and the allowed range."""
        try:
            for f, (lo, hi) in INT_RANGES.items():
                check_int(f, getattr(self, f), lo, hi)
            for f, (lo, hi) in FLOAT_RANGES.items():
                v = getattr(self, f)
                if (not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v)
                        or not lo <= v <= hi):
                    raise ConfigError(f"{f} = {_show(v)}: must be a number in {_range_text(lo, hi)}"
                                      + (" (1 kHz..100 GHz)" if f == "clock_mhz" else ""))
            check_acc_bits(self.acc_bits)
        except ConfigError as err:
            raise ConfigError(f"config {err}") from None
        if not isinstance(self.dataflow, Dataflow):
            raise ConfigError(f"config dataflow = {_show(self.dataflow)}: must be one of os, ws, is")
        if not isinstance(self.fuse_pool, bool):
            raise ConfigError(f"config fuse_pool = {_show(self.fuse_pool)}: must be true or false")
        if (not isinstance(self.name, str) or not 0 < len(self.name) <= NAME_CHARS_MAX
                or not self.name.isprintable()):
            raise ConfigError(f"config name = {_show(self.name)}: must be 1..{NAME_CHARS_MAX} printable characters")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dataflow"] = self.dataflow.value
        return d


# DRAM latency is about 100 ns at each preset's clock (10 cycles at 100 MHz, 20 at 200 MHz, 70 at 700 MHz),
# in 64-byte requests (one DDR burst). Accumulators: edge8 32 KiB, mid16 128 KiB (Gemmini's default is
# 64 KiB), tpu128 4 MiB (TPU v1's 4 MiB of accumulators).
PRESETS: dict[str, AcceleratorConfig] = {
    "edge8": AcceleratorConfig(),
    "mid16": AcceleratorConfig(name="mid16", rows=16, cols=16, ifmap_sram_kib=256, filter_sram_kib=256,
                               ofmap_sram_kib=128, acc_sram_kib=128, dram_bytes_per_cycle=8.0,
                               dram_latency_cycles=20, dram_request_bytes=64, clock_mhz=200.0, vector_lanes=16),
    "tpu128": AcceleratorConfig(name="tpu128", rows=128, cols=128, dataflow=Dataflow.WS, ifmap_sram_kib=8192,
                                filter_sram_kib=8192, ofmap_sram_kib=8192, acc_sram_kib=4096,
                                dram_bytes_per_cycle=32.0, dram_latency_cycles=70, dram_request_bytes=64,
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
        raise ConfigError(f"array {_show(text)}: expected ROWSxCOLS, e.g. 16x16") from None
    if rows <= 0 or cols <= 0:
        raise ConfigError(f"array {_show(text)}: rows and cols must be positive")
    return rows, cols


SRAM_BUFFERS = ("ifmap", "filter", "ofmap", "acc")  # every on-chip buffer, in --sram order


def parse_sram(text: str) -> tuple[int, ...]:
    """'64,64,32' -> ifmap, filter, ofmap KiB; '64,64,32,16' -> ifmap, filter, ofmap, acc KiB."""
    try:
        sizes = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        raise ConfigError(f"sram {_show(text)}: expected three or four KiB sizes IFMAP,FILTER,OFMAP[,ACC], "
                          "e.g. 64,64,32 or 64,64,32,16") from None
    if len(sizes) not in (3, 4) or min(sizes) <= 0:
        raise ConfigError(f"sram {_show(text)}: expected three or four positive KiB sizes IFMAP,FILTER,OFMAP[,ACC]")
    return sizes


def parse_int(text: str, option: str) -> int:
    """A command-line integer ('16'; not '16.0', '1e3' or 'nan'), or one ConfigError naming the option."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{option} {_show(text)}: expected an integer") from None


def parse_float(text: str, option: str) -> float:
    """A command-line number; non-finite values parse here and are refused by validate()."""
    try:
        return float(str(text).strip())
    except ValueError:
        raise ConfigError(f"{option} {_show(text)}: expected a number") from None


def preset(name: str) -> AcceleratorConfig:
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown preset {_show(name)}: choose {', '.join(PRESETS)}")
    return PRESETS[name]


# spellings that set several fields at once; giving one together with a field it sets is ambiguous
_ALIASES = {"array": ("rows", "cols"), "sram": ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib")}


def override(cfg: AcceleratorConfig, **values: Any) -> AcceleratorConfig:
    """Replace fields (None = keep); 'array', 'sram' and 'dataflow' accept their CLI spellings."""
    values = {k: v for k, v in values.items() if v is not None}
    for alias, targets in _ALIASES.items():
        both = [t for t in targets if alias in values and t in values]
        if both:
            raise ConfigError(f"config keys {alias!r} and {both[0]!r} both set {both[0]}: give one of them")
    if "array" in values:
        values["rows"], values["cols"] = parse_array(values.pop("array"))
    if "sram" in values:
        sizes = parse_sram(values.pop("sram"))
        if len(sizes) == 4 and "acc_sram_kib" in values:
            raise ConfigError("config keys 'sram' (with four sizes) and 'acc_sram_kib' both set acc_sram_kib: "
                              "give one of them")
        values.update(zip((f"{b}_sram_kib" for b in SRAM_BUFFERS), sizes, strict=False))
    if "dataflow" in values and not isinstance(values["dataflow"], Dataflow):
        values["dataflow"] = parse_dataflow(values["dataflow"])
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown config key {_show(unknown[0])}: known keys are {', '.join(sorted(_FIELDS))}, "
                          "array, sram, preset")
    return replace(cfg, **values).validate()


MAX_TOML_BYTES = 1 << 20  # config and space files are a few hundred bytes; /dev/zero is refused, not read


def read_toml(path: Path, what: str) -> dict:
    """A TOML document, or one ConfigError line: missing, unreadable, not UTF-8 or invalid."""
    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path}: cannot read {what}: not a regular file")
        if path.stat().st_size > MAX_TOML_BYTES:
            raise ConfigError(f"{path}: {what} file of {path.stat().st_size:,} bytes is past the "
                              f"{MAX_TOML_BYTES:,}-byte limit for a TOML file")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text (byte {err.start}); TOML must be UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def config_from_doc(doc: dict[str, Any]) -> AcceleratorConfig:
    """A parsed TOML document -> config. Keys sit either all at the top level or all under an
    [accelerator] table (a key beside the table would be silently ignored, so it is refused)."""
    if "accelerator" in doc:
        table = doc["accelerator"]
        if not isinstance(table, dict):
            raise ConfigError(f"accelerator = {_show(table)}: must be a table, [accelerator]")
        stray = sorted(set(doc) - {"accelerator"})
        if stray:
            raise ConfigError(f"top-level key {_show(stray[0])} beside the [accelerator] table: "
                              "move it into [accelerator]")
        doc = table
    doc = dict(doc)
    return override(preset(doc.pop("preset", DEFAULT_PRESET)), **doc)


def load_config(path: str | Path) -> AcceleratorConfig:
    """A TOML file of config keys, optionally starting from `preset = "mid16"`; keys may sit at
    the top level or under [accelerator]."""
    path = Path(path)
    doc = read_toml(path, "config")
    try:
        return config_from_doc(doc)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
