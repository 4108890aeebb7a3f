"""Graph passes with a fixpoint contract: each pass maps graph -> (graph, changed);
`optimize` loops them until nothing changes, verifying after every change."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from quant.ir import ActAttrs, ActKind, AffineAttrs, Clamp, Graph, Node, Op
from quant.verify import verify

Pass = Callable[[Graph], tuple[Graph, bool]]


class _Index:
    """Consumers of every tensor, computed once per pass sweep (linear, not quadratic, in graph size)."""

    def __init__(self, graph: Graph):
        self.output = graph.output
        self.users: dict[str, list[Node]] = {}
        for node in graph.nodes:
            for tensor in node.inputs:
                self.users.setdefault(tensor, []).append(node)

    def sole_consumer(self, node: Node) -> Node | None:
        users = self.users.get(node.output, [])
        if len(users) != 1 or node.output == self.output:
            return None
        return users[0]


def _rewrite(graph: Graph, pair_of: Callable[[Node, _Index], tuple[Node, Node, Node] | None]) -> tuple[Graph, bool]:
    """One linear sweep: every (first, second) pair `pair_of` accepts becomes the merged node.

    pair_of(node) -> (first, second, merged) where `merged` replaces `first` and `second` is dropped
    (or replaces `second` and `first` is dropped when `first` is a pad): pairs never overlap."""
    index = _Index(graph)
    replace_by: dict[int, Node] = {}
    drop: set[int] = set()
    for node in graph.nodes:
        if id(node) in drop or id(node) in replace_by:
            continue
        found = pair_of(node, index)
        if found is None:
            continue
        keep, gone, merged = found
        if id(keep) in replace_by or id(gone) in replace_by or id(gone) in drop:
            continue
        replace_by[id(keep)] = merged
        drop.add(id(gone))
    if not replace_by:
        return graph, False
    nodes = tuple(replace_by.get(id(n), n) for n in graph.nodes if id(n) not in drop)
    return replace(graph, nodes=nodes), True


def _is_channel_affine(node: Node) -> bool:
    """A depthwise 1x1 stride-1 unpadded conv: y[c] = a[c] * x[c] + b[c] (what BatchNorm becomes)."""
    a = node.attrs
    if node.op is Op.AFFINE:
        return True
    return (node.op is Op.CONV and a.kernel == (1, 1) and a.groups == node.in_shape[1] == node.out_shape[1]
            and a.stride == (1, 1) and a.pads == (0, 0, 0, 0) and node.weight.shape[0] == node.in_shape[1])


def _takes_over(first: Node, second: Node, merged: Node) -> Node:
    return replace(merged, output=second.output, out_shape=second.out_shape)


def _affine_pair(node: Node, index: _Index):
    nxt = index.sole_consumer(node)
    if node.op is Op.CONV and node.attrs.act is None and nxt is not None and _is_channel_affine(nxt):
        scale = nxt.weight.reshape(-1).astype(np.float64)
        bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0])
        shift = nxt.bias if nxt.bias is not None else np.zeros(node.weight.shape[0])
        merged = replace(node, weight=(node.weight * scale[:, None, None, None]).astype(np.float32),
                         bias=(bias * scale + shift).astype(np.float32), attrs=replace(node.attrs, act=nxt.attrs.act))
        return node, nxt, _takes_over(node, nxt, merged)
    return None


def _pad_pair(node: Node, index: _Index):
    nxt = index.sole_consumer(node)
    if node.op is Op.PAD and node.attrs.value == 0.0 and nxt is not None and nxt.op is Op.CONV:
        pads = tuple(p + q for p, q in zip(node.attrs.pads, nxt.attrs.pads, strict=False))
        return nxt, node, replace(nxt, inputs=node.inputs, in_shapes=node.in_shapes,
                                  attrs=replace(nxt.attrs, pads=pads))
    return None


def _clamp_pair(node: Node, index: _Index):
    nxt = index.sole_consumer(node)
    if (node.op in (Op.CONV, Op.DENSE, Op.ADD, Op.AFFINE) and node.attrs.act is None and nxt is not None
            and nxt.op is Op.ACTIVATION and nxt.attrs.kind in (ActKind.RELU, ActKind.CLIP)):
        clamp = Clamp(max(nxt.attrs.lo, 0.0) if nxt.attrs.kind is ActKind.RELU else nxt.attrs.lo, nxt.attrs.hi)
        return node, nxt, _takes_over(node, nxt, replace(node, attrs=replace(node.attrs, act=clamp)))
    return None


def _gate_pair(node: Node, index: _Index):
    """x * sigmoid(x) -> SiLU; x * hardsigmoid(x) with alpha 1/6, beta 1/2 -> HardSwish."""
    nxt = index.sole_consumer(node)
    if node.op is not Op.ACTIVATION or nxt is None or nxt.op is not Op.MUL or \
            sorted(nxt.inputs) != sorted([node.inputs[0], node.output]):
        return None
    a = node.attrs
    if a.kind is ActKind.SIGMOID:
        kind = ActKind.SILU
    elif a.kind is ActKind.HARD_SIGMOID and abs(a.alpha - 1 / 6) < 1e-6 and abs(a.beta - 0.5) < 1e-6:
        kind = ActKind.HARD_SWISH
    else:
        return None
    fused = replace(node, name=nxt.name, output=nxt.output, attrs=ActAttrs(kind, -math.inf, math.inf))
    return nxt, node, fused


def affine_to_vector_unit(graph: Graph) -> tuple[Graph, bool]:
    """A per-channel affine no conv absorbed (BatchNorm after a ReLU, as DenseNet's pre-activations; a
    Mul/Add by a constant) runs on the vector unit as ChannelAffine, not as a depthwise 1x1 conv on
    the array (one MAC per pixel per channel, a column of the array each)."""
    nodes = tuple(replace(n, op=Op.AFFINE, attrs=AffineAttrs(n.attrs.act), weight=n.weight.reshape(-1))
                  if n.op is Op.CONV and _is_channel_affine(n) else n for n in graph.nodes)
    changed = any(a is not b for a, b in zip(nodes, graph.nodes, strict=True))
    return (replace(graph, nodes=nodes), True) if changed else (graph, False)


def fold_affine_into_conv(graph: Graph) -> tuple[Graph, bool]:
    """Conv (no activation) -> per-channel affine (+clamp): scale the filters and bias, keep the clamp."""
    return _rewrite(graph, _affine_pair)


def fold_pad_into_conv(graph: Graph) -> tuple[Graph, bool]:
    """Pad(0) -> Conv: the conv pads instead (zero in real terms = the zero point in int8)."""
    return _rewrite(graph, _pad_pair)


def fuse_clamp(graph: Graph) -> tuple[Graph, bool]:
    """Conv/Dense/Add -> Relu/Clip: the clamp happens in the requantizer."""
    return _rewrite(graph, _clamp_pair)


def fuse_gate(graph: Graph) -> tuple[Graph, bool]:
    """x * sigmoid(x) (SiLU as exporters write it) and x * hardsigmoid(x) (HardSwish before opset 14)
    become one table activation: one int8 look-up instead of a look-up, a product and a requantization."""
    return _rewrite(graph, _gate_pair)


PASSES: tuple[Pass, ...] = (fold_affine_into_conv, fold_pad_into_conv, fuse_clamp, fuse_gate, affine_to_vector_unit)


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


__all__ = ["PASSES", "affine_to_vector_unit", "fold_affine_into_conv", "fold_pad_into_conv", "fuse_clamp",
           "fuse_gate", "optimize"]
