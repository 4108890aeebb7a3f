"""Graph passes with a fixpoint contract: each pass maps graph -> (graph, changed);
`optimize` loops them until nothing changes, verifying after every change."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from quant.ir import ActKind, Clamp, Graph, Node, Op
from quant.verify import verify

Pass = Callable[[Graph], tuple[Graph, bool]]


def _sole_consumer(graph: Graph, node: Node) -> Node | None:
    users = graph.consumers(node.output)
    if len(users) != 1 or node.output == graph.output:
        return None
    return users[0]


def _merge(graph: Graph, first: Node, second: Node, merged: Node) -> Graph:
    """Replace first->second by `merged`, which takes over second's output."""
    merged = replace(merged, output=second.output, out_shape=second.out_shape)
    nodes = tuple(merged if n is first else n for n in graph.nodes if n is not second)
    return replace(graph, nodes=nodes)


def _is_channel_affine(node: Node) -> bool:
    """A depthwise 1x1 stride-1 unpadded conv: y[c] = a[c] * x[c] + b[c] (what BatchNorm becomes)."""
    a = node.attrs
    return (node.op is Op.CONV and a.kernel == (1, 1) and a.groups == node.in_shape[1] == node.out_shape[1]
            and a.stride == (1, 1) and a.pads == (0, 0, 0, 0))


def fold_affine_into_conv(graph: Graph) -> tuple[Graph, bool]:
    """Conv (no activation) -> per-channel affine (+clamp): scale the filters and bias, keep the clamp."""
    for node in graph.nodes:
        nxt = _sole_consumer(graph, node)
        if node.op is Op.CONV and node.attrs.act is None and nxt is not None and _is_channel_affine(nxt):
            scale = nxt.weight.reshape(-1).astype(np.float64)
            bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0])
            merged = replace(node, weight=(node.weight * scale[:, None, None, None]).astype(np.float32),
                             bias=(bias * scale + nxt.bias).astype(np.float32),
                             attrs=replace(node.attrs, act=nxt.attrs.act))
            return _merge(graph, node, nxt, merged), True
    return graph, False


def fold_pad_into_conv(graph: Graph) -> tuple[Graph, bool]:
    """Pad(0) -> Conv: the conv pads instead (zero in real terms = the zero point in int8)."""
    for node in graph.nodes:
        nxt = _sole_consumer(graph, node)
        if node.op is Op.PAD and node.attrs.value == 0.0 and nxt is not None and nxt.op is Op.CONV:
            pads = tuple(p + q for p, q in zip(node.attrs.pads, nxt.attrs.pads, strict=False))
            merged = replace(nxt, inputs=node.inputs, in_shapes=node.in_shapes, attrs=replace(nxt.attrs, pads=pads))
            nodes = tuple(merged if n is nxt else n for n in graph.nodes if n is not node)
            return replace(graph, nodes=nodes), True
    return graph, False


def fuse_clamp(graph: Graph) -> tuple[Graph, bool]:
    """Conv/Dense/Add -> Relu/Clip: the clamp happens in the requantizer."""
    for node in graph.nodes:
        nxt = _sole_consumer(graph, node)
        if (node.op in (Op.CONV, Op.DENSE, Op.ADD) and node.attrs.act is None and nxt is not None
                and nxt.op is Op.ACTIVATION and nxt.attrs.kind in (ActKind.RELU, ActKind.CLIP)):
            clamp = Clamp(max(nxt.attrs.lo, 0.0) if nxt.attrs.kind is ActKind.RELU else nxt.attrs.lo, nxt.attrs.hi)
            return _merge(graph, node, nxt, replace(node, attrs=replace(node.attrs, act=clamp))), True
    return graph, False


PASSES: tuple[Pass, ...] = (fold_affine_into_conv, fold_pad_into_conv, fuse_clamp)


def optimize(graph: Graph, passes: tuple[Pass, ...] = PASSES) -> Graph:
    changed = True
    while changed:
        changed = False
        for p in passes:
            graph, did = p(graph)
            if did:
                verify(graph)
                changed = True
    return graph


__all__ = ["PASSES", "fold_affine_into_conv", "fold_pad_into_conv", "fuse_clamp", "optimize"]
