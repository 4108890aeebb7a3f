"""What the report measures on real inputs: float (PyTorch) vs int8 (integer executor)
accuracy, per-class accuracy, the confusion matrix, each layer's quantization error
(SQNR), and the float reference's latency and throughput on its device."""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from quant.evaluate import logits_tensor, sqnr_db
from quant.int_exec import quantize_input, run_int
from quant.ir import Graph
from quant.torch_exec import TorchModel

BATCH = 500


@dataclass(frozen=True)
class LayerError:
    """A layer's int8 output dequantized vs the float model's output of the same layer, over all
    measured images. The error accumulates from the input on: a drop in SQNR from one layer to the
    next is what that layer adds."""
    name: str
    sqnr_db: float
    max_abs_error: float  # in the tensor's real units
    scale: float  # one int8 step (LSB) of the layer's output


@dataclass(frozen=True)
class Predictions:
    images: int
    float_pred: np.ndarray | None  # argmax of the float logits (None without logits)
    int8_pred: np.ndarray | None
    layer_errors: tuple[LayerError, ...]


def measure_predictions(graph: Graph, qgraph: Graph, model: TorchModel, x: np.ndarray, classify: bool,
                        advance: Callable[[int], None] | None = None) -> Predictions:
    """One pass over x in batches: float tensors of every layer from PyTorch, int8 tensors from the
    integer executor; accumulates signal and noise power per layer and keeps both argmaxes."""
    logits = logits_tensor(graph)
    outputs = tuple(n.output for n in graph.nodes)
    quant_of = {n.output: n.quant.out for n in qgraph.nodes}
    signal = dict.fromkeys(outputs, 0.0)
    noise = dict.fromkeys(outputs, 0.0)
    worst = dict.fromkeys(outputs, 0.0)
    f_pred, q_pred = [], []
    import torch
    with torch.inference_mode():
        for start in range(0, len(x), BATCH):
            xb = x[start:start + BATCH]
            f_tensors = model.forward(torch.as_tensor(np.ascontiguousarray(xb), device=model.device.name), outputs)
            q_tensors = run_int(qgraph, quantize_input(xb, qgraph.input_quant), intermediate=True)
            for name, f_t in zip(outputs, f_tensors, strict=True):
                f = f_t.double().cpu().numpy()
                qp = quant_of[name]
                err = (q_tensors[name].astype(np.float64) - qp.zero_point) * qp.scale - f
                signal[name] += float(np.sum(f * f))
                noise[name] += float(np.sum(err * err))
                worst[name] = max(worst[name], float(np.max(np.abs(err))))
                if classify and name == logits:
                    f_pred.append(f.argmax(axis=1))
                    q_pred.append(q_tensors[name].argmax(axis=1))
            if advance:
                advance(len(xb))
    errors = tuple(LayerError(n.name, sqnr_db(signal[n.output], noise[n.output]), worst[n.output],
                              quant_of[n.output].scale) for n in graph.nodes)
    return Predictions(len(x), np.concatenate(f_pred) if classify else None,
                       np.concatenate(q_pred) if classify else None, errors)


def confusion(labels: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), pred.astype(np.int64)), 1)
    return counts


@dataclass(frozen=True)
class FloatTiming:
    batch: int
    repeats: int
    latency_ms: float  # median wall time of one forward pass of `batch` images
    throughput: float  # images/s at that median

    def to_dict(self) -> dict:
        return {"batch": self.batch, "repeats": self.repeats, "latency_ms": self.latency_ms,
                "throughput_images_per_s": self.throughput}


def time_float(model: TorchModel, x: np.ndarray, batch: int, repeats: int, budget_s: float = math.inf) -> FloatTiming:
    """Median of `repeats` timed passes, fewer (at least 3) when one pass would blow `budget_s`."""
    probe = model.time_inference(x, batch, 1, warmup=1)[0]
    repeats = max(3, min(repeats, int(budget_s / max(probe, 1e-9))))
    median = statistics.median(model.time_inference(x, batch, repeats, warmup=0))
    return FloatTiming(batch, repeats, 1e3 * median, batch / median)
