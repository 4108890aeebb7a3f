"""hwsim's `--timing scalesim` against the real SCALE-Sim 3.0, layer by layer.

For every model x array x dataflow, runs SCALE-Sim (CALC bandwidth, its own
interpreter) on the model's Conv/Dense layers and compares its per-layer
'Total Cycles' with hwsim.timing.scalesim_compute_cycles; also prints hwsim's
own timing (fill/drain overlapped) beside it. Exits 1 on any mismatch.

    python3 -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim 'numpy<2.4'
    python benchmarks/scalesim_compare.py [--scalesim .venv-scalesim/bin/python] [--arrays 32x32,128x128]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hwsim import scalesim, timing
from hwsim.config import PRESETS, override
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from quant.ir import Op
from quant.onnx_import import load_onnx

SHIPPED = {"lenet": ROOT / "models" / "lenet.onnx"}
# the torch exporter of zoo models: the --dump layer names (tests/golden/scalesim_*.json) are its node
# names, and tests/hwsim/test_scalesim.py exports the models the same way to find them
ZOO_EXPORTER = "legacy"


def model_path(name: str, zoo_dir: Path) -> Path:
    if name in SHIPPED:
        return SHIPPED[name]
    folder = zoo_dir / ZOO_EXPORTER  # never a file another exporter wrote under the same name
    path = folder / f"{name}.onnx"
    if not path.exists():
        from models.zoo import build
        build(name, folder, exporter=ZOO_EXPORTER)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scalesim", default=str(ROOT / ".venv-scalesim" / "bin" / "python"),
                   help="python of the environment where scalesim is installed")
    p.add_argument("--models", default="lenet,alexnet,resnet18")
    p.add_argument("--arrays", default="32x32,128x128")
    p.add_argument("--dataflows", default="os,ws,is")
    p.add_argument("--zoo-dir", default=str(Path(tempfile.gettempdir()) / "hwsim-zoo"))
    p.add_argument("--dump", help="write every compared layer (GEMM dims, SCALE-Sim cycles) to this JSON file")
    p.add_argument("--with-dense", action="store_true", help="compare Dense layers too (as 1x1 convs)")
    args = p.parse_args(argv)
    if not Path(args.scalesim).exists():
        sys.exit(f"no SCALE-Sim interpreter at {args.scalesim}: see this script's docstring")

    print(f"{'model':9} {'array':8} {'df':3} {'layers':>6} {'match':>6} {'SCALE-Sim cycles':>17} "
          f"{'hwsim --timing scalesim':>24} {'hwsim timing':>13} {'ratio':>6} {'SCALE-Sim s':>12} {'hwsim ms':>9}")
    failures, dump = 0, []
    ops = GEMM_OPS if args.with_dense else (Op.CONV,)
    for name in args.models.split(","):
        graph = load_onnx(model_path(name, Path(args.zoo_dir)))
        for array in args.arrays.split(","):
            for df in args.dataflows.split(","):
                cfg = override(PRESETS["edge8"], array=array, dataflow=df)
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    theirs, skipped = scalesim.run(args.scalesim, graph, cfg, Path(tmp), ops)
                    their_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                plans = {n.name: plan(gemm_of(n), cfg) for n in graph.nodes if n.name in theirs}
                ours = {k: timing.scalesim_compute_cycles(v) for k, v in plans.items()}
                our_ms = 1e3 * (time.perf_counter() - t0)
                own = sum(timing.compute_cycles(v) for v in plans.values())
                match = sum(ours[k] == theirs[k] for k in theirs)
                dump += [{"model": name, "array": array, "dataflow": df, "layer": k, "m": plans[k].gemm.m,
                          "k": plans[k].gemm.k, "n": plans[k].gemm.n, "groups": plans[k].gemm.groups,
                          "scalesim_cycles": theirs[k]} for k in theirs]
                failures += match != len(theirs)
                total = sum(theirs.values())
                print(f"{name:9} {array:8} {df:3} {len(theirs):6} {match:>3}/{len(theirs):<2} {total:17,} "
                      f"{sum(ours.values()):24,} {own:13,} {own / total:6.2f} {their_s:12.1f} {our_ms:9.2f}")
                for k in theirs:
                    if ours[k] != theirs[k]:
                        print(f"    MISMATCH {k}: SCALE-Sim {theirs[k]:,} vs hwsim {ours[k]:,}")
                if skipped:
                    print(f"    not expressible in SCALE-Sim, left out: {', '.join(skipped)}")
                sys.stdout.flush()
    if args.dump:
        Path(args.dump).write_text(json.dumps({"scalesim": "3.0.0", "mode": "CALC", "layers": dump}, indent=1) + "\n")
    print("PASS: every layer matches" if not failures else f"FAIL: {failures} runs with mismatching layers")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
