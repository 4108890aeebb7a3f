"""The quantization job behind `hwsim quantize`: load -> calibrate -> quantize ->
(evaluate float vs int8 on the test set, cross-check in onnxruntime) -> save."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from quant.calibrate import Method, collect_ranges
from quant.data import (
    Preprocess,
    calibration_pixels,
    check_calibration,
    fashion_available,
    load_array,
    load_fashion_mnist,
)
from quant.errors import DataError
from quant.evaluate import OrtAgreement, logits_tensor, ort_agreement, predict_float, predict_int, top1
from quant.ir import Graph
from quant.onnx_import import load_onnx
from quant.quantize import QuantConfig, quantize

SHIPPED_CALIBRATION = Path(__file__).resolve().parent.parent / "models" / "lenet_calib.npz"
FASHION_SHAPE = (1, 1, 28, 28)

# Task(label, total) -> advance(n); the CLI passes a rich progress bar, tests pass nothing.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(label: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass(frozen=True)
class QuantJob:
    model: Path
    config: QuantConfig = field(default_factory=QuantConfig)
    preprocess: Preprocess = field(default_factory=Preprocess)
    data_dir: Path | None = None
    calib_data: Path | None = None
    images: int = 10_000
    evaluate: bool = True
    cross_check: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.images, int) or isinstance(self.images, bool) or self.images < 1:
            raise DataError(f"--images {self.images!r}: must be a positive number of test images")


@dataclass(frozen=True)
class QuantResult:
    graph: Graph
    qgraph: Graph
    calibration_images: int
    images: int = 0
    float_top1: float | None = None
    int8_top1: float | None = None
    agreement: float | None = None  # float vs int8 argmax agreement
    ort: tuple[OrtAgreement, ...] = field(default_factory=tuple)
    note: str = ""


def calibration_inputs(job: QuantJob, graph: Graph) -> np.ndarray:
    """Float calibration batch: --calib-data, else 512 Fashion-MNIST training images."""
    want = graph.input_shape[1:]
    if job.calib_data is not None:
        x = load_array(job.calib_data)
        if x.ndim != len(graph.input_shape) or x.shape[1:] != want or len(x) == 0:
            raise DataError(f"{job.calib_data}: calibration data has shape {x.shape}, model input needs (N, "
                            f"{', '.join(map(str, want))})")
        expected = None
        if graph.input_shape == FASHION_SHAPE:  # the documented preprocessing of this model's data
            expected = tuple(float(v) for v in job.preprocess(np.array([[[0]], [[255]]], dtype=np.uint8)).ravel())
        check_calibration(x, str(job.calib_data), (min(expected), max(expected)) if expected else None)
        return x
    if graph.input_shape != FASHION_SHAPE:
        raise DataError(f"model input is {'x'.join(map(str, want))}, not Fashion-MNIST's 1x28x28: "
                        "pass --calib-data FILE.npy with preprocessed calibration inputs")
    return job.preprocess(calibration_pixels(job.data_dir, SHIPPED_CALIBRATION))


def run_quantization(job: QuantJob, progress: ProgressFactory = _no_progress) -> QuantResult:
    graph = load_onnx(job.model)
    calib = calibration_inputs(job, graph)
    passes = 1 if job.config.calibration is Method.MINMAX else 2
    ranges = collect_ranges(graph, calib, job.config.calibration, job.config.percentile,
                            progress=progress("calibrating", passes * len(calib)))
    qgraph = quantize(graph, ranges, job.config)
    result = QuantResult(graph=graph, qgraph=qgraph, calibration_images=len(calib))
    if not job.evaluate:
        return result
    if graph.input_shape != FASHION_SHAPE or graph.shape_of(logits_tensor(graph))[1:] != (10,):
        return replace(result, note="accuracy not measured: the test set is Fashion-MNIST (1x28x28 in, 10 classes out)")
    if job.data_dir is None and not fashion_available():
        return replace(result, note="accuracy not measured: no Fashion-MNIST test set (apt install "
                                  "dataset-fashion-mnist, or --data DIR)")
    pixels, labels = load_fashion_mnist("test", job.data_dir)
    pixels, labels = pixels[:job.images], labels[:job.images]
    x = job.preprocess(pixels)
    f_logits = predict_float(graph, x, progress=progress("float model", len(x)))
    q_logits = predict_int(qgraph, x, progress=progress("int8 model", len(x)))
    ort = ()
    if job.cross_check:
        ort = tuple(ort_agreement(qgraph, x, labels, q_logits, level) for level in ("basic", "all"))
    return replace(result, images=len(x), float_top1=top1(f_logits, labels), int8_top1=top1(q_logits, labels),
                 agreement=float(np.mean(f_logits.argmax(1) == q_logits.argmax(1))), ort=ort)

