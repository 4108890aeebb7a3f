"""Float IR + calibrated ranges -> quantized IR (int8, integer-only).

Scheme (the bit-exact contract of quant.fixedpoint and quant.int_exec): weights int8 symmetric per output channel
(or per tensor), activations int8 affine with a zero point, bias int32 at scale
s_in*s_w, requantization by an int32 multiplier and shift (gemmlowp), or a
power-of-two shift. The input zero point is folded into `acc_bias` so the MAC
array multiplies raw int8 operands; padding holds the input zero point. A bias
that int32 cannot hold at s_in*s_w is never clipped: the weight scale of its
channel is raised until it fits (BiasRangeWarning names node and channels).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from quant.calibrate import Method, Ranges
from quant.errors import ConfigError, DataError, OverflowDetected, UnsupportedOpError
from quant.fixedpoint import INT32, INT32_MAX, INT32_MIN, int_range, quantize_multiplier
from quant.ir import BOUNDED_KINDS, LUT_KINDS, ActKind, Clamp, Graph, Node, NodeQuant, Op, QParams, Requant
from quant.kernels import pool_counts
from quant.verify import verify

INT8_MIN, INT8_MAX = -128, 127
TANH_OUT = QParams(1 / 128, 0)
SIGMOID_OUT = QParams(1 / 256, -128)
SOFTMAX_OUT = QParams(1 / 256, -128)


@dataclass(frozen=True)
class QuantConfig:
    calibration: Method = Method.MINMAX
    percentile: float = 99.99
    per_channel: bool = True
    pow2: bool = False
    weight_bits: int = 8  # symmetric weights in [-(2^(b-1) - 1), 2^(b-1) - 1], stored in int8
    act_bits: int = 8  # affine activations of Conv/Dense/Add outputs and the input (LUT ops stay 8-bit)

    def __post_init__(self) -> None:
        for name in ("weight_bits", "act_bits"):
            bits = getattr(self, name)
            if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 8:
                raise ConfigError(f"{name} = {bits!r}: must be an integer in 2..8")
        if not isinstance(self.calibration, Method):
            raise ConfigError(f"calibration must be one of {[m.value for m in Method]}, not {self.calibration!r}")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile must be in (50, 100], not {self.percentile}")


def qparams_from_range(lo: float, hi: float, bits: int = 8) -> QParams:
    """Affine int`bits` parameters whose range covers [lo, hi] and represents 0 exactly."""
    qmin, qmax = int_range(bits)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32((hi - lo) / (qmax - qmin))) if hi > lo else 1.0
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return QParams(scale, zp, bits)


MAX_MULTIPLIER = float(1 << 24)  # a real requant multiplier past this means a degenerate (near-empty) range
BIAS_LIMIT = 1 << 30  # |int32 bias| at most 2^30: half the accumulator's range stays for the products


class BiasRangeWarning(UserWarning):
    """A bias too large for int32 at scale s_in * s_w: the channel's weight scale was raised to fit it."""


def _requant(real: np.ndarray | float, out: QParams, clamp: Clamp | None, pow2: bool, node: str = "") -> Requant:
    flat = np.atleast_1d(np.asarray(real, dtype=np.float64)).ravel()
    if not np.all(np.isfinite(flat)) or flat.max() > MAX_MULTIPLIER:
        raise OverflowDetected(f"node {node!r}: requantization multiplier {flat.max():.3g} is out of range "
                               "(a calibrated range is empty or degenerate); calibrate on more varied inputs")
    pairs = [quantize_multiplier(float(m), pow2) for m in flat]
    shape = np.shape(real)
    m0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int64).reshape(shape)
    qmin, qmax = int_range(out.bits)
    if clamp is not None:
        qmin = max(qmin, out.zero_point + math.ceil(clamp.lo / out.scale - 1e-9)) if math.isfinite(clamp.lo) else qmin
        qmax = min(qmax, out.zero_point + math.floor(clamp.hi / out.scale + 1e-9)) if math.isfinite(clamp.hi) else qmax
    return Requant(m0=m0, shift=shift, zero_point=out.zero_point, qmin=int(qmin), qmax=int(qmax))


def _weight_scale(node: Node, per_channel: bool, bits: int = 8) -> np.ndarray:
    w = node.weight.astype(np.float64)
    amax = np.abs(w).max(axis=tuple(range(1, w.ndim))) if per_channel else np.full(w.shape[0], np.abs(w).max())
    return np.where(amax > 0, amax / int_range(bits)[1], 1.0).astype(np.float32).astype(np.float64)


def _quantize_weights(node: Node, scale: np.ndarray, bits: int = 8) -> np.ndarray:
    w = node.weight.astype(np.float64)
    qmax = int_range(bits)[1]
    return np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -qmax, qmax).astype(np.int8)


