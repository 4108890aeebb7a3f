"""Integer executor speed: the reference int executor vs the exact float-BLAS kernels.

Columns: images/s of the float executor (float32 BLAS), the integer executor with its GEMMs and
requantization written plainly in int64 (quant.int_reference: the executor before the BLAS
kernels), the integer executor as it is (exact_matmul / int_conv_gemm / int_depthwise_conv /
requantize_fast of quant.kernels; outputs must be bit-identical to the plain one), and onnxruntime
on the QDQ export (ORT_ENABLE_ALL, int8 kernels).
One thread everywhere; each figure the median of --repeats timed runs after one warm-up, the
columns' runs interleaved round-robin (the machine is shared and noisy).
Models: ResNet-18 and vgg_small_bn (models/zoo.py: 3x32x32, 6 conv+BN+ReLU, 3 max-pools, 2 FC),
random weights, calibrated on 8 random inputs.

    python benchmarks/int_exec_speed.py [--repeats 3] [--out benchmarks/results/int_exec_speed.txt]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import quant.int_exec as ie
from quant.calibrate import collect_ranges
from quant.float_exec import run_float
from quant.int_reference import plain_kernels
from quant.onnx_import import load_onnx
from quant.quantize import quantize

# --- models ---------------------------------------------------------------------------------------

def zoo_model(name: str, folder: Path) -> Path:
    from models.zoo import build
    return build(name, folder, "legacy")


# --- timing ---------------------------------------------------------------------------------------

def interleaved_rates(fns: dict, batch: int, repeats: dict) -> tuple[dict, dict]:
    """images/s of each fn, median over its repeats; the runs are interleaved round-robin so the
    (shared, noisy) machine's slow spells hit every column alike. One untimed warm-up each."""
    outs = {name: fn() for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for i in range(max(repeats.values())):
        for name, fn in fns.items():
            if i < repeats[name]:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: batch / statistics.median(ts) for name, ts in times.items()}, outs


def run_plain(qgraph, x_q):
    with plain_kernels():
        return ie.run_int(qgraph, x_q)


def ort_session(qgraph):
    import onnxruntime as ort

    from quant.qdq_export import to_qdq_model

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(to_qdq_model(qgraph).SerializeToString(), opts, providers=["CPUExecutionProvider"])


def bench_model(name: str, path: Path, batches: list[int], repeats: int, old_repeats: int) -> list[tuple]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = load_onnx(path)
    rng = np.random.default_rng(0)
    calib = rng.random((8, *graph.input_shape[1:]), dtype=np.float32)
    qgraph = quantize(graph, collect_ranges(graph, calib))
    session = ort_session(qgraph)
    rows = []
    for batch in batches:
        x = rng.random((batch, *graph.input_shape[1:]), dtype=np.float32)
        x_q = ie.quantize_input(x, qgraph.input_quant)
        fns = {"float": lambda x=x: run_float(graph, x), "old": lambda x_q=x_q: run_plain(qgraph, x_q),
               "new": lambda x_q=x_q: ie.run_int(qgraph, x_q),
               "ort": lambda x=x: session.run(None, {qgraph.input_name: x})}
        rates, outs = interleaved_rates(fns, batch, {"float": repeats, "old": old_repeats, "new": repeats,
                                                     "ort": repeats})
        r_float, r_old, r_new, r_ort = (rates[k] for k in ("float", "old", "new", "ort"))
        y_old, y_new = outs["old"], outs["new"]
        rows.append((name, batch, r_float, r_old, r_new, r_ort, r_new / r_float,
                     bool(np.array_equal(y_old, y_new) and y_old.dtype == y_new.dtype)))
        print(_row(rows[-1]), flush=True)
    return rows


HEADER = (f"{'model':14s} {'batch':>5s} {'float/s':>8s} {'int-old/s':>9s} {'int-new/s':>9s} {'ORT-QDQ/s':>9s} "
          f"{'new/float':>9s} {'bit-identical':>13s}")


def _row(r) -> str:
    name, batch, f, old, new, ort_rate, ratio, same = r
    return (f"{name:14s} {batch:5d} {f:8.2f} {old:9.2f} {new:9.2f} {ort_rate:9.2f} {ratio:9.2f} "
            f"{'yes' if same else 'NO':>13s}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    import onnxruntime

    lines = [f"int executor speed, images/s, 1 thread, median of {args.repeats} runs after a warm-up (old int "
             f"executor on ResNet-18: {min(args.repeats, 2)}); {platform.machine()}, {os.cpu_count()} CPUs, "
             f"numpy {np.__version__}, onnxruntime {onnxruntime.__version__}", HEADER]
    print("\n".join(lines), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows += bench_model("vgg_small_bn", zoo_model("vgg_small_bn", tmp), [1, 32], args.repeats, args.repeats)
        rows += bench_model("resnet18", zoo_model("resnet18", tmp), [1, 8], args.repeats, min(args.repeats, 2))
    lines += [_row(r) for r in rows]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
