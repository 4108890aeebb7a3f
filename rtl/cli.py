"""`hwsim rtl generate | sim | synth`: the subcommands that need Verilog, kept in the rtl package
(hwsim.cli registers them) so that hwsim's own modules never import the generators."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from quant.errors import ConfigError
from rtl.params import MAX_MEMORY_WORDS, MAX_PES, MAX_SIDE

DEFAULT_DEPTH_WORDS = 1024
MAX_SIM_IMAGES = 10_000  # the Fashion-MNIST test set; Icarus takes about 6 s per LeNet image
MODEL_DATA_BITS = 8  # quantized models are int8: an engine of another width cannot run them


def _array_params(args: argparse.Namespace):
    from hwsim.config import parse_array
    from rtl.params import ArrayParams
    rows, cols = parse_array(args.array)
    return ArrayParams(rows, cols, data_bits=args.data_bits, acc_bits=args.acc_bits, dataflow=args.dataflow)


def _check_model_width(ap) -> None:
    if ap.data_bits != MODEL_DATA_BITS:
        raise ConfigError(f"--data-bits {ap.data_bits}: quantized models are int{MODEL_DATA_BITS}, so an engine "
                          f"for a model takes --data-bits {MODEL_DATA_BITS}")


def _path(value: str | None, option: str) -> Path | None:
    """An optional path option; an empty one is refused, not read as the current folder."""
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(f"{option} {value!r}: give a path")
    return Path(value)


def _load_inputs(args: argparse.Namespace, images: int):
    from hwsim.workload import load_model, quantized, sample_inputs
    model = _path(args.model, "model")
    graph = load_model(model)
    qgraph = quantized(graph, model, _path(args.calib_data, "--calib-data"))
    x_q, source = sample_inputs(qgraph, images, _path(args.data, "--data"))
    return qgraph, x_q, source


def _memories_config(args: argparse.Namespace, ap):
    """--memories: the accelerator config (preset name or TOML file) whose SRAM sizes the engine takes,
    with --array, --dataflow and --acc-bits applied; None without it."""
    if getattr(args, "memories", None) is None:
        return None
    from hwsim.config import PRESETS, Dataflow, load_config, preset
    base = preset(args.memories) if args.memories in PRESETS else load_config(_path(args.memories, "--memories"))
    return dataclasses.replace(base, rows=ap.rows, cols=ap.cols, dataflow=Dataflow(ap.dataflow),
                               acc_bits=ap.acc_bits)


def _waves_file(value: str | None) -> Path | None:
    """--waves: a VCD file in an existing folder, never a folder or a device."""
    path = _path(value, "--waves")
    if path is None:
        return None
    if not path.parent.is_dir():
        raise ConfigError(f"--waves {value}: folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise ConfigError(f"--waves {value}: exists and is not a regular file")
    return path.resolve()


def _engine_params(args: argparse.Namespace, ap):
    """The tile engine: memories sized as --memories' SRAMs, for --model's layers, or --depth words each."""
    from rtl.e2e import gemm_jobs
    from rtl.layout import engine_for
    from rtl.params import EngineParams
    cfg = _memories_config(args, ap)
    if cfg is not None:
        if args.model is not None or args.depth is not None:
            raise ConfigError("--memories sizes the memories as the config's SRAMs: leave out --model and --depth")
        return EngineParams.from_config(cfg)
    if args.model is not None:
        if args.depth is not None:
            raise ConfigError(f"--depth {args.depth}: with --model the memories are sized for the model's "
                              "layers; give one of them")
        _check_model_width(ap)
        qgraph, x_q, _ = _load_inputs(args, 1)
        return engine_for(gemm_jobs(qgraph, x_q), ap)  # refuses an accumulator too narrow for any layer's K
    d = DEFAULT_DEPTH_WORDS if args.depth is None else args.depth
    if ap.ws:
        return EngineParams(ap, a_depth=0, raw_depth=d, b_depth=d, out_depth=d, param_depth=d)
    return EngineParams(ap, a_depth=d, b_depth=d, out_depth=d, param_depth=d)  # refuses past its limits


def cmd_generate(args: argparse.Namespace) -> int:
    from rtl.emit import ensure_writable, memory_bytes, write_array, write_engine, write_requant
    ap = _array_params(args)
    engine = _engine_params(args, ap)
    out = ensure_writable(args.out, "--out")
    # write into a fresh folder beside the output, then move: no half-written files on failure
    with tempfile.TemporaryDirectory(prefix=".hwsim-rtl-", dir=out) as tmp:
        files = [write_array(ap, tmp), write_requant(tmp, ap.acc_bits, ap.data_bits), write_engine(engine, tmp)]
        written = []
        for f in files:
            dest = out / f.name
            shutil.move(str(f), dest)
            written.append(dest)
    memories = memory_bytes(written[-1])  # read back from the engine's Verilog
    if args.json:
        print(json.dumps({"files": [str(p) for p in written], "array": f"{ap.rows}x{ap.cols}",
                          "dataflow": ap.dataflow, "data_bits": ap.data_bits, "acc_bits": ap.acc_bits,
                          "memory_bytes": memories}, indent=2))
    else:
        for p in written:
            print(f"wrote {p} ({len(p.read_text().splitlines()):,} lines)")
        print("engine memories (read from its Verilog): " + ", ".join(f"{k} {v:,} B" for k, v in memories.items()))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_bars
    from rtl.e2e import simulate_model
    from rtl.emit import ensure_writable
    if not 1 <= args.images <= MAX_SIM_IMAGES:
        raise ConfigError(f"--images {args.images}: must be an integer in 1..{MAX_SIM_IMAGES:,}")
    ap = _array_params(args)
    _check_model_width(ap)
    waves = _waves_file(args.waves)
    if waves is not None and args.simulator != "verilator":
        raise ConfigError("--waves dumps from the Verilator harness: add --simulator verilator")
    if args.batch < 1 or args.images % args.batch:
        raise ConfigError(f"--batch {args.batch}: the {args.images} images must be a whole number of batches")
    build_dir = ensure_writable(args.build_dir, "--build-dir") if args.build_dir is not None else None
    qgraph, x_q, source = _load_inputs(args, args.images)
    layers = sum(1 for n in qgraph.nodes if n.op.name in ("CONV", "DENSE"))
    with progress_bars(enabled=not args.json, unit="layer runs") as bars:
        advance = bars(f"RTL {args.simulator}", layers * max(1, args.images // max(1, args.batch)))
        result = simulate_model(qgraph, x_q, ap, args.simulator, source, build_dir, advance=advance,
                                cfg=_memories_config(args, ap), sram_sized=args.memories is not None,
                                batch=args.batch, waves=waves)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _sim_table(result)
    return 0 if result.bit_exact and result.cycle_exact else 1


def _sim_table(result) -> None:
    console = Console()
    ap = result.engine.array
    t = Table(box=box.SIMPLE_HEAD, title=f"{result.model} on the {ap.rows}x{ap.cols} {ap.dataflow.upper()} RTL tile "
              f"engine ({result.simulator}), {result.images} images")
    for col in ("layer", "RTL cycles", "hwsim cycles", "match"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for layer in result.layers:
        rtl = sorted(set(layer.rtl_cycles))
        t.add_row(layer.name, ", ".join(f"{c:,}" for c in rtl), f"{layer.hwsim_cycles:,}",
                  "yes" if layer.exact else "[red]NO[/red]")
    console.print(t)
    console.print(f"inputs: {result.source}; logits {'bit-exact with' if result.bit_exact else 'DIFFER from'} "
                  f"quant's integer executor ({result.mismatched_images} of {result.images} images differ)",
                  highlight=False)
    what = "every non-GEMM op runs" if ap.ws else "im2col and every non-GEMM op run"
    console.print(f"host ops per image: {len(result.host_ops)} ({what} in numpy, outside "
                  f"the RTL); RTL GEMM cycles {result.rtl_gemm_cycles:,} of hwsim's whole-network "
                  f"{result.hwsim_total_cycles:,}", highlight=False)
    free_rate = result.free_cycles / max(result.free_s, 1e-9)
    console.print(f"{result.free_cycles:,} engine cycles run free at {free_rate:,.0f} cycles/s, "
                  f"{result.driven_cycles:,} load/read cycles; {result.wall_s:.1f} s in all (host ops included); "
                  f"build {result.build_s:.1f} s", highlight=False)


def cmd_synth(args: argparse.Namespace) -> int:
    from rtl.emit import ensure_writable
    from rtl.synth import TARGETS, synthesize
    ap = _array_params(args)
    if not args.engine and (args.model is not None or args.depth is not None):
        raise ConfigError("--model and --depth size the engine's memories: add --engine")
    design = _engine_params(args, ap) if args.engine else ap
    targets = list(TARGETS) if args.target == "all" else [args.target]
    cache_dir = ensure_writable(args.cache_dir, "--cache-dir") if args.cache_dir is not None else None
    results = [synthesize(design, t, cache_dir, pnr=not args.no_pnr) for t in targets]
    if args.json:
        docs = [r.to_dict() for r in results]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return 0
    what = (f"tile engine {design.tag} (array, memories, controllers, requant pipelines)" if args.engine
            else f"{ap.rows}x{ap.cols} {ap.dataflow.upper()} PE array")
    t = Table(box=box.SIMPLE_HEAD, title=f"{what} ({ap.data_bits}-bit data, {ap.acc_bits}-bit accumulators), Yosys")
    for col in ("target", "LUT", "FF", "DSP/MAC", "BRAM", "carry", "Fmax MHz", "synth s"):
        t.add_column(col, justify="left" if col == "target" else "right")
    for r in results:
        fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "-"
        t.add_row(r.target, f"{r.luts:,}", f"{r.ffs:,}", str(r.dsps), str(r.brams), f"{r.carries:,}", fmax,
                  "cached" if r.cached else f"{r.synth_s:.0f}")
    console = Console()
    console.print(t)
    for r in results:
        console.print(f"{r.target}: {r.device}; Fmax: {r.pnr_note}", highlight=False)
    return 0


def add_parser(sub) -> None:
    rtl = sub.add_parser("rtl", help="generate, simulate (cocotb) and synthesize (Yosys) the accelerator RTL")
    rsub = rtl.add_subparsers(dest="rtl_command", required=True, metavar="RTL_COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--array", default="8x8",
                       help=f"ROWSxCOLS of the PE array (default 8x8; at most {MAX_PES:,} PEs, {MAX_SIDE} a side)")
        p.add_argument("--data-bits", type=int, default=8, help="operand width, 2..16 (default 8; 8 with a model)")
        p.add_argument("--acc-bits", type=int, default=32,
                       help="accumulator width (default 32): the rule of `hwsim map --acc-bits`, and at most "
                       "48 in the PE array, 32 in the engine")
        p.add_argument("--dataflow", choices=("os", "ws"), default="os",
                       help="output stationary (default) or weight stationary; sim: the tiler schedules for it")
        p.add_argument("--memories", metavar="CONFIG",
                       help="size the (WS) engine's memories as this accelerator config's SRAMs, byte for byte: a "
                       "preset (edge8, mid16, tpu128) or a TOML file; sim: its tiler schedules the layers")
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.add_argument("--debug", action="store_true", help="show tracebacks")

    p = rsub.add_parser("generate", help="write the PE array, requant unit and tile engine as Verilog")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--model", help="size the engine's memories for this model's layers (ONNX or .int8.npz)")
    p.add_argument("--depth", type=int,
                   help=f"words per engine memory without --model (default {DEFAULT_DEPTH_WORDS}; all memories "
                   f"together, one result bank per column, at most {MAX_MEMORY_WORDS:,} words: about 2 GiB "
                   "to generate)")
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) for a non-Fashion-MNIST model")
    common(p)
    p.set_defaults(func=cmd_generate)

    p = rsub.add_parser("sim", help="run a model's Conv/Dense layers through the RTL tile engine under cocotb")
    p.add_argument("model", help="ONNX file, or a quantized .int8.npz")
    p.add_argument("--images", type=int, default=10, help=f"test images (default 10, at most {MAX_SIM_IMAGES:,})")
    p.add_argument("--batch", type=int, default=1,
                   help="images per layer run (GEMM M = batch x output pixels; hwsim maps at that batch; default 1)")
    p.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    p.add_argument("--data", help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) for a non-Fashion-MNIST model")
    p.add_argument("--build-dir", help="where compiled simulations are kept (default: a folder in /tmp)")
    p.add_argument("--waves", metavar="FILE.vcd",
                   help="with --simulator verilator: dump every cycle of the run to this VCD file (GTKWave, "
                   "Surfer); a separate, slower build of the harness")
    common(p)
    p.set_defaults(func=cmd_sim)

    p = rsub.add_parser("synth", help="Yosys synthesis of the PE array or the tile engine: LUT/FF/DSP/BRAM, "
                        "nextpnr Fmax")
    p.add_argument("--target", choices=("ice40", "ecp5", "xilinx", "all"), default="all")
    p.add_argument("--engine", action="store_true",
                   help="the whole tile engine with its memories (default: the bare PE array)")
    p.add_argument("--model", help="with --engine: size the memories for this model's layers")
    p.add_argument("--depth", type=int, help=f"with --engine, no --model: words per memory (default "
                   f"{DEFAULT_DEPTH_WORDS})")
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--calib-data", help="with --model: calibration inputs (.npy/.npz) for a non-Fashion-MNIST model")
    p.add_argument("--no-pnr", action="store_true", help="skip place-and-route (no Fmax)")
    p.add_argument("--cache-dir", help="synthesis cache (default ~/.cache/hwsim/synth)")
    common(p)
    p.set_defaults(func=cmd_synth)

