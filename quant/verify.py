"""IR verifier, run after import and after every pass. Raises IRError naming the node."""
from __future__ import annotations

import numpy as np

from quant.errors import IRError
from quant.ir import ARITY_OF_OP, ATTRS_OF_OP, Graph, Node, Op


def verify(graph: Graph) -> Graph:
    """Check the invariants every consumer of the IR relies on; return the graph."""
    defined = {graph.input_name: graph.input_shape}
    names: set[str] = set()
    for node in graph.nodes:
        _check_node(node, defined, names, graph.is_quantized)
        defined[node.output] = node.out_shape
        names.add(node.name)
    if graph.output not in defined or graph.output == graph.input_name:
        raise IRError(f"graph output {graph.output!r} is not produced by any node")
    return graph


def _fail(node: Node, why: str) -> None:
    raise IRError(f"node {node.name!r} ({node.op.value}): {why}")


def _check_node(node: Node, defined: dict, names: set[str], quantized: bool) -> None:
    if node.name in names:
        _fail(node, "duplicate node name")
    if not isinstance(node.attrs, ATTRS_OF_OP[node.op]):
        _fail(node, f"attributes are {type(node.attrs).__name__}, expected {ATTRS_OF_OP[node.op].__name__}")
    if len(node.inputs) != ARITY_OF_OP[node.op]:
        _fail(node, f"takes {ARITY_OF_OP[node.op]} input(s), has {len(node.inputs)}")
    for tensor, shape in zip(node.inputs, node.in_shapes, strict=False):
        if tensor not in defined:
            _fail(node, f"input {tensor!r} is used before it is produced")
        if defined[tensor] != shape:
            _fail(node, f"input {tensor!r} has shape {defined[tensor]}, node expects {shape}")
    if any(d < 1 for d in node.out_shape):
        _fail(node, f"output shape {node.out_shape} has an empty dimension")
    if node.op in (Op.CONV, Op.DENSE):
        _check_weights(node)
    if quantized and node.quant is None:
        _fail(node, "graph is quantized but this node has no quantization parameters")


def _check_weights(node: Node) -> None:
    w = node.weight
    if w is None:
        _fail(node, "has no weight")
    if node.op is Op.CONV:
        c_in, groups = node.in_shape[1], node.attrs.groups
        if w.ndim != 4 or c_in % groups or w.shape[1] != c_in // groups or w.shape[0] % groups:
            _fail(node, f"weight {w.shape} does not fit input {node.in_shape} with groups={groups}")
        if w.shape[2:] != node.attrs.kernel:
            _fail(node, f"weight {w.shape} does not match kernel {node.attrs.kernel}")
    elif w.ndim != 2 or w.shape[1] != node.in_shape[-1]:
        _fail(node, f"weight {w.shape} does not fit input {node.in_shape}")
    if node.bias is not None and node.bias.shape != (w.shape[0],):
        _fail(node, f"bias {node.bias.shape} does not match {w.shape[0]} outputs")
    if not np.all(np.isfinite(w)):
        _fail(node, "weight holds NaN or infinity")
