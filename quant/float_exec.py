"""Float executor of the IR (numpy, float32): the reference the quantizer is
calibrated on and measured against."""
from __future__ import annotations

import numpy as np

from quant.ir import ActKind, Clamp, Graph, Node, Op
from quant.kernels import conv_gemm, im2col, pad_hw, pool_counts, pool_windows, zero_insert


def _clamp(x: np.ndarray, act: Clamp | None) -> np.ndarray:
    return x if act is None else np.clip(x, act.lo, act.hi)


def _conv(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    out = conv_gemm(im2col(x, a, 0.0), node.weight, a.groups, node.out_shape[2:])
    if node.bias is not None:
        out = out + node.bias.reshape(1, -1, 1, 1)
    return _clamp(out, a.act)


def _dense(node: Node, x: np.ndarray) -> np.ndarray:
    out = x @ node.weight.T
    return _clamp(out if node.bias is None else out + node.bias, node.attrs.act)


def _affine(node: Node, x: np.ndarray) -> np.ndarray:
    shape = (1, -1, *[1] * (x.ndim - 2))
    out = x * node.weight.reshape(shape)
    return _clamp(out if node.bias is None else out + node.bias.reshape(shape), node.attrs.act)


def _avgpool(node: Node, x: np.ndarray) -> np.ndarray:
    sums = pool_windows(x, node.attrs, 0.0).sum(axis=(-1, -2))
    return sums / pool_counts(x.shape[2:], node.attrs)


def _activation(node: Node, x: np.ndarray) -> np.ndarray:
    kind = node.attrs.kind
    if kind is ActKind.TANH:
        return np.tanh(x)
    if kind is ActKind.SIGMOID:
        return 1.0 / (1.0 + np.exp(-x))
    if kind in (ActKind.RELU, ActKind.CLIP):
        return np.clip(x, max(node.attrs.lo, 0.0) if kind is ActKind.RELU else node.attrs.lo, node.attrs.hi)
    return node.attrs.fn(x)



def _maxpool(node: Node, x: np.ndarray) -> np.ndarray:
    return pool_windows(x, node.attrs, -np.inf).max(axis=(-1, -2))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


FLOAT_KERNELS = {
    Op.CONV: _conv,
    Op.DENSE: _dense,
    Op.MAXPOOL: _maxpool,
    Op.AVGPOOL: _avgpool,
    Op.GLOBAL_AVGPOOL: lambda n, x: x.mean(axis=(2, 3), keepdims=True),
    Op.ADD: lambda n, x, y: _clamp(x + y, n.attrs.act),
    Op.ACTIVATION: _activation,
    Op.FLATTEN: lambda n, x: x.reshape(x.shape[0], *n.out_shape[1:]),
    Op.SOFTMAX: lambda n, x: _softmax(x),
    Op.PAD: lambda n, x: pad_hw(x, n.attrs.pads, n.attrs.value),
    Op.CONCAT: lambda n, *xs: np.concatenate(xs, axis=1),
    Op.MUL: lambda n, x, y: x * y,
    Op.SLICE: lambda n, x: x[:, n.attrs.start:n.attrs.stop],
    Op.SHUFFLE: lambda n, x: x[:, list(n.attrs.perm)],
    Op.RESIZE: lambda n, x: x[:, :, list(n.attrs.rows)][:, :, :, list(n.attrs.cols)],
    Op.ZERO_INSERT: lambda n, x: zero_insert(x, n.attrs.stride, 0.0),
    Op.AFFINE: _affine,
}


def run_float(graph: Graph, x: np.ndarray, intermediate: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """Run the float graph on a batch x (N, *input_shape[1:]); optionally return every tensor."""
    tensors = {graph.input_name: np.asarray(x, dtype=np.float32)}
    for node in graph.nodes:
        out = FLOAT_KERNELS[node.op](node, *(tensors[t] for t in node.inputs))
        tensors[node.output] = out.astype(np.float32, copy=False)
    return tensors if intermediate else tensors[graph.output]
