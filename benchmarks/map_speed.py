"""Speed of hwsim's engines, side by side in one run:

  0. the mapper: `hwsim map`'s analytical engine on VGG-16 and ResNet-50 at edge8 8x8 in OS/WS/IS,
     tile search included (median of repeats, caches cleared before each);
  1. the analytical engine mapping VGG-16 and ResNet-50 (every layer, median of repeats)
     against SCALE-Sim 3.0 on the same conv layers (one run; it walks every cycle in Python);
  2. the cycle-accurate engine on LeNet-5: simulated array cycles and MACs per wall second,
     one image and 100 images in lockstep.

Single-threaded numpy (the thread variables below are set before numpy loads).

    python benchmarks/map_speed.py [--scalesim .venv-scalesim/bin/python | --no-scalesim]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

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
from hwsim import scalesim
from hwsim.analytical import map_graph
from hwsim.config import PRESETS, override
from hwsim.cycle import run_cycle
from hwsim.workload import quantized, sample_inputs
from quant.ir import Op
from quant.onnx_import import load_onnx

LENET = ROOT / "models" / "lenet.onnx"


def zoo_graph(name: str, zoo_dir: Path):
    path = zoo_dir / f"{name}.onnx"
    if not path.exists():
        from models.zoo import build
        build(name, zoo_dir, exporter="legacy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_onnx(path)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scalesim", default=str(ROOT / ".venv-scalesim" / "bin" / "python"))
    p.add_argument("--no-scalesim", action="store_true")
    p.add_argument("--zoo-dir", default=str(Path(tempfile.gettempdir()) / "hwsim-zoo"))
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--models", default="vgg16,resnet50", help="networks for part 1")
    p.add_argument("--parts", default="0,1,2", help="which parts to run")
    args = p.parse_args(argv)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")

    parts = set(args.parts.split(","))
    cfg = override(PRESETS["tpu128"], dataflow="os")
    if "0" in parts:
        part0(args)
    if "1" in parts:
        part1(args, cfg)
    if "2" in parts:
        part2()
    return 0


def part0(args: argparse.Namespace) -> None:
    from hwsim import tiling
    print("\n0. the mapper: map every layer (tile search included) on edge8 8x8, median of "
          f"{min(args.repeats, 7)} runs")
    print(f"{'model':10} {'layers':>6} {'dataflow':>8} {'map s':>8} {'total cycles':>14} {'DRAM MB':>9}")
    for name in args.models.split(","):
        graph = zoo_graph(name, Path(args.zoo_dir))
        for df in ("os", "ws", "is"):
            cfg = override(PRESETS["edge8"], dataflow=df)

            def fresh(c=cfg, g=graph):
                tiling._chunk_cost.cache_clear()  # no help from an earlier run
                return map_graph(g, c)
            result = fresh()
            seconds = median_seconds(fresh, min(args.repeats, 7))
            dram = result.total("dram_read_bytes") + result.total("dram_write_bytes")
            print(f"{name:10} {len(result.layers):6} {df:>8} {seconds:8.3f} {result.total_cycles:14,} "
                  f"{dram / 1e6:9.1f}")
            sys.stdout.flush()


def part1(args: argparse.Namespace, cfg) -> None:
    print(f"\n1. analytical mapping vs SCALE-Sim 3.0, {cfg.array} OS array, conv layers (SCALE-Sim CALC mode)")
    print(f"{'model':10} {'layers':>6} {'hwsim map ms':>13} {'SCALE-Sim s':>12} {'speed-up':>10} {'same cycles':>12}")
    for name in args.models.split(","):
        graph = zoo_graph(name, Path(args.zoo_dir))
        ours_s = median_seconds(lambda g=graph: map_graph(g, cfg, timing_model="scalesim"), args.repeats)
        convs = [n for n in graph.nodes if n.op is Op.CONV]
        theirs_s, same = float("nan"), "-"
        if not args.no_scalesim:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                theirs, _ = scalesim.run(args.scalesim, graph, cfg, Path(tmp), ops=(Op.CONV,))
                theirs_s = time.perf_counter() - t0
            ours = {r.name: r.compute_cycles for r in map_graph(graph, cfg, timing_model="scalesim").layers}
            same = f"{sum(ours[k] == v for k, v in theirs.items())}/{len(theirs)}"
        print(f"{name:10} {len(convs):6} {1e3 * ours_s:13.2f} {theirs_s:12.1f} {theirs_s / ours_s:10,.0f} {same:>12}")
        sys.stdout.flush()



def part2() -> None:
    print("\n2. cycle-accurate engine on LeNet-5 (register-level PE grid, one core)")
    print("   (images > 1 run as identical arrays in lockstep; array-cycles/s counts every array's cycles)")
    print(f"{'array':7} {'df':3} {'images':>6} {'cycles/image':>13} {'wall s':>8} {'array-cycles/s':>15} "
          f"{'MACs/s':>12}")
    graph = load_onnx(LENET)
    qgraph = quantized(graph, LENET)
    macs = graph.total_macs
    for array, df in (("8x8", "os"), ("8x8", "ws"), ("8x8", "is"), ("16x16", "os")):
        acc = override(PRESETS["edge8"], array=array, dataflow=df)
        for images in (1, 100):
            x_q, _ = sample_inputs(qgraph, images)
            run = run_cycle(qgraph, x_q, acc)
            wall = median_seconds(lambda a=acc, x=x_q: run_cycle(qgraph, x, a), 3)
            print(f"{array:7} {df:3} {images:6} {run.simulated_cycles:13,} {wall:8.3f} "
                  f"{images * run.simulated_cycles / wall:15,.0f} {images * macs / wall:12,.0f}")
            sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
