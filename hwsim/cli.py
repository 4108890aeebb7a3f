"""The `hwsim` command line. Handlers are short and call library code;
`main(argv) -> int` is testable in-process. User errors print one line and
exit 2 (`--debug` shows the traceback)."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwsim.text import printable
from quant.errors import ConfigError, HwsimError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def cmd_summary(args: argparse.Namespace) -> int:
    from hwsim.render import summary_table
    from quant.analysis import summarize
    from quant.onnx_import import load_onnx
    summary = summarize(load_onnx(args.model))
    if args.json:
        _print_json(summary.to_dict())
    else:
        summary_table(summary)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_bars
    from hwsim.render import quantize_report, quantize_to_dict
    from quant.calibrate import Method
    from quant.data import Preprocess
    from quant.pipeline import QuantJob, run_quantization
    from quant.qdq_export import save_qdq
    from quant.quantize import QuantConfig
    from quant.serialize import save_graph
    model = Path(args.model)
    out = Path(args.out) if args.out else model.with_name(model.stem + ".int8.npz")
    outputs = [out, *([Path(args.qdq)] if args.qdq else [])]
    for path in outputs:
        _check_output_file(path, model, *([Path(args.calib_data)] if args.calib_data else []))
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise ConfigError(f"--out and --qdq are the same file ({out})")
    config = QuantConfig(calibration=Method(args.calibration), percentile=args.percentile,
                         per_channel=not args.per_tensor, pow2=args.pow2)
    job = QuantJob(model=model, config=config, preprocess=Preprocess(args.mean, args.std),
                   data_dir=Path(args.data) if args.data else None,
                   calib_data=Path(args.calib_data) if args.calib_data else None,
                   images=args.images, evaluate=not args.no_eval, cross_check=not args.no_ort)
    with progress_bars(enabled=not args.json) as progress:
        result = run_quantization(job, progress)
    save_graph(result.qgraph, out, meta={"source": str(model), "calibration": config.calibration.value})
    if args.qdq:
        save_qdq(result.qgraph, args.qdq)
    if args.json:
        _print_json(quantize_to_dict(result, out, args.qdq))
    else:
        quantize_report(result, out, args.qdq)
    return 0


MAX_WORKERS = 256  # local sweep processes: each imports numpy/onnx (about 150 MB)


def _check_output_file(path: Path, *sources: Path) -> None:
    """An output file may be created or replace a regular file: never a device, folder or symlink
    (replacing /dev/null as root), never one of the command's input files."""
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: output folder {path.parent} does not exist")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ConfigError(f"{path}: exists and is not a regular file; refusing to replace it")
    for source in sources:
        if path.exists() and source.exists() and path.resolve() == source.resolve():
            raise ConfigError(f"{path}: is an input of this command ({source}); choose another output file")


def _add_accelerator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="start from a named config: edge8 (default), mid16, tpu128")
    p.add_argument("--config", help="TOML accelerator config (keys of AcceleratorConfig, optional preset = ...)")
    p.add_argument("--array", help="ROWSxCOLS, e.g. 16x16")
    p.add_argument("--dataflow", help="os, ws or is")
    p.add_argument("--sram", help="IFMAP,FILTER,OFMAP[,ACC] buffer sizes in KiB, e.g. 64,64,32 or 64,64,32,16 "
                   "(each double-buffered)")
    # numbers are parsed by hwsim.config (not argparse) so a bad one is one line naming the option and its range
    p.add_argument("--acc-sram", metavar="KIB", help="accumulator SRAM in KiB: int32 partial sums of K-split tiles, "
                   "double-buffered (1..1048576)")
    p.add_argument("--dram-bw", help="DRAM link bytes per cycle (0.001..65536)")
    p.add_argument("--dram-latency", metavar="CYCLES", help="cycles from a DMA transfer's first request to its "
                   "first data (0..1000000)")
    p.add_argument("--dram-request", metavar="BYTES", help="DRAM request (burst) size in bytes; transfers take "
                   "whole requests (1..1048576)")
    p.add_argument("--freq", help="clock in MHz (0.001..100000, i.e. 1 kHz..100 GHz)")
    p.add_argument("--acc-bits", help="accumulator width in bits (17..64)")
    p.add_argument("--lanes", help="vector-unit lanes (1..4096)")
    p.add_argument("--fuse-pool", action="store_true", default=None,
                   help="pool a conv's output tiles on the vector unit on their way to memory (non-overlapping "
                        "MaxPool/AveragePool right after a conv): the unpooled output is never stored")


