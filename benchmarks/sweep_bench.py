"""Sweep throughput on one machine, in one run: the 1,080-point LeNet-5 space of
examples/lenet_sweep.toml (array shape x dataflow x SRAM, no synthesis; the issue's bar), and
examples/bits_sweep.toml (9 bit-width pairs to quantize and evaluate: work that parallelizes), on

  1. one worker (in-process), 2. a local process pool of N workers, 3. a Dask LocalCluster of
  N worker processes on loopback (the same code path as --dask tcp://HOST:PORT),

each into a fresh folder; prints wall time (whole sweep: start-up, accuracy, points, Pareto),
points/s of the evaluation phase, and checks the three results.csv hold identical rows.
Then times the CLI end to end (`hwsim sweep ...`, default runner) as a user runs it.

    python benchmarks/sweep_bench.py [--workers N] [--space FILE ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hwsim.sweep.run import SweepJob, run_sweep
from hwsim.sweep.space import load_space

LENET = ROOT / "models" / "lenet.onnx"


def rows_of(folder: Path) -> list[str]:
    lines = (folder / "results.csv").read_text().splitlines()
    return [lines[0], *sorted(lines[1:])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--space", nargs="+", default=[str(ROOT / "examples" / n) for n in ("lenet_sweep.toml",
                                                                                         "bits_sweep.toml")])
    args = ap.parse_args()
    ok = True
    for path in args.space:
        ok &= bench(path, args.workers)
    return 0 if ok else 1


def bench(space_path: str, workers: int) -> bool:
    space = load_space(space_path)
    table, outputs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        from distributed import LocalCluster
        runs = [("1 worker (in-process)", {"workers": 1}, None),
                (f"process pool, {workers} workers", {"workers": workers}, None),
                (f"Dask LocalCluster, {workers} workers", {}, workers)]
        for label, kwargs, dask_workers in runs:
            out = Path(tmp) / label.split()[0]
            cluster = None
            t0 = time.perf_counter()
            if dask_workers:
                cluster = LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
                kwargs = {"dask": cluster.scheduler_address}
            try:
                result = run_sweep(SweepJob(model=LENET, space=space, out=out, **kwargs))
            finally:
                if cluster is not None:
                    cluster.close()
            wall = time.perf_counter() - t0
            outputs[label] = rows_of(out)
            table.append((label, result.evaluated, wall, result.points_per_s, len(result.front)))
        same = len({tuple(v) for v in outputs.values()}) == 1
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hwsim.cli", "sweep", str(LENET), "--space", space_path,
                        "--out", str(Path(tmp) / "cli")], check=True, capture_output=True, cwd=ROOT)
        cli_wall = time.perf_counter() - t0
    print(f"\n# hwsim sweep: {table[0][1]:,} LeNet-5 points ({Path(space_path).name}), "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| runner | points | wall s (whole sweep) | points/s (evaluation) | Pareto points |")
    print("|---|---:|---:|---:|---:|")
    for label, n, wall, pps, front in table:
        print(f"| {label} | {n:,} | {wall:.1f} | {pps:,.0f} | {front} |")
    print(f"\nidentical results.csv rows on all three runners: {'yes' if same else 'NO'}")
    print(f"`hwsim sweep models/lenet.onnx --space {Path(space_path).name}` end to end (default runner, "
          f"progress, Pareto plot): {cli_wall:.1f} s")
    return same


if __name__ == "__main__":
    sys.exit(main())
