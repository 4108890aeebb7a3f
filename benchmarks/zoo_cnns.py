"""Today's CNNs through hwsim, one table: per zoo model (random weights, exported with torch's
legacy or dynamo exporter) the parameters and MACs (hwsim's, and whether they equal a PyTorch
forward-hook count), the float executor's largest error against onnxruntime (relative to the
largest logit), the int8 logits' SQNR against float on random-normal inputs (calibrated on 8 of
them, as `hwsim quantize --calib-data`), and the cycles `hwsim map` gives on edge8 and tpu128.

    python benchmarks/zoo_cnns.py [--exporter legacy] [--models googlenet,densenet121] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.analytical import map_graph
from hwsim.config import preset
from quant.analysis import summarize
from quant.evaluate import logits_tensor, predict_float, predict_int, sqnr_db
from quant.float_exec import run_float
from quant.pipeline import QuantJob, run_quantization

MODELS = ("googlenet", "inception_v3", "squeezenet1_0", "densenet121", "efficientnet_b0", "mobilenet_v2",
          "mobilenet_v3_small", "shufflenet_v2_x0_5", "regnetx_400mf", "mnasnet0_5")


def measure(name: str, exporter: str, folder: Path) -> str:
    import onnxruntime as ort

    from models.zoo import ZOO, build
    from tests.models.torch_macs import count_macs
    factory, chw = ZOO[name]
    path = build(name, folder, exporter)
    rng = np.random.default_rng(2)
    calib = folder / f"{name}.npy"
    np.save(calib, rng.standard_normal((8, *chw), dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_quantization(QuantJob(model=path, calib_data=calib, evaluate=False))
    graph, qgraph = result.graph, result.qgraph
    s = summarize(graph)
    hooks = count_macs(factory(), chw)
    x = rng.standard_normal((2, *chw), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(2)])
    err = float(np.abs(run_float(graph, x) - want).max() / np.abs(want).max())
    f = predict_float(graph, x).astype(np.float64)
    out = qgraph.producer(logits_tensor(qgraph)).quant.out
    q = (predict_int(qgraph, x).astype(np.float64) - out.zero_point) * out.scale
    sqnr = sqnr_db(float(np.sum(f * f)), float(np.sum((q - f) ** 2)))
    cycles = [map_graph(qgraph, preset(p)).total_cycles for p in ("edge8", "tpu128")]
    return (f"| {name} | {exporter} | {s.total_params / 1e6:.2f} M | {s.total_macs / 1e6:,.0f} M | "
            f"{'yes' if s.total_macs == hooks else f'NO ({hooks:,})'} | {err:.1e} | {sqnr:.1f} | "
            f"{cycles[0]:,} | {cycles[1]:,} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exporter", choices=("legacy", "dynamo"), default="legacy")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    lines = ["| model | exporter | params | MACs | = hook count | float vs ORT | int8 SQNR dB | edge8 cycles | "
             "tpu128 cycles |", "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            lines.append(measure(name, args.exporter, Path(tmp)))
            print(lines[-1], flush=True)
    lines.append(f"\n({time.time() - t0:.0f} s)")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
