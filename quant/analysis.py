"""Layer analysis: per layer output shape, parameters, MACs, activations and their
bytes in float32 vs int8 (the seeds' '4 B vs 1 B' made concrete). Pure functions."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from quant.ir import Graph, Node, Op

FLOAT32_BYTES = 4
INT8_BYTES = 1
INT32_BYTES = 4


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    output_shape: tuple[int, ...]
    params: int
    weights: int
    macs: int
    activations: int
    act_bytes_fp32: int
    act_bytes_int8: int
    param_bytes_fp32: int
    param_bytes_int8: int  # int8 weights + int32 biases


@dataclass(frozen=True)
class Summary:
    model: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerRow, ...]

    def total(self, field_name: str) -> int:
        """Sum of one LayerRow field over all rows (activations include the input, as in the VGG table)."""
        return sum(getattr(r, field_name) for r in self.layers)

    @property
    def total_params(self) -> int:
        return self.total("params")

    @property
    def total_weights(self) -> int:
        return self.total("weights")

    @property
    def total_macs(self) -> int:
        return self.total("macs")

    @property
    def total_activations(self) -> int:
        return self.total("activations")

    def to_dict(self) -> dict:
        totals = ("params", "weights", "macs", "activations", "act_bytes_fp32", "act_bytes_int8",
                  "param_bytes_fp32", "param_bytes_int8")
        return {"model": self.model, "input_shape": list(self.input_shape),
                "layers": [{**asdict(r), "output_shape": list(r.output_shape)} for r in self.layers],
                **{f"total_{k}": self.total(k) for k in totals}}


def op_label(node: Node) -> str:
    """Op name with what is fused into it: 'Conv+relu', 'Conv/dw', 'Activation(tanh)'."""
    label = node.op.value
    if node.op is Op.CONV and node.attrs.groups > 1:
        label += "/dw" if node.attrs.groups == node.in_shape[1] else f"/g{node.attrs.groups}"
    if node.op is Op.ACTIVATION:
        label = node.attrs.kind.value
    act = getattr(node.attrs, "act", None)
    return f"{label}+{act.label}" if act is not None else label


def _row(name: str, op: str, shape: tuple[int, ...], node: Node | None) -> LayerRow:
    acts = node.activations if node is not None else int(_prod(shape))
    weights = node.weights_count if node is not None else 0
    params = node.params if node is not None else 0
    return LayerRow(name=name, op=op, output_shape=tuple(shape[1:]), params=params, weights=weights,
                    macs=node.macs if node is not None else 0, activations=acts,
                    act_bytes_fp32=acts * FLOAT32_BYTES, act_bytes_int8=acts * INT8_BYTES,
                    param_bytes_fp32=params * FLOAT32_BYTES,
                    param_bytes_int8=weights * INT8_BYTES + (params - weights) * INT32_BYTES)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def summarize(graph: Graph) -> Summary:
    rows = [_row("input", "Input", graph.input_shape, None)]
    rows += [_row(n.name, op_label(n), n.out_shape, n) for n in graph.nodes]
    return Summary(model=graph.name, input_shape=graph.input_shape, layers=tuple(rows))