def _weights(node: Node, per_channel: bool, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    scale = _weight_scale(node, per_channel, bits)
    return _quantize_weights(node, scale, bits), scale


def _fit_bias(node: Node, bias: np.ndarray, s_in: float, s_w: np.ndarray, per_channel: bool) -> np.ndarray:
    """Raise the weight scale of channels whose bias does not fit BIAS_LIMIT at s_in * s_w (never clip a
    bias silently): such a channel is dominated by its bias, so coarser weights cost little. Warns naming them."""
    need = np.abs(bias) / (s_in * s_w)
    wide = need > BIAS_LIMIT
    if not wide.any():
        return s_w
    fitted = np.abs(bias) / (s_in * BIAS_LIMIT) * (1 + 1e-6)
    new = np.where(wide, np.maximum(s_w, fitted), s_w) if per_channel else np.full_like(s_w, max(s_w.max(),
                                                                                             fitted.max()))
    new = new.astype(np.float32).astype(np.float64)
    new = np.where(np.abs(bias) / (s_in * new) > BIAS_LIMIT, np.nextafter(new.astype(np.float32), np.inf), new)
    channels = np.flatnonzero(wide)
    listed = ", ".join(map(str, channels[:8])) + (" ..." if len(channels) > 8 else "")
    warnings.warn(f"node {node.name!r}: the bias of output channel(s) {listed} does not fit int32 at scale "
                  f"s_in*s_w (needs {float(need.max()):.3g} x LSB); raised those weight scales "
                  f"{float((new / s_w).max()):.3g}x so it fits, at some weight precision", BiasRangeWarning,
                  stacklevel=4)
    return new.astype(np.float64)


def _gemm_quant(node: Node, s_in: QParams, out: QParams, cfg: QuantConfig) -> NodeQuant:
    bias = node.bias.astype(np.float64) if node.bias is not None else np.zeros(node.weight.shape[0])
    s_w = _fit_bias(node, bias, s_in.scale, _weight_scale(node, cfg.per_channel, cfg.weight_bits), cfg.per_channel)
    w_q = _quantize_weights(node, s_w, cfg.weight_bits)
    bias_q = np.rint(bias / (s_in.scale * s_w)).astype(np.int64)
    acc_bias = bias_q - s_in.zero_point * w_q.reshape(w_q.shape[0], -1).astype(np.int64).sum(axis=1)
    if not INT32.contains(acc_bias):
        raise OverflowDetected(f"node {node.name!r}: folded int32 bias overflows; the input range is too narrow")
    real = s_in.scale * s_w / out.scale
    rq = _requant(real.reshape(-1, 1, 1) if len(node.out_shape) == 4 else real, out, node.attrs.act, cfg.pow2,
                  node.name)
    return NodeQuant(out=out, requant=rq, weight=w_q, weight_scale=s_w, bias=bias_q.astype(np.int32),
                     acc_bias=acc_bias.astype(np.int32), in_zero_points=(s_in.zero_point,))


def _lut(fn, s_in: QParams, out: QParams) -> np.ndarray:
    real = s_in.scale * (np.arange(-128, 128) - s_in.zero_point)
    return np.clip(np.rint(fn(real) / out.scale) + out.zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def _channel_lut(node: Node, s_in: QParams, out: QParams) -> np.ndarray:
    """PRelu with one slope per channel: one 256-entry table per channel, (C, 256)."""
    real = s_in.scale * (np.arange(-128, 128) - s_in.zero_point)
    table = node.attrs.fn(np.broadcast_to(real, (len(node.attrs.slope), 256)), channel_axis=0)
    return np.clip(np.rint(table / out.scale) + out.zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def _pool_quant(node: Node, s_in: QParams, cfg: QuantConfig) -> NodeQuant:
    """AvgPool/GAP keep the input's scale: out = requant(window sum, 1/count)."""
    if node.op is Op.GLOBAL_AVGPOOL:
        counts = np.array(node.in_shape[2] * node.in_shape[3])
    else:  # one divisor per output position (count_include_pad and ceil_mode: see pool_counts)
        counts = pool_counts(node.in_shape[2:], node.attrs)
    return NodeQuant(out=s_in, requant=_requant(1.0 / counts, s_in, None, cfg.pow2), in_zero_points=(s_in.zero_point,))


def _add_quant(node: Node, a: QParams, b: QParams, out: QParams, cfg: QuantConfig) -> NodeQuant:
    twice_max = 2 * max(a.scale, b.scale)
    wide = QParams(1.0, 0, 32)
    in_rq = tuple(replace(_requant(s.scale / twice_max, wide, None, cfg.pow2), qmin=INT32_MIN, qmax=INT32_MAX)
                  for s in (a, b))
    rq = _requant(twice_max / ((1 << 20) * out.scale), out, node.attrs.act, cfg.pow2)
    return NodeQuant(out=out, requant=rq, input_requants=in_rq, in_zero_points=(a.zero_point, b.zero_point))


def _activation_quant(node: Node, s_in: QParams, out_range: tuple[float, float], cfg: QuantConfig) -> NodeQuant:
    kind = node.attrs.kind
    if kind is ActKind.TANH:
        return NodeQuant(out=TANH_OUT, lut=_lut(np.tanh, s_in, TANH_OUT), in_zero_points=(s_in.zero_point,))
    if kind is ActKind.SIGMOID:
        lut = _lut(lambda v: 1 / (1 + np.exp(-v)), s_in, SIGMOID_OUT)
        return NodeQuant(out=SIGMOID_OUT, lut=lut, in_zero_points=(s_in.zero_point,))
    if kind in LUT_KINDS:  # an int8 table; the output range fixed by the function or calibrated
        out = SIGMOID_OUT if kind in BOUNDED_KINDS else qparams_from_range(*out_range)
        per_channel = kind is ActKind.PRELU and len(node.attrs.slope) > 1
        lut = _channel_lut(node, s_in, out) if per_channel else _lut(node.attrs.fn, s_in, out)
        return NodeQuant(out=out, lut=lut, in_zero_points=(s_in.zero_point,))
    clamp = Clamp(max(node.attrs.lo, 0.0) if kind is ActKind.RELU else node.attrs.lo, node.attrs.hi)
    return NodeQuant(out=s_in, requant=_requant(1.0, s_in, clamp, False), in_zero_points=(s_in.zero_point,))


def quantize_node(node: Node, ins: list[QParams], out_range: tuple[float, float], cfg: QuantConfig) -> NodeQuant:
    s_in = ins[0]
    if node.op in (Op.CONV, Op.DENSE, Op.AFFINE):  # an affine is a 1-tap, 1-channel-per-group conv
        return _gemm_quant(node, s_in, qparams_from_range(*out_range, cfg.act_bits), cfg)
    if node.op is Op.ADD:
        return _add_quant(node, ins[0], ins[1], qparams_from_range(*out_range, cfg.act_bits), cfg)
    if node.op in (Op.AVGPOOL, Op.GLOBAL_AVGPOOL):
        return _pool_quant(node, s_in, cfg)
    if node.op is Op.ACTIVATION:
        return _activation_quant(node, s_in, out_range, cfg)
    if node.op is Op.CONCAT:  # every input rescaled to the output's scale (TFLite's Concatenation)
        out = qparams_from_range(*out_range, cfg.act_bits)
        return NodeQuant(out=out, input_requants=tuple(_requant(q.scale / out.scale, out, None, cfg.pow2, node.name)
                                                       for q in ins),
                         in_zero_points=tuple(q.zero_point for q in ins))
    if node.op is Op.MUL:
        out = qparams_from_range(*out_range, cfg.act_bits)
        rq = _requant(ins[0].scale * ins[1].scale / out.scale, out, None, cfg.pow2, node.name)
        return NodeQuant(out=out, requant=rq, in_zero_points=(ins[0].zero_point, ins[1].zero_point))
    if node.op is Op.ZERO_INSERT:  # the inserted zeros are real 0: the zero point
        return NodeQuant(out=s_in, fill=s_in.zero_point, in_zero_points=(s_in.zero_point,))
    if node.op is Op.SOFTMAX:
        lut = np.rint(np.exp(-s_in.scale * np.arange(256)) * (1 << 15)).astype(np.int32)
        return NodeQuant(out=SOFTMAX_OUT, lut=lut, in_zero_points=(s_in.zero_point,))
    if node.op is Op.PAD:  # the output keeps the input's scale: the pad value must be representable there
        lo, hi = int_range(s_in.bits)
        fill = round(node.attrs.value / s_in.scale) + s_in.zero_point
        if not lo <= fill <= hi:
            raise UnsupportedOpError(f"node {node.name!r} (Pad): pad value {node.attrs.value:g} lies outside the "
                                     f"input's int{s_in.bits} range [{(lo - s_in.zero_point) * s_in.scale:.4g}, "
                                     f"{(hi - s_in.zero_point) * s_in.scale:.4g}]; it would be clipped")
        return NodeQuant(out=s_in, fill=int(fill), in_zero_points=(s_in.zero_point,))
    return NodeQuant(out=s_in, in_zero_points=(s_in.zero_point,))  # MaxPool, Flatten, Slice ...: same scale


def quantize(graph: Graph, ranges: Ranges, cfg: QuantConfig | None = None) -> Graph:
    """Attach integer parameters to every node; the result runs in quant.int_exec."""
    cfg = cfg or QuantConfig()
    bad = next((name for name, (lo, hi) in ranges.items() if not (math.isfinite(lo) and math.isfinite(hi))), None)
    if bad is not None:
        raise DataError(f"tensor {bad!r}: calibrated range {ranges[bad]} is not finite (the float model "
                        "overflows or gives NaN on the calibration inputs)")
    qp = {graph.input_name: qparams_from_range(*ranges[graph.input_name], cfg.act_bits)}
    nodes = []
    for node in graph.nodes:
        nq = quantize_node(node, [qp[t] for t in node.inputs], ranges.get(node.output, (0.0, 0.0)), cfg)
        qp[node.output] = nq.out
        nodes.append(replace(node, quant=nq))
    return verify(replace(graph, nodes=tuple(nodes), input_quant=qp[graph.input_name]))
