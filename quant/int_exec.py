"""The integer-only executor: the living definition of the bit-exact contract.

After the input is quantized (`quantize_input`, the one float step at the
boundary) every kernel uses integer numpy arithmetic only. One class per op;
the base `run()` checks arity and dtypes, calls `_run()`, and checks that the
output is an integer tensor of the node's shape inside its quantized range.
hwsim's cycle engine and the RTL must reproduce `run_int` bit for bit.
"""
from __future__ import annotations

import functools

import numpy as np

from quant.errors import IRError, OverflowDetected
from quant.fixedpoint import INT32, IntType
from quant.ir import LUT_KINDS, Graph, Node, Op, QParams, Requant
from quant.kernels import (
    RequantPlan,
    exact_matmul,
    im2col,
    int_conv_gemm,
    int_depthwise_conv,
    pad_hw,
    pool_windows,
    requant_plan,
    requantize_planned,
    zero_insert,
)


def quantize_input(x: np.ndarray, qp: QParams) -> np.ndarray:
    """Float -> int8 at the graph boundary: round half to even, as ONNX QuantizeLinear."""
    q = np.rint(np.asarray(x, dtype=np.float64) / qp.scale) + qp.zero_point
    return np.clip(q, -(1 << (qp.bits - 1)), (1 << (qp.bits - 1)) - 1).astype(np.int8)


@functools.lru_cache(maxsize=4096)
def _plan(rq: Requant) -> RequantPlan:
    return requant_plan(rq.m0, rq.shift, rq.zero_point, rq.qmin, rq.qmax)


def apply_requant(acc: np.ndarray, rq: Requant) -> np.ndarray:
    """quant.fixedpoint.requantize, computed by the bit-identical kernels.requantize_fast (its
    data-independent part prepared once per Requant)."""
    return requantize_planned(acc, _plan(rq))


@functools.lru_cache(maxsize=4096)
def _accumulator_bound(node: Node) -> int:
    """The largest |accumulator| any int8 input can give: K * 128 * max|w| + max|acc_bias|."""
    w = node.quant.weight
    k = 1 if w.ndim == 1 else int(np.prod(w.shape[1:]))
    return k * 128 * int(np.abs(w.astype(np.int64)).max(initial=0)) + int(np.abs(node.quant.acc_bias).max(initial=0))


def check_accumulator(node: Node, acc: np.ndarray, acc_type: IntType) -> None:
    """Raise OverflowDetected naming the node and the first channel whose accumulator left acc_type
    (no scan when the node's static bound already fits)."""
    if _accumulator_bound(node) <= acc_type.max or acc_type.contains(acc):
        return
    bad = np.argwhere((acc < acc_type.min) | (acc > acc_type.max))[0]
    channel = int(bad[1]) if acc.ndim > 1 else 0
    raise OverflowDetected(f"node {node.name!r}: {acc_type} accumulator overflow at output channel {channel} "
                           f"(value {int(acc[tuple(bad)])}); widen the accumulator or re-quantize")


class IntKernel:
    arity = 1
    widen_inputs = True  # hand _run int64 copies; GEMM kernels widen after im2col instead
    clamped = False      # True: the output is requantized into [qmin, qmax] (verified inside intN): no scan

    def run(self, node: Node, inputs: list[np.ndarray], acc_type: IntType = INT32) -> np.ndarray:
        if len(inputs) != len(node.inputs) or (self.arity is not None and len(inputs) != self.arity):
            raise IRError(f"node {node.name!r} ({node.op.value}): takes {len(node.inputs)} inputs, got {len(inputs)}")
        for x in inputs:
            if not np.issubdtype(x.dtype, np.integer):
                raise IRError(f"node {node.name!r} ({node.op.value}): integer executor got a {x.dtype} input")
        self.acc_type = acc_type
        out = self._run(node, *[x.astype(np.int64) if self.widen_inputs else x for x in inputs])
        if out.shape[1:] != node.out_shape[1:]:
            raise IRError(f"node {node.name!r}: produced shape {out.shape[1:]}, expected {node.out_shape[1:]}")
        if not self.clamped and not IntType(node.quant.out.bits).contains(out):
            raise IRError(f"node {node.name!r}: output left the int{node.quant.out.bits} range")
        return out.astype(np.int8)

    def _run(self, node: Node, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


_INT8_CHUNK = (1 << 24) // (128 * 127)  # int8 x int8 products summed in float32 stay exact this many at a time


@functools.lru_cache(maxsize=1024)
def _weight_f32(node: Node) -> np.ndarray:
    """A GEMM node's int8 weights as a float32 (K, N_out) matrix, converted once."""
    w = node.quant.weight
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=np.float32)


