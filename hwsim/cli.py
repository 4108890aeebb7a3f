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
    for path in (out, Path(args.qdq) if args.qdq else None):
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"{path}: output folder {path.parent} does not exist")
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


def accelerator_config(args: argparse.Namespace):
    from hwsim.config import DEFAULT_PRESET, load_config, override, preset
    if args.config and args.preset:
        raise ConfigError("give --config or --preset, not both (a config file may name its own preset)")
    base = load_config(args.config) if args.config else preset(args.preset or DEFAULT_PRESET)
    return override(base, array=args.array, dataflow=args.dataflow, sram=args.sram,
                    dram_bytes_per_cycle=args.dram_bw, clock_mhz=args.freq, acc_bits=args.acc_bits,
                    vector_lanes=args.lanes)


def cmd_map(args: argparse.Namespace) -> int:
    from hwsim.analytical import map_graph
    from hwsim.render import map_csv, map_table
    from hwsim.workload import load_model
    cfg = accelerator_config(args)
    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch}: must be at least 1")
    if args.engine == "cycle" and args.timing != "hwsim":
        raise ConfigError("--engine cycle simulates hwsim's own array; --timing scalesim is analytical only")
    graph = load_model(args.model)
    note = ""
    if args.engine == "cycle":
        import numpy as np

        from hwsim.cycle import run_cycle
        from hwsim.workload import quantized, sample_inputs
        from quant.int_exec import run_int
        qgraph = quantized(graph, Path(args.model), Path(args.calib_data) if args.calib_data else None)
        x_q, source = sample_inputs(qgraph, args.batch, Path(args.data) if args.data else None)
        run = run_cycle(qgraph, x_q, cfg, batch=args.batch)
        exact = bool(np.array_equal(run.output, run_int(qgraph, x_q, acc_type=run.acc_type)))
        result = run.result
        note = (f"cycle engine: stepped {run.simulated_cycles:,} array cycles on {source}; outputs "
                f"{'bit-exact with' if exact else 'DIFFER from'} quant's integer executor")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwsim", description="CNNs to int8 systolic-array accelerators: "
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
    p.add_argument("--preset", help="start from a named config: edge8 (default), mid16, tpu128")
    p.add_argument("--config", help="TOML accelerator config (keys of AcceleratorConfig, optional preset = ...)")
    p.add_argument("--array", help="ROWSxCOLS, e.g. 16x16")
    p.add_argument("--dataflow", help="os, ws or is")
    p.add_argument("--sram", help="IFMAP,FILTER,OFMAP buffer sizes in KiB, e.g. 64,64,32 (each double-buffered)")
    p.add_argument("--dram-bw", type=float, help="DRAM link bytes per cycle")
    p.add_argument("--freq", type=float, help="clock in MHz")
    p.add_argument("--acc-bits", type=int, help="accumulator width in bits")
    p.add_argument("--lanes", type=int, help="vector-unit lanes")
    p.add_argument("--batch", type=int, default=1, help="images per inference (M = batch x output pixels)")
    p.add_argument("--engine", choices=("analytical", "cycle"), default="analytical",
                   help="closed form (default), or the register-level PE-grid simulation on real inputs")
    p.add_argument("--timing", choices=("hwsim", "scalesim"), default="hwsim",
                   help="our array's timing (default), or SCALE-Sim 3.0's compute cycles for comparison")
    p.add_argument("--data", help="Fashion-MNIST folder for the cycle engine's input images")
    p.add_argument("--calib-data", help="calibration inputs (.npy/.npz) to quantize a non-Fashion-MNIST model")
    p.add_argument("--csv", action="store_true", help="print the per-layer table as CSV on stdout")
    _add_common(p)
    p.set_defaults(func=cmd_map)

    from rtl.cli import add_parser as add_rtl_parser  # the Verilog commands live with the generators
    add_rtl_parser(sub)
    return parser


def _print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(f"hwsim: warning: {message}\n")
    old = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _one_line_warnings():
            return args.func(args)
    except HwsimError as err:
        if args.debug:
            raise
        sys.stderr.write(f"hwsim: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("hwsim: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