def accelerator_config(args: argparse.Namespace):
    from hwsim.config import DEFAULT_PRESET, load_config, override, parse_float, parse_int, preset
    if args.config and args.preset:
        raise ConfigError("give --config or --preset, not both (a config file may name its own preset)")
    base = load_config(args.config) if args.config else preset(args.preset or DEFAULT_PRESET)
    def number(text: str | None, option: str, parse):
        return None if text is None else parse(text, option)
    return override(base, array=args.array, dataflow=args.dataflow, sram=args.sram,
                    acc_sram_kib=number(args.acc_sram, "--acc-sram", parse_int),
                    dram_bytes_per_cycle=number(args.dram_bw, "--dram-bw", parse_float),
                    dram_latency_cycles=number(args.dram_latency, "--dram-latency", parse_int),
                    dram_request_bytes=number(args.dram_request, "--dram-request", parse_int),
                    clock_mhz=number(args.freq, "--freq", parse_float),
                    acc_bits=number(args.acc_bits, "--acc-bits", parse_int),
                    vector_lanes=number(args.lanes, "--lanes", parse_int), fuse_pool=args.fuse_pool)


def cmd_map(args: argparse.Namespace) -> int:
    from hwsim.analytical import map_graph
    from hwsim.config import MAX_BATCH, parse_int
    from hwsim.render import map_csv, map_table
    from hwsim.workload import load_model
    cfg = accelerator_config(args)
    args.batch = parse_int(args.batch, "--batch")  # parsed here, not by argparse: a bad one is one line
    if not 1 <= args.batch <= MAX_BATCH:
        raise ConfigError(f"--batch {args.batch}: must be an integer in 1..{MAX_BATCH}")
    if args.engine == "cycle" and args.timing != "hwsim":
        raise ConfigError("--engine cycle simulates hwsim's own array; --timing scalesim is analytical only")
    graph = load_model(args.model)
    note = ""
    if args.engine == "cycle":
        import numpy as np

        from hwsim.cycle import check_cycle_memory, run_cycle
        from hwsim.workload import quantized, sample_inputs
        from quant.int_exec import run_int
        check_cycle_memory(graph, cfg, args.batch)  # before calibration and input loading, not after
        qgraph = quantized(graph, Path(args.model), Path(args.calib_data) if args.calib_data else None)
        x_q, source = sample_inputs(qgraph, args.batch, Path(args.data) if args.data else None)
        run = run_cycle(qgraph, x_q, cfg, batch=args.batch)
        exact = bool(np.array_equal(run.output, run_int(qgraph, x_q, acc_type=run.acc_type)))
        result = run.result
        note = (f"cycle engine: stepped {run.simulated_cycles:,} array cycles on the PE grid and every tile's "
                f"DMA on its queue, on {source}; outputs {'bit-exact with' if exact else 'DIFFER from'} quant's "
                "integer executor")
    else:
        result = map_graph(graph, cfg, batch=args.batch, timing_model=args.timing)
    if args.json:
        doc = result.to_dict()
        if args.engine == "cycle":
            doc["bit_exact"] = exact
        _print_json(doc)
    elif args.csv:
        sys.stdout.write(map_csv(result))
    else:
        map_table(result, note=note)
    return 0 if args.engine != "cycle" or exact else 1


