"""Verilog emission: MyHDL conversion of the array and the tile engine, one file per configuration."""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
import warnings
from pathlib import Path

from myhdl import ResetSignal, Signal

from quant.errors import ConfigError
from rtl.array import array_top, row_bits, signed, unsigned
from rtl.engine import engine_ports, tile_engine
from rtl.params import M0_BITS, SHIFT_BITS, ArrayParams, EngineParams
from rtl.requant import requant_pipeline


def array_ports(params: ArrayParams) -> dict:
    R, C, D, W = params.rows, params.cols, params.data_bits, params.acc_bits
    return dict(clk=Signal(bool(0)), rst=ResetSignal(0, active=1, isasync=False),
                a_vec=unsigned(R * D), b_vec=unsigned(C * D), in_valid=Signal(bool(0)),
                in_first=Signal(bool(0)), in_last=Signal(bool(0)), out_vec=unsigned(C * W),
                out_valid=unsigned(C), out_rows=unsigned(C * (1 if params.ws else row_bits(R))))


GENERATOR_SOURCES = ("array.py", "engine.py", "requant.py", "params.py", "emit.py")


def generator_digest() -> str:
    """What a generated file depends on besides its parameters: the generators' code and MyHDL's version.
    (MyHDL numbers internal signals per process, so equal parameters need not give byte-equal files;
    caches key on this digest and the parameters instead.)"""
    import myhdl
    h = hashlib.sha256(myhdl.__version__.encode())
    for name in GENERATOR_SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def _convert(inst, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # MyHDL warns about undriven constant signals (the drain chain's top)
        inst.convert(hdl="Verilog", path=str(out_dir), name=name, testbench=False, timescale="1ns/1ps")
    path = out_dir / f"{name}.v"
    # MyHDL's header names the date and the temporary folder; keep the file name only
    lines = path.read_text().splitlines(keepends=True)
    lines = [f"// File: {path.name}\n" if ln.startswith("// File:") else ln for ln in lines
             if not ln.startswith("// Date:")]
    path.write_text("".join(lines))
    return path


def write_array(params: ArrayParams, out_dir: Path | str) -> Path:
    """Write the bare PE array (skew, grid, drain) as <out_dir>/array_<tag>.v; top module array_<tag>."""
    name = f"array_{params.tag}"
    return _convert(array_top(**array_ports(params), params=params), Path(out_dir), name)


def write_engine(params: EngineParams, out_dir: Path | str) -> Path:
    """Write the tile engine as <out_dir>/engine_<tag>.v; top module engine_<tag>."""
    name = f"engine_{params.tag}"
    return _convert(tile_engine(**engine_ports(params), params=params), Path(out_dir), name)


MEMORY_DECL = re.compile(r"^\s*reg\s+(?:signed\s+)?\[(\d+):(\d+)\]\s+(\w+)\s+\[0:(\d+)-1\];", re.M)
BUFFERS = (("ifmap", re.compile(r"(^|_)mem_[eo]$|^a_mem$")), ("filter", re.compile(r"^(b|bias|m0|shift)_mem$")),
           ("acc", re.compile(r"_psums$")), ("ofmap", re.compile(r"_bank$")))


def memory_bytes(verilog: Path | str) -> dict[str, int]:
    """The bytes of every memory (a `reg [w] name [0:depth-1]` array) in a generated engine, per buffer
    of hwsim's model: ifmap (the im2col's raw banks, or the OS engine's A memory), filter (B and the
    channel parameters), acc (the accumulator memories), ofmap (the result banks). A memory that fits
    none of them is an error: every bit on chip is accounted for."""
    out = {name: 0 for name, _ in BUFFERS}
    for hi, lo, name, depth in MEMORY_DECL.findall(Path(verilog).read_text()):
        bits = (int(hi) - int(lo) + 1) * int(depth)
        buffer = next((b for b, pattern in BUFFERS if pattern.search(name)), None)
        if buffer is None:
            raise ValueError(f"memory {name!r} belongs to no buffer")
        out[buffer] += bits // 8
    return out


REQUANT_TAG_BITS = 16  # the standalone unit's tag: a vector index in its testbench


def write_requant(out_dir: Path | str, acc_bits: int = 32, data_bits: int = 8) -> Path:
    """Write the requant pipeline alone as <out_dir>/requant_a<acc>_d<data>.v."""
    ports = dict(clk=Signal(bool(0)), rst=ResetSignal(0, active=1, isasync=False), acc=signed(acc_bits),
                 bias=signed(32), m0=unsigned(M0_BITS), shift=signed(SHIFT_BITS), zero_point=signed(data_bits),
                 qmin=signed(data_bits), qmax=signed(data_bits), valid_in=Signal(bool(0)),
                 tag_in=unsigned(REQUANT_TAG_BITS), out=signed(data_bits), valid_out=Signal(bool(0)),
                 tag_out=unsigned(REQUANT_TAG_BITS))
    return _convert(requant_pipeline(**ports), Path(out_dir), f"requant_a{acc_bits}_d{data_bits}")


def ensure_writable(out_dir: Path | str, option: str = "output folder") -> Path:
    """The folder, created if missing; one ConfigError line if it cannot be (an empty name is refused,
    not read as the current folder)."""
    if not str(out_dir).strip():
        raise ConfigError(f"{option} {str(out_dir)!r}: give a folder name")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder ({option})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{out}: cannot create the folder ({option}: {e.strerror})") from None
    return out
