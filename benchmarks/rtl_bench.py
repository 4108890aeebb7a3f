"""RTL speed and FPGA cost, in one run:

  1. simulation speed of the tile engine on Icarus and Verilator under cocotb, and in the compiled
     Verilator harness (rtl/harness.cpp, what `hwsim rtl sim --simulator verilator` runs): one LeNet-5
     layer loaded once and run free from its preloaded memories (simulated cycles per wall second,
     median of runs), and the Python-driven load/read phases beside it (cocotb steps those one cycle
     at a time);
  2. Yosys synthesis of the PE array for 4x4, 8x8 and 16x16 on iCE40, ECP5 and Xilinx, with the
     nextpnr Fmax where an open place-and-route tool exists;
  3. the whole tile engine (array, LeNet-sized memories, controllers, requant pipelines) beside the
     bare array on ECP5, both behind the same registered-I/O wrapper: resources and Fmax, and the
     engine's Fmax as a fraction of the array's.

    python benchmarks/rtl_bench.py [--arrays 4x4,8x8,16x16] [--targets ice40,ecp5,xilinx] [--parts 1,2,3]
                                   [--engine-arrays 4x4,8x8]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hwsim.config import AcceleratorConfig, parse_array
from hwsim.mapping import gemm_of, plan
from hwsim.timing import compute_cycles
from hwsim.workload import quantized, sample_inputs
from quant.onnx_import import load_onnx
from rtl.e2e import gemm_jobs
from rtl.harness import HarnessDriver, build_harness
from rtl.layout import engine_for, words
from rtl.params import ArrayParams
from rtl.simulate import run_job
from rtl.synth import synthesize

LENET = ROOT / "models" / "lenet.onnx"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def part1(build_root: Path, repeats: int) -> None:
    print("\n1. tile-engine simulation speed (LeNet-5 conv2: M=100 K=150 N=16 on 8x8; cocotb 2.1, and the "
          "compiled Verilator harness)")
    print(f"{'simulator':10} {'engine cycles':>13} {'free-run cycles/s':>18} {'driven cycles/s':>16} "
          f"{'MACs/s':>12} {'build s':>8}")
    qgraph = quantized(load_onnx(LENET), LENET)
    x_q, _ = sample_inputs(qgraph, 1)
    jobs = gemm_jobs(qgraph, x_q)
    job = jobs[1]
    ap = ArrayParams(8, 8)
    engine = engine_for(jobs, ap)
    node = next(n for n in qgraph.nodes if n.name == job.name)
    expect = compute_cycles(plan(gemm_of(node, 1), AcceleratorConfig(rows=8, cols=8)))
    for simulator in ("icarus", "verilator"):
        t0 = time.perf_counter()
        run_job({"kind": "gemms", "engine": engine, "jobs": [job]}, simulator, build_root)  # build + warm
        build_s = time.perf_counter() - t0
        free, driven = [], []
        for _ in range(repeats):
            rep = run_job({"kind": "gemms", "engine": engine, "jobs": [job], "repeat_runs": 5}, simulator,
                          build_root)
            assert all(g["cycles"] == expect for g in rep["gemms"]), "engine cycles differ from hwsim's"
            free.append(rep["free_cycles"] / rep["free_s"])
            driven.append(rep["driven_cycles"] / rep["driven_s"])
        f, d = statistics.median(free), statistics.median(driven)
        print(f"{simulator:10} {expect:13,} {f:18,.0f} {d:16,.0f} {f * job.m * job.k * job.n / expect:12,.0f} "
              f"{build_s:8.1f}")
        sys.stdout.flush()
    binary, build_s = build_harness(engine, build_root)
    w = words(job, engine)
    free = []
    with HarnessDriver(binary) as drv:
        drv.layer(w)
        for _ in range(repeats):
            _, free0, s0 = drv.stats()
            for _ in range(20):
                _, cycles = drv.layer(w, weights=False, inputs=False)
                assert cycles == [expect], "engine cycles differ from hwsim's"
            _, free1, s1 = drv.stats()
            free.append((free1 - free0) / (s1 - s0))
    f = statistics.median(free)
    print(f"{'harness':10} {expect:13,} {f:18,.0f} {'-':>16} {f * job.m * job.k * job.n / expect:12,.0f} "
          f"{build_s:8.1f}")


def part2(arrays: list[str], targets: list[str], cache: Path | None) -> None:
    print("\n2. Yosys synthesis of the PE array (8-bit data, 32-bit accumulators); Fmax from nextpnr, "
          "registered-I/O wrapper, seed 1")
    print(f"{'array':6} {'target':7} {'LUT':>8} {'FF':>8} {'DSP':>5} {'BRAM':>5} {'carry':>7} {'Fmax MHz':>9} "
          f"{'synth s':>8}  note")
    for array in arrays:
        rows, cols = parse_array(array)
        for target in targets:
            r = synthesize(ArrayParams(rows, cols), target, cache)
            fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "-"
            print(f"{array:6} {target:7} {r.luts:8,} {r.ffs:8,} {r.dsps:5} {r.brams:5} {r.carries:7,} {fmax:>9} "
                  f"{r.synth_s:8.0f}  {r.device if r.fmax_mhz else r.pnr_note}")
            sys.stdout.flush()


def part3(arrays: list[str], cache: Path | None) -> None:
    print("\n3. the whole tile engine beside the bare array on ECP5 (LFE5U-85F; memories sized for LeNet-5; "
          "nextpnr seed 1, same wrapper)")
    print(f"{'array':6} {'design':40} {'LUT':>7} {'FF':>7} {'DSP':>5} {'BRAM':>5} {'Fmax MHz':>9} {'engine/array':>13}")
    qgraph = quantized(load_onnx(LENET), LENET)
    x_q, _ = sample_inputs(qgraph, 1)
    jobs = gemm_jobs(qgraph, x_q)
    for array in arrays:
        rows, cols = parse_array(array)
        ap = ArrayParams(rows, cols)
        bare = synthesize(ap, "ecp5", cache)
        engine = synthesize(engine_for(jobs, ap), "ecp5", cache)
        for r in (bare, engine):
            ratio = f"{engine.fmax_mhz / bare.fmax_mhz:13.1%}" if r is engine and r.fmax_mhz and bare.fmax_mhz else ""
            fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "-"
            print(f"{array:6} {r.design + ' ' + r.tag:40} {r.luts:7,} {r.ffs:7,} {r.dsps:5} {r.brams:5} {fmax:>9} "
                  f"{ratio}")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arrays", default="4x4,8x8,16x16")
    p.add_argument("--targets", default="ice40,ecp5,xilinx")
    p.add_argument("--parts", default="1,2,3")
    p.add_argument("--engine-arrays", default="4x4,8x8")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache-dir", help="synthesis cache (default ~/.cache/hwsim/synth)")
    args = p.parse_args(argv)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    parts = set(args.parts.split(","))
    if "1" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            part1(Path(tmp), args.repeats)
    if "2" in parts:
        part2(args.arrays.split(","), args.targets.split(","), Path(args.cache_dir) if args.cache_dir else None)
    if "3" in parts:
        part3(args.engine_arrays.split(","), Path(args.cache_dir) if args.cache_dir else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