def cmd_report(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_bars
    from hwsim.report.build import ReportJob, build_summary
    from hwsim.report.write import check_output, write_report
    from quant.data import Preprocess
    model = Path(args.model)
    out = Path(args.out) if args.out else Path("reports") / model.stem
    job = ReportJob(model=model, config=accelerator_config(args), data_dir=Path(args.data) if args.data else None,
                    calib_data=Path(args.calib_data) if args.calib_data else None, images=args.images,
                    preprocess=Preprocess(args.mean, args.std), device=args.device, rtl_images=args.rtl,
                    command=" ".join(["hwsim", *args.argv])).validate()
    check_output(out)  # before minutes of work, not after
    rtl_check = None
    if args.rtl:
        from rtl.e2e import report_check  # hwsim stays free of rtl imports; the CLI wires the hook
        rtl_check = report_check(args.rtl_simulator)
    with progress_bars(enabled=not args.json) as progress:
        summary = build_summary(job, progress, rtl_check)
        written = write_report(summary, out)
    if args.json:
        _print_json(summary)
    else:
        _report_lines(summary, out, written)
    rtl = summary["rtl"]
    return 1 if rtl and not (rtl["bit_exact"] and rtl["cycle_exact"]) else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import os

    from hwsim.progress import progress_bars
    from hwsim.sweep.run import SweepJob, run_sweep
    from hwsim.sweep.space import load_space
    if args.workers is not None and args.dask:
        raise ConfigError("give --workers or --dask, not both")
    if not args.space and not args.axis:
        raise ConfigError("nothing to sweep: give --space FILE.toml and/or --axis KEY=V1,V2,...")
    from hwsim.config import parse_int
    max_points = None if args.max_points is None else parse_int(args.max_points, "--max-points")
    if max_points is not None and max_points < 1:
        raise ConfigError(f"--max-points {max_points}: must be at least 1")
    workers = None if args.workers is None else parse_int(args.workers, "--workers")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers {workers}: must be in 1..{MAX_WORKERS}")
    chunk = None if args.chunk is None else parse_int(args.chunk, "--chunk")
    if chunk is not None and not 1 <= chunk <= 1_000_000:
        raise ConfigError(f"--chunk {chunk}: must be in 1..1000000 points per task")
    space = load_space(args.space, args.axis or (), max_points)
    model = Path(args.model)
    job = SweepJob(model=model, space=space, out=Path(args.out) if args.out else Path("sweeps") / model.stem,
                   workers=workers if workers is not None else (os.cpu_count() or 1), dask=args.dask,
                   synth=args.synth, data_dir=Path(args.data) if args.data else None,
                   calib_data=Path(args.calib_data) if args.calib_data else None, chunk=chunk)
    synth_fn = None
    if args.synth:
        from rtl.synth import sweep_cost  # hwsim stays free of rtl imports; the CLI wires the hook
        synth_fn = sweep_cost
    with progress_bars(enabled=not args.json, unit="points") as progress:
        try:
            result = run_sweep(job, progress, synth_fn)
        except KeyboardInterrupt:
            sys.stderr.write(f"hwsim: interrupted; finished points are saved in {job.out / 'results.csv'}: "
                             "rerun the same command to resume\n")
            return 130
    if args.json:
        _print_json({"runner": result.runner, "points": result.total_points, "evaluated": result.evaluated,
                     "resumed": result.resumed, "points_per_s": result.points_per_s,
                     "minimize": list(result.minimize), "maximize": list(result.maximize),
                     "pareto": result.front, "files": [str(f) for f in result.files]})
    else:
        from hwsim.render import sweep_report
        sweep_report(result)
    return 0


def _report_lines(s: dict, out: Path, written: list[Path]) -> None:
    acc, tot = s["accuracy"], s["totals"]
    if acc:
        print(f"top-1 on {acc['images']:,} images: float32 {acc['float_top1_pct']:.2f} % "
              f"({s['float_device']['device']}), int8 {acc['int8_top1_pct']:.2f} % "
              f"(drop {acc['drop_pts']:.2f} pts, agreement {acc['agreement_pct']:.2f} %)")
    else:
        print(s["data"]["note"])
    print(f"{tot['total_cycles']:,} cycles = {tot['latency_us']:,.1f} µs at {tot['clock_mhz']:g} MHz, "
          f"utilization {tot['utilization_pct']:.1f} %")
    if s["rtl"]:
        r = s["rtl"]
        print(f"RTL on {r['images']} images ({r['simulator']}): "
              f"{'bit-exact' if r['bit_exact'] else 'NOT bit-exact'}, "
              f"{'GEMM compute cycles exact' if r['cycle_exact'] else 'GEMM compute cycles DIFFER'}")
    plots = sum(1 for p in written if p.suffix == ".png")
    print(f"wrote {out / 'report.html'} (+ report.md, summary.json, {plots} plots) in {s['report']['wall_s']:.1f} s")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (its default prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"hwsim: error: {printable(message)} (try: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwsim", description="CNNs to int8 systolic-array accelerators: "
                                     "quantize, map, simulate, report.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="per-layer shapes, parameters, MACs and memory of an ONNX model")
    p.add_argument("model", help="ONNX file")
    _add_common(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("quantize", help="int8 integer-only quantization with measured accuracy")
    p.add_argument("model", help="ONNX file")
    p.add_argument("--calibration", choices=("minmax", "percentile", "mse"), default="minmax")
    p.add_argument("--percentile", type=float, default=99.99, help="for --calibration percentile (default 99.99)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    p.add_argument("--pow2", action="store_true", help="power-of-two requantization (shift only)")
    p.add_argument("--data", help="folder with Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)")
    p.add_argument("--calib-data", help=".npy/.npz of preprocessed float calibration inputs (N, C, H, W)")
    p.add_argument("--mean", type=float, default=0.0, help="input x = (pixel/255 - mean) / std (default 0)")
    p.add_argument("--std", type=float, default=1.0, help="(default 1)")
    p.add_argument("--images", type=int, default=10_000, help="test images to evaluate (default all 10,000)")
    p.add_argument("--no-eval", action="store_true", help="skip the accuracy evaluation")
    p.add_argument("--no-ort", action="store_true", help="skip the onnxruntime cross-check")
    p.add_argument("--out", help="quantized model .npz (default: MODEL.int8.npz beside the model)")
    p.add_argument("--qdq", help="also export a QDQ ONNX model here")
    _add_common(p)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("map", help="map a CNN onto the systolic array: cycles, utilization, memory per layer")
    p.add_argument("model", help="ONNX file, or a quantized .int8.npz from `hwsim quantize`")
    _add_accelerator_options(p)
    p.add_argument("--batch", default="1", help="images per inference, 1..1000000 (M = batch x output pixels)")
    p.add_argument("--engine", choices=("analytical", "cycle"), default="analytical",
                   help="closed form (default), or the register-level PE-grid simulation on real inputs")
    p.add_argument("--timing", choices=("hwsim", "scalesim"), default="hwsim",
                   help="our array's timing (default), or SCALE-Sim 3.0's compute cycles for comparison")
    p.add_argument("--data", help="Fashion-MNIST folder for the cycle engine's input images")
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) to quantize a non-Fashion-MNIST model")
    p.add_argument("--csv", action="store_true", help="print the per-layer table as CSV on stdout")
    _add_common(p)
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("report", help="float vs int8 accuracy, cycles, memory: report.html, report.md, summary.json")
    p.add_argument("model", help="float ONNX file")
    p.add_argument("--out", help="report folder (default reports/MODEL); replaced whole, never half-written")
    p.add_argument("--data", help="Fashion-MNIST-style IDX folder (default: the dataset-fashion-mnist package)")
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) for a non-Fashion-MNIST model")
    p.add_argument("--images", type=int, default=10_000, help="test images to measure (default all 10,000)")
    p.add_argument("--mean", type=float, default=0.0, help="input x = (pixel/255 - mean) / std (default 0)")
    p.add_argument("--std", type=float, default=1.0, help="(default 1)")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto",
                   help="float reference device: auto = CUDA when PyTorch sees a GPU (default), or cpu")
    p.add_argument("--rtl", type=int, default=0, metavar="N", help="also run N images through the generated RTL")
    p.add_argument("--rtl-simulator", choices=("icarus", "verilator"), default="verilator",
                   help="simulator for --rtl (default verilator: faster past a few images)")
    _add_accelerator_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sweep", help="design-space sweep: latency x cost x accuracy, Pareto front, resumable")
    p.add_argument("model", help="float ONNX file")
    p.add_argument("--space", help="TOML design space ([space] axes, [constraints], [pareto], [accuracy])")
    p.add_argument("--axis", action="append", metavar="KEY=V1,V2",
                   help="an axis on the command line (repeatable), e.g. --axis array=8x8,16x16 --axis dataflow=os,ws")
    p.add_argument("--out", help="sweep folder (default sweeps/MODEL); rerunning the same command resumes it")
    p.add_argument("--workers", help="local worker processes (default: one per core; 1 = in-process; at most 256)")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run on an existing Dask distributed scheduler")
    p.add_argument("--synth", choices=("ice40", "ecp5", "xilinx"),
                   help="FPGA cost per distinct array from Yosys (+ nextpnr Fmax), cached on disk")
    p.add_argument("--chunk", help="points per task (default: about 8 tasks per worker)")
    p.add_argument("--max-points", help="refuse spaces larger than this (default 1,000,000; also [limits] max_points)")
    p.add_argument("--data", help="Fashion-MNIST folder for per-bit-width accuracy")
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) for a non-Fashion-MNIST model")
    _add_common(p)
    p.set_defaults(func=cmd_sweep)

    from rtl.cli import add_parser as add_rtl_parser  # the Verilog commands live with the generators
    add_rtl_parser(sub)
    return parser


def _print_json(doc: dict) -> None:
    """One strict JSON document: a NaN or infinity anywhere is a bug, reported as one line, never
    printed as the non-JSON tokens NaN/Infinity."""
    try:
        text = json.dumps(doc, indent=2, allow_nan=False)
    except ValueError as err:
        raise HwsimError(f"internal error: the result holds a non-finite number ({err}); "
                         "nothing was printed, please report this") from None
    sys.stdout.write(text + "\n")


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(f"hwsim: warning: {printable(str(message))}\n")
    old = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in reports
    try:
        with _one_line_warnings():
            return args.func(args)
    except HwsimError as err:
        if args.debug:
            raise
        sys.stderr.write(f"hwsim: error: {printable(str(err))}\n")
        return 2
    except OSError as err:  # disk full, permission denied, a file vanishing mid-run: the OS's reason in one line
        if args.debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        sys.stderr.write(f"hwsim: error: {where}{err.strerror or type(err).__name__}\n")
        return 2
    except MemoryError:
        if args.debug:
            raise
        sys.stderr.write("hwsim: error: out of memory (a bug: hwsim bounds what it allocates; please report it)\n")
        return 3
    except KeyboardInterrupt:
        sys.stderr.write("hwsim: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