def _int8_gemm(a: np.ndarray, node: Node) -> np.ndarray:
    """int8 a (M, K) @ the node's int8 weights (K, N_out), exact, as int64: float32 BLAS over K-chunks
    of at most 1,032 products (|a| <= 128, |w| <= 127: every partial sum below 2^24), summed in int64."""
    if a.dtype != np.int8:
        return exact_matmul(a, node.quant.weight.reshape(node.quant.weight.shape[0], -1).T)
    w, af = _weight_f32(node), a.astype(np.float32)
    k = a.shape[1]
    pieces = -(-k // _INT8_CHUNK)
    step = -(-k // pieces)
    acc = (af[:, :step] @ w[:step]).astype(np.int64)
    for k0 in range(step, k, step):
        acc += (af[:, k0:k0 + step] @ w[k0:k0 + step]).astype(np.int64)
    return acc


class ConvKernel(IntKernel):
    """Exact integer GEMMs computed on float BLAS in exact K-chunks (kernels.exact_matmul)."""
    widen_inputs = False
    clamped = True

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        q, a = node.quant, node.attrs
        # Padding holds the input zero point: real 0. The zero point itself is folded into acc_bias.
        if a.groups > 1 and a.groups == x.shape[1] and q.weight.shape[1] == 1:  # depthwise: no im2col
            acc = int_depthwise_conv(x, q.weight, a, _zp_in(node))
        elif a.groups == 1:
            cols = im2col(x, a, _zp_in(node))  # (N, 1, P, K)
            n, _, p, k = cols.shape
            out = _int8_gemm(cols.reshape(n * p, k), node).reshape(n, p, -1)
            acc = out.transpose(0, 2, 1).reshape(n, -1, *node.out_shape[2:])
        else:
            acc = int_conv_gemm(im2col(x, a, _zp_in(node)), q.weight, a.groups, node.out_shape[2:])
        acc += q.acc_bias.reshape(1, -1, 1, 1)
        check_accumulator(node, acc, self.acc_type)
        return apply_requant(acc, q.requant)


def _zp_in(node: Node) -> int:
    return node.quant.in_zero_points[0]


class DenseKernel(IntKernel):
    widen_inputs = False
    clamped = True

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        acc = _int8_gemm(x, node) + node.quant.acc_bias
        check_accumulator(node, acc, self.acc_type)
        return apply_requant(acc, node.quant.requant)


class AffineKernel(IntKernel):
    """x * w[c] + acc_bias[c] (the input zero point folded into acc_bias, as a conv's), requantized per channel."""

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        shape = (1, -1, *[1] * (x.ndim - 2))
        q = node.quant
        acc = x * q.weight.astype(np.int64).reshape(shape) + q.acc_bias.astype(np.int64).reshape(shape)
        check_accumulator(node, acc, self.acc_type)
        return apply_requant(acc, node.quant.requant)


class MaxPoolKernel(IntKernel):
    widen_inputs = False  # the max of int8 values is one of them; the pads hold the type's minimum

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        return pool_windows(x, node.attrs, np.iinfo(x.dtype).min).max(axis=(-1, -2))


class AvgPoolKernel(IntKernel):
    """Integer window sum of (x - zp_in) times a per-position multiplier 1/count (kernels.pool_counts)."""

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        sums = pool_windows(x - _zp_in(node), node.attrs, 0).sum(axis=(-1, -2))
        return apply_requant(sums, node.quant.requant)


class GlobalAvgPoolKernel(IntKernel):
    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        sums = (x - _zp_in(node)).sum(axis=(2, 3), keepdims=True)
        return apply_requant(sums, node.quant.requant)


class AddKernel(IntKernel):
    """TFLite's quantized Add: both inputs shifted left by 20, rescaled to a common
    scale, summed, then requantized to the output scale."""
    arity = 2
    LEFT_SHIFT = 20

    def _run(self, node: Node, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        q = node.quant
        a = apply_requant((x - q.in_zero_points[0]) << self.LEFT_SHIFT, q.input_requants[0])
        b = apply_requant((y - q.in_zero_points[1]) << self.LEFT_SHIFT, q.input_requants[1])
        return apply_requant(a + b, q.requant)


class ActivationKernel(IntKernel):
    """A table activation reads its int8 table at x + 128 (a per-channel table: row c for channel c);
    ReLU and Clip requantize with the clamp folded into the output range."""

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        if node.attrs.kind in LUT_KINDS:
            lut = node.quant.lut.astype(np.int64)
            if lut.ndim == 1:
                return lut[x + 128]
            channel = np.arange(lut.shape[0]).reshape(1, -1, *[1] * (x.ndim - 2))
            return lut[channel, x + 128]
        return apply_requant(x - _zp_in(node), node.quant.requant)


class ConcatKernel(IntKernel):
    """TFLite's quantized Concatenation: each input rescaled to the output's scale and zero point."""
    arity = None

    def _run(self, node: Node, *xs: np.ndarray) -> np.ndarray:
        q = node.quant
        return np.concatenate([apply_requant(x - zp, rq) for x, zp, rq in
                               zip(xs, q.in_zero_points, q.input_requants, strict=True)], axis=1)


class MulKernel(IntKernel):
    """(x - zx) * (y - zy), |product| <= 255^2, requantized by s_x * s_y / s_out (TFLite's Mul)."""
    arity = 2

    def _run(self, node: Node, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        zx, zy = node.quant.in_zero_points
        return apply_requant((x - zx) * (y - zy), node.quant.requant)


class SoftmaxKernel(IntKernel):
    """exp via a 256-entry Q15 table of exp(-s_in * d), d = max - x; integer division."""

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        e = node.quant.lut.astype(np.int64)[x.max(axis=1, keepdims=True) - x]
        total = e.sum(axis=1, keepdims=True)
        prob = (e * 256 + total // 2) // total  # Q8 probability in 0..256
        return np.clip(prob + node.quant.out.zero_point, -128, 127)


class FlattenKernel(IntKernel):
    widen_inputs = False

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], *node.out_shape[1:])


class CopyKernel(IntKernel):
    """Ops that only move int8 values (same scale in and out): Slice, ChannelShuffle, Resize, ZeroInsert."""
    widen_inputs = False

    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        a = node.attrs
        if node.op is Op.SLICE:
            return x[:, a.start:a.stop]
        if node.op is Op.SHUFFLE:
            return x[:, list(a.perm)]
        if node.op is Op.RESIZE:
            return x[:, :, list(a.rows)][:, :, :, list(a.cols)]
        return zero_insert(x, a.stride, node.quant.fill)


class PadKernel(IntKernel):
    def _run(self, node: Node, x: np.ndarray) -> np.ndarray:
        return pad_hw(x, node.attrs.pads, node.quant.fill)


INT_KERNELS: dict[Op, IntKernel] = {
    Op.CONV: ConvKernel(), Op.DENSE: DenseKernel(), Op.MAXPOOL: MaxPoolKernel(), Op.AVGPOOL: AvgPoolKernel(),
    Op.GLOBAL_AVGPOOL: GlobalAvgPoolKernel(), Op.ADD: AddKernel(), Op.ACTIVATION: ActivationKernel(),
    Op.SOFTMAX: SoftmaxKernel(), Op.FLATTEN: FlattenKernel(), Op.PAD: PadKernel(), Op.CONCAT: ConcatKernel(),
    Op.MUL: MulKernel(), Op.SLICE: CopyKernel(), Op.SHUFFLE: CopyKernel(), Op.RESIZE: CopyKernel(),
    Op.ZERO_INSERT: CopyKernel(), Op.AFFINE: AffineKernel(),
}


def run_int(graph: Graph, x_q: np.ndarray, intermediate: bool = False,
            acc_type: IntType = INT32) -> np.ndarray | dict[str, np.ndarray]:
    """Run a quantized graph on int8 input x_q; optionally return every int8 tensor."""
    if not graph.is_quantized:
        raise IRError(f"graph {graph.name!r} is not quantized; run quant.quantize first")
    tensors = {graph.input_name: np.asarray(x_q)}
    for node in graph.nodes:
        tensors[node.output] = INT_KERNELS[node.op].run(node, [tensors[t] for t in node.inputs], acc_type)
    return tensors if intermediate else tensors[graph.output]
