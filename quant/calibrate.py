"""Calibration: the real range of every tensor, from the float executor on sample inputs.

Methods:
- minmax: the observed min and max.
- percentile: the (100-p)th and p-th percentiles of a 2048-bin histogram.
- mse: the range that minimises the expected squared error of int8
  quantize->dequantize over the histogram (searching shrink factors of the
  min/max range), the usual choice for long-tailed activations.
"""
from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np

from quant.float_exec import run_float
from quant.ir import Graph
from quant.limits import fitting_batch

BINS = 2048
Ranges = dict[str, tuple[float, float]]


class Method(enum.Enum):
    MINMAX = "minmax"
    PERCENTILE = "percentile"
    MSE = "mse"


def _batches(images: np.ndarray, batch: int):
    for start in range(0, len(images), batch):
        yield images[start:start + batch]


def collect_ranges(graph: Graph, images: np.ndarray, method: Method = Method.MINMAX, percentile: float = 99.99,
                   batch: int = 128, progress: Callable[[int], None] | None = None) -> Ranges:
    """Range (lo, hi) of the graph input and of every node output over `images`."""
    batch = fitting_batch(graph, batch)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for chunk in _batches(images, batch):
        for name, t in run_float(graph, chunk, intermediate=True).items():
            lo[name] = min(lo.get(name, np.inf), float(t.min()))
            hi[name] = max(hi.get(name, -np.inf), float(t.max()))
        if progress:
            progress(len(chunk))
    if method is Method.MINMAX:
        return {name: (lo[name], hi[name]) for name in lo}
    hists = {name: np.zeros(BINS, dtype=np.int64) for name in lo}
    for chunk in _batches(images, batch):
        for name, t in run_float(graph, chunk, intermediate=True).items():
            hists[name] += np.histogram(t, bins=BINS, range=(lo[name], max(hi[name], lo[name] + 1e-12)))[0]
        if progress:
            progress(len(chunk))
    pick = _percentile_range if method is Method.PERCENTILE else _mse_range
    return {name: pick(hists[name], lo[name], hi[name], percentile) for name in lo}


def _centers(lo: float, hi: float) -> np.ndarray:
    edges = np.linspace(lo, max(hi, lo + 1e-12), BINS + 1)
    return (edges[:-1] + edges[1:]) / 2


def _percentile_range(hist: np.ndarray, lo: float, hi: float, percentile: float) -> tuple[float, float]:
    cdf = np.cumsum(hist) / max(hist.sum(), 1)
    centers = _centers(lo, hi)
    new_lo = lo if lo >= 0 else float(centers[np.searchsorted(cdf, 1 - percentile / 100)])
    new_hi = float(centers[min(np.searchsorted(cdf, percentile / 100), BINS - 1)])
    return min(new_lo, lo if lo >= 0 else 0.0), max(new_hi, 0.0)


def quant_error(values: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> float:
    """Expected squared error of affine int8 quantization of `values` with range [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 or 1.0
    zp = np.round(-128 - lo / scale)
    q = np.clip(np.round(values / scale) + zp, -128, 127)
    return float(np.sum(weights * (values - (q - zp) * scale) ** 2))


def _mse_range(hist: np.ndarray, lo: float, hi: float, percentile: float) -> tuple[float, float]:
    centers = _centers(lo, hi)
    best = (quant_error(centers, hist, lo, hi), lo, hi)
    for f in np.linspace(0.3, 1.0, 71)[:-1]:
        err = quant_error(centers, hist, lo * f, hi * f)
        if err < best[0]:
            best = (err, lo * f, hi * f)
    return best[1], best[2]
