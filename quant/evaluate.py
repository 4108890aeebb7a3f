"""Accuracy of the float and integer executors, and agreement with onnxruntime
running our QDQ export. Batched, with an optional progress callback."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from quant.float_exec import run_float
from quant.int_exec import quantize_input, run_int
from quant.ir import Graph, Op
from quant.limits import fitting_batch
from quant.qdq_export import to_qdq_model

Progress = Callable[[int], None] | None


def logits_tensor(graph: Graph) -> str:
    """The tensor top-1 is read from: the input of a trailing Softmax (monotonic), else the output."""
    last = graph.producer(graph.output)
    return last.inputs[0] if last.op is Op.SOFTMAX else graph.output


def predict_float(graph: Graph, x: np.ndarray, batch: int = 500, progress: Progress = None) -> np.ndarray:
    name, out = logits_tensor(graph), []
    batch = fitting_batch(graph, batch)
    for start in range(0, len(x), batch):
        out.append(run_float(graph, x[start:start + batch], intermediate=True)[name])
        if progress:
            progress(len(out[-1]))
    return np.concatenate(out)


def predict_int(qgraph: Graph, x: np.ndarray, batch: int = 500, progress: Progress = None) -> np.ndarray:
    """int8 logits of float input x: quantized once at the boundary, then integer-only."""
    name, out = logits_tensor(qgraph), []
    batch = fitting_batch(qgraph, batch)
    for start in range(0, len(x), batch):
        x_q = quantize_input(x[start:start + batch], qgraph.input_quant)
        out.append(run_int(qgraph, x_q, intermediate=True)[name])
        if progress:
            progress(len(out[-1]))
    return np.concatenate(out)


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """10 log10(signal / noise); +inf when the int8 tensor is exact, -inf for an all-zero signal."""
    if noise_power == 0.0:
        return math.inf
    if signal_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


@dataclass(frozen=True)
class OrtAgreement:
    top1_agreement: float      # share of images where ORT's and our argmax agree
    within_1lsb: float         # share of logits within +-1 LSB of ours
    exact: float               # share of logits bit-identical
    ort_top1: float            # ORT's own accuracy on the same images
    optimization: str


def ort_agreement(qgraph: Graph, x: np.ndarray, labels: np.ndarray, ours: np.ndarray,
                  level: str = "basic") -> OrtAgreement:
    """Run our QDQ export in onnxruntime and compare its int8 logits with ours.

    level 'basic' keeps ONNX's QDQ semantics (float op between Q and DQ); 'all'
    lets ORT fuse QDQ into its int8 kernels (on AVX2 without VNNI these saturate
    int16 pair sums, a known ORT/MLAS limitation, and drift by several LSB)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    opts.log_severity_level = 3
    model = to_qdq_model(_drop_softmax(qgraph))
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    real = np.concatenate([session.run(None, {qgraph.input_name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    out_q = qgraph.producer(logits_tensor(qgraph)).quant.out
    theirs = np.rint(real / out_q.scale) + out_q.zero_point
    diff = np.abs(theirs - ours.astype(np.int64))
    return OrtAgreement(float(np.mean(theirs.argmax(1) == ours.argmax(1))), float(np.mean(diff <= 1)),
                        float(np.mean(diff == 0)), top1(real, labels), level)


def _drop_softmax(graph: Graph) -> Graph:
    name = logits_tensor(graph)
    if name == graph.output:
        return graph
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.output != graph.output), output=name)
