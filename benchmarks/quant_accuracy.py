"""int8 accuracy of hwsim's integer-only quantizer vs onnxruntime's quantize_static.

Same model, same 512 calibration images (the seeded Fashion-MNIST training subset),
same 10,000 test images, pixels/255 input. ORT: QDQ format, per-channel int8
weights, int8 activations, MinMax calibration. Prints a table; exits 1 if a bar
of issue 2 fails.

    python benchmarks/quant_accuracy.py [--model models/lenet.onnx] [--data DIR]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from quant.calibrate import collect_ranges
from quant.data import Preprocess, calibration_pixels, load_fashion_mnist
from quant.evaluate import ort_agreement, predict_float, predict_int, top1
from quant.onnx_import import load_onnx
from quant.pipeline import SHIPPED_CALIBRATION
from quant.quantize import quantize


class _Reader(CalibrationDataReader):
    def __init__(self, name: str, x: np.ndarray):
        self.items = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def ort_session_top1(path: Path, x: np.ndarray, labels: np.ndarray, level: ort.GraphOptimizationLevel) -> float:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    out = np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))]) \
        if s.get_inputs()[0].shape[0] == 1 else s.run(None, {name: x})[0]
    return top1(out, labels)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "lenet.onnx"))
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)
    pre = Preprocess()
    calib = pre(calibration_pixels(args.data, SHIPPED_CALIBRATION))
    pixels, labels = load_fashion_mnist("test", args.data)
    x = pre(pixels)

    t0 = time.perf_counter()
    graph = load_onnx(args.model)
    qgraph = quantize(graph, collect_ranges(graph, calib))
    t_quant = time.perf_counter() - t0
    float_top1 = top1(predict_float(graph, x), labels)
    t0 = time.perf_counter()
    ours_logits = predict_int(qgraph, x)
    t_eval = time.perf_counter() - t0
    ours_top1 = top1(ours_logits, labels)
    agree = ort_agreement(qgraph, x, labels, ours_logits, "basic")

    with tempfile.TemporaryDirectory() as tmp:
        ort_model = Path(tmp) / "ort_int8.onnx"
        name = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"]).get_inputs()[0].name
        quantize_static(args.model, str(ort_model), _Reader(name, calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        ort_float = ort_session_top1(Path(args.model), x, labels, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        ort_all = ort_session_top1(ort_model, x, labels, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        ort_basic = ort_session_top1(ort_model, x, labels, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)

    rows = [("float32 (hwsim numpy executor)", float_top1), ("float32 (onnxruntime)", ort_float),
            ("hwsim int8, integer-only", ours_top1),
            ("ORT quantize_static, int8 kernels (ENABLE_ALL)", ort_all),
            ("ORT quantize_static, QDQ semantics (ENABLE_BASIC)", ort_basic)]
    print(f"model {args.model}; {len(x):,} Fashion-MNIST test images; calibration {len(calib)} train images (seed 0)")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, numpy {np.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"{'method':<52} {'top-1':>8} {'drop (pts)':>11}")
    for label, acc in rows:
        print(f"{label:<52} {100 * acc:>7.2f}% {100 * (float_top1 - acc):>+11.2f}")
    print(f"hwsim int8 vs its QDQ export in onnxruntime: top-1 agreement {100 * agree.top1_agreement:.2f}%, "
          f"logits within +-1 LSB {100 * agree.within_1lsb:.2f}%, bit-exact {100 * agree.exact:.2f}%")
    print(f"hwsim: calibrate+quantize {t_quant:.2f} s, integer inference {t_eval:.2f} s "
          f"({len(x) / t_eval:,.0f} images/s, 1 process)")
    best_ort = max(ort_all, ort_basic)
    bars = {"drop <= 0.15 pts": float_top1 - ours_top1 <= 0.0015,
            "not below ORT quantize_static by > 0.05 pts": ours_top1 >= best_ort - 0.0005,
            "QDQ agreement >= 99.5%": agree.top1_agreement >= 0.995}
    for bar, ok in bars.items():
        print(f"bar: {bar}: {'PASS' if ok else 'FAIL'}")
    return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
