"""The IR verifier: every rule has a graph that breaks just that rule and must raise
IRError naming the node (or the graph); the valid graphs pass."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from quant.errors import IRError
from quant.ir import ATTRS_OF_OP, ActAttrs, ActKind, Clamp, Graph, NoAttrs, Node, Op, PadAttrs, QParams
from quant.quantize import QuantConfig, quantize
from quant.verify import verify


def _node(graph: Graph, op: Op, kind: ActKind | None = None):
    return next(n for n in graph.nodes if n.op is op and (kind is None or n.attrs.kind is kind))


def _swap(graph: Graph, op: Op, kind: ActKind | None = None, **changes) -> Graph:
    """The graph with the first `op` node (of activation `kind`) changed."""
    old = _node(graph, op, kind)
    return replace(graph, nodes=tuple(replace(n, **changes) if n is old else n for n in graph.nodes))


def _swap_quant(graph: Graph, op: Op, kind: ActKind | None = None, **changes) -> Graph:
    return _swap(graph, op, kind, quant=replace(_node(graph, op, kind).quant, **changes))


def _swap_requant(graph: Graph, op: Op, kind: ActKind | None = None, **changes) -> Graph:
    return _swap_quant(graph, op, kind, requant=replace(_node(graph, op, kind).quant.requant, **changes))


def _swap_add_input_requant(graph: Graph, **changes) -> Graph:
    add = _node(graph, Op.ADD)
    first = replace(add.quant.input_requants[0], **changes)
    return _swap_quant(graph, Op.ADD, input_requants=(first, add.quant.input_requants[1]))


def _inputs_reordered(g: Graph) -> Graph:
    return replace(g, nodes=(g.nodes[1], g.nodes[0], *g.nodes[2:]))


FLOAT_RULES = {
    "duplicate name": (lambda g: _swap(g, Op.ADD, name=g.nodes[0].name), Op.ADD, "duplicate node name"),
    "attrs type": (lambda g: _swap(g, Op.DENSE, attrs=NoAttrs()), Op.DENSE, "attributes are NoAttrs"),
    "stride": (lambda g: _swap(g, Op.CONV, attrs=replace(_node(g, Op.CONV).attrs, stride=(0, 1))), Op.CONV,
               r"stride \(0, 1\) must be two integers >= 1"),
    "dilation": (lambda g: _swap(g, Op.CONV, attrs=replace(_node(g, Op.CONV).attrs, dilation=(1,))), Op.CONV,
                 "dilation"),
    "groups 0": (lambda g: _swap(g, Op.CONV, attrs=replace(_node(g, Op.CONV).attrs, groups=0)), Op.CONV,
                 "groups 0 must be >= 1"),
    "conv pads": (lambda g: _swap(g, Op.CONV, attrs=replace(_node(g, Op.CONV).attrs, pads=(1, 1, -1, 1))), Op.CONV,
                  "pads .* must be four integers >= 0"),
    "pool kernel": (lambda g: _swap(g, Op.AVGPOOL, attrs=replace(_node(g, Op.AVGPOOL).attrs, kernel=(300, 3))),
                    Op.AVGPOOL, "larger than the padded input"),
    "pool stride": (lambda g: _swap(g, Op.MAXPOOL, attrs=replace(_node(g, Op.MAXPOOL).attrs, stride=(2, -2))),
                    Op.MAXPOOL, "stride"),
    "pad pads": (lambda g: _swap(g, Op.PAD, attrs=replace(_node(g, Op.PAD).attrs, pads=(0, 0, -1, 0))), Op.PAD,
                 "pads .* must be four integers >= 0"),
    "pad value": (lambda g: _swap(g, Op.PAD, attrs=replace(_node(g, Op.PAD).attrs, value=float("nan"))), Op.PAD,
                  "pad value nan is not finite"),
    "clip empty": (lambda g: _swap(g, Op.ACTIVATION, ActKind.CLIP, attrs=ActAttrs(ActKind.CLIP, 1.0, -1.0)),
                   Op.ACTIVATION, r"clamp \[1.0, -1.0\] is empty"),
    "fused clamp nan": (lambda g: _swap(g, Op.CONV, attrs=replace(_node(g, Op.CONV).attrs,
                                                                   act=Clamp(float("nan"), 6.0))), Op.CONV,
                        "clamp .nan, 6.0. is empty"),
    "arity": (lambda g: _swap(g, Op.ADD, inputs=_node(g, Op.ADD).inputs[:1], in_shapes=_node(g, Op.ADD).in_shapes[:1]),
              Op.ADD, r"takes 2 input\(s\), has 1"),
    "in_shapes count": (lambda g: _swap(g, Op.ADD, in_shapes=_node(g, Op.ADD).in_shapes[:1]), Op.ADD,
                        r"2 input\(s\) but 1 input shape"),
    "use before def": (_inputs_reordered, Op.CONV, "used before it is produced"),
    "input shape": (lambda g: _swap(g, Op.FLATTEN, in_shapes=((1, 8, 2, 2),)), Op.FLATTEN, "node expects"),
    "empty dim": (lambda g: _swap(g, Op.SOFTMAX, out_shape=(1, 0)), Op.SOFTMAX, "empty dimension"),
    "no weight": (lambda g: _swap(g, Op.DENSE, weight=None), Op.DENSE, "has no weight"),
    "int weight": (lambda g: _swap(g, Op.DENSE, weight=_node(g, Op.DENSE).weight.astype(np.int8)), Op.DENSE,
                   "must be a float array"),
    "groups": (lambda g: _swap(g, Op.CONV, weight=np.zeros((8, 2, 3, 3), np.float32)), Op.CONV, "groups=1"),
    "kernel": (lambda g: _swap(g, Op.CONV, weight=np.zeros((8, 3, 1, 1), np.float32)), Op.CONV, "match kernel"),
    "dense weight": (lambda g: _swap(g, Op.DENSE, weight=np.zeros((10, 9), np.float32)), Op.DENSE,
                     r"does not fit input \(1, 8\)"),
    "bias": (lambda g: _swap(g, Op.DENSE, bias=np.zeros(9, np.float32)), Op.DENSE, "bias"),
    "int bias": (lambda g: _swap(g, Op.DENSE, bias=np.zeros(10, np.int32)), Op.DENSE, "must be 10 finite floats"),
    "nan weight": (lambda g: _swap(g, Op.DENSE, weight=np.full((10, 8), np.nan, np.float32)), Op.DENSE, "NaN"),
    "conv out shape": (lambda g: _swap(g, Op.CONV, out_shape=(1, 8, 11, 12)), Op.CONV, "does not follow"),
    "dense out shape": (lambda g: _swap(g, Op.DENSE, out_shape=(1, 11)), Op.DENSE, "does not follow"),
    "gap out shape": (lambda g: _swap(g, Op.GLOBAL_AVGPOOL, out_shape=(1, 8, 2, 1)), Op.GLOBAL_AVGPOOL,
                      "does not follow"),
    "flatten out shape": (lambda g: _swap(g, Op.FLATTEN, out_shape=(1, 9)), Op.FLATTEN, "does not follow"),
    "pad out shape": (lambda g: _swap(g, Op.PAD, out_shape=(1, 8, 14, 15)), Op.PAD, "does not follow"),
    "elementwise out shape": (lambda g: _swap(g, Op.ACTIVATION, ActKind.TANH, out_shape=(1, 8, 7, 6)),
                              Op.ACTIVATION, "does not follow"),
    "pool channels": (lambda g: _swap(g, Op.MAXPOOL, out_shape=(1, 9, 7, 7)), Op.MAXPOOL, "does not follow"),
    "pool spatial size": (lambda g: _swap(g, Op.MAXPOOL, out_shape=(1, 8, 8, 8)), Op.MAXPOOL, "does not follow"),
}


@pytest.mark.parametrize("rule", FLOAT_RULES)
def test_float_rule_fails_naming_the_node(rule, every_op):
    build, op, match = FLOAT_RULES[rule]
    bad = build(every_op)
    first_changed = next(b for a, b in zip(every_op.nodes, bad.nodes, strict=True) if a is not b)
    assert first_changed.op is op
    with pytest.raises(IRError, match=f"node {first_changed.name!r} \\({op.value}\\): .*{match}"):
        verify(bad)


def test_add_of_unequal_shapes_is_refused(every_op):
    add = _node(every_op, Op.ADD)
    # both inputs declared as they are produced, but of different shapes: a producer whose shape differs
    odd = replace(add, inputs=(add.inputs[0], every_op.input_name), in_shapes=(add.in_shapes[0], every_op.input_shape))
    bad = replace(every_op, nodes=tuple(odd if n is add else n for n in every_op.nodes))
    with pytest.raises(IRError, match=f"node {add.name!r}.*must be equal"):
        verify(bad)


@pytest.mark.parametrize("op", [Op.GLOBAL_AVGPOOL, Op.PAD])
def test_spatial_ops_need_nchw_input(op):
    attrs = PadAttrs((1, 1, 1, 1)) if op is Op.PAD else ATTRS_OF_OP[op]()
    node = Node("n", op, ("x",), "y", ((1, 8),), (1, 8, 1, 1), attrs)
    with pytest.raises(IRError, match=rf"node 'n' \({op.value}\): input shape \(1, 8\) is not NCHW"):
        verify(Graph("g", "x", (1, 8), (node,), "y"))


def test_graph_output_must_be_produced(every_op):
    with pytest.raises(IRError, match="graph output 'nowhere'"):
        verify(replace(every_op, output="nowhere"))
    with pytest.raises(IRError, match="is not produced"):
        verify(replace(every_op, output=every_op.input_name))


def test_quantized_graph_needs_quant_on_every_node(every_op_q):
    with pytest.raises(IRError, match=r"node 'Flatten_\d+'.*no quantization parameters"):
        verify(_swap(every_op_q, Op.FLATTEN, quant=None))


QUANT_RULES = {
    "out bits": (lambda g: _swap_quant(g, Op.DENSE, out=QParams(0.1, 0, 9)), Op.DENSE, r"quant.out bits = 9"),
    "out scale": (lambda g: _swap_quant(g, Op.DENSE, out=QParams(float("nan"), 0)), Op.DENSE, "quant.out scale"),
    "out zero scale": (lambda g: _swap_quant(g, Op.DENSE, out=QParams(0.0, 0)), Op.DENSE, "quant.out scale"),
    "out zero point": (lambda g: _swap_quant(g, Op.DENSE, out=QParams(0.1, 128)), Op.DENSE, "quant.out zero_point"),
    "in_zero_points count": (lambda g: _swap_quant(g, Op.ADD, in_zero_points=(0,)), Op.ADD,
                             r"in_zero_points has 1 entries for 2 input"),
    "in_zero_points value": (lambda g: _swap_quant(g, Op.DENSE, in_zero_points=(_node(g, Op.DENSE).quant
                                                                                .in_zero_points[0] + 1,)),
                             Op.DENSE, "whose zero point is"),
    "pass-through": (lambda g: _swap_quant(g, Op.MAXPOOL, out=replace(_node(g, Op.MAXPOOL).quant.out, scale=0.5)),
                     Op.MAXPOOL, "keep the input's scale"),
    "input_requants count": (lambda g: _swap_quant(g, Op.ADD, input_requants=_node(g, Op.ADD).quant.input_requants[:1]),
                             Op.ADD, "input_requants has 1 entries, expected 2"),
    "input_requants on conv": (lambda g: _swap_quant(g, Op.CONV, input_requants=(_node(g, Op.CONV).quant.requant,)),
                               Op.CONV, "input_requants has 1 entries, expected 0"),
    "requant missing": (lambda g: _swap_quant(g, Op.AVGPOOL, requant=None), Op.AVGPOOL, "quant.requant is missing"),
    "relu requant missing": (lambda g: _swap_quant(g, Op.ACTIVATION, ActKind.RELU, requant=None), Op.ACTIVATION,
                             "quant.requant is missing"),
    "m0 float": (lambda g: _swap_requant(g, Op.CONV, m0=_node(g, Op.CONV).quant.requant.m0.astype(np.float64)),
                 Op.CONV, "quant.requant.m0 must be an integer array"),
    "m0 shape": (lambda g: _swap_requant(g, Op.CONV, m0=np.full((3, 1, 1), 1 << 30)), Op.CONV,
                 r"quant.requant.m0 has shape \(3, 1, 1\)"),
    "m0 small": (lambda g: _swap_requant(g, Op.DENSE, m0=np.full(10, (1 << 30) - 1)), Op.DENSE,
                 r"quant.requant.m0 holds 1073741823"),
    "m0 int32": (lambda g: _swap_requant(g, Op.DENSE, m0=np.full(10, 1 << 31)), Op.DENSE, "quant.requant.m0 holds"),
    "shift high": (lambda g: _swap_requant(g, Op.DENSE, shift=np.full(10, 63)), Op.DENSE, "quant.requant.shift"),
    "shift low": (lambda g: _swap_requant(g, Op.DENSE, shift=np.full(10, -32)), Op.DENSE, "quant.requant.shift"),
    "shift shape": (lambda g: _swap_requant(g, Op.DENSE, shift=np.zeros(3, np.int64)), Op.DENSE,
                    r"quant.requant.shift has shape \(3,\)"),
    "qmin": (lambda g: _swap_requant(g, Op.DENSE, qmin=-129), Op.DENSE, r"quant.requant.qmin = -129"),
    "qmax": (lambda g: _swap_requant(g, Op.DENSE, qmax=128), Op.DENSE, r"quant.requant.qmax = 128"),
    "requant zp range": (lambda g: _swap_requant(g, Op.DENSE, qmin=_node(g, Op.DENSE).quant.requant.zero_point + 1),
                         Op.DENSE, r"zero_point .* is outside \[qmin, qmax\]"),
    "requant zp vs out": (lambda g: _swap_requant(g, Op.AVGPOOL, zero_point=_node(g, Op.AVGPOOL).quant.out.zero_point
                                                  + 1), Op.AVGPOOL, "differs from quant.out.zero_point"),
    "add input requant m0": (lambda g: _swap_add_input_requant(g, m0=np.array(5)), Op.ADD,
                             r"quant.input_requants\[0\].m0 holds 5"),
    "add input requant qmax": (lambda g: _swap_add_input_requant(g, qmax=1 << 31), Op.ADD,
                               r"quant.input_requants\[0\].qmax"),
    "weight dtype": (lambda g: _swap_quant(g, Op.CONV, weight=_node(g, Op.CONV).quant.weight.astype(np.int32)),
                     Op.CONV, "quant.weight is int32"),
    "weight shape": (lambda g: _swap_quant(g, Op.DENSE, weight=np.zeros((10, 9), np.int8)), Op.DENSE,
                     r"quant.weight is int8 \(10, 9\)"),
    "weight float": (lambda g: _swap_quant(g, Op.DENSE, weight=np.zeros((10, 8), np.float32)), Op.DENSE,
                     "quant.weight must be an integer array"),
    "acc_bias missing": (lambda g: _swap_quant(g, Op.DENSE, acc_bias=None), Op.DENSE, "quant.acc_bias is missing"),
    "acc_bias dtype": (lambda g: _swap_quant(g, Op.DENSE, acc_bias=np.zeros(10, np.int64)), Op.DENSE,
                       "quant.acc_bias is int64"),
    "bias shape": (lambda g: _swap_quant(g, Op.CONV, bias=np.zeros(7, np.int32)), Op.CONV,
                   r"quant.bias is int32 \(7,\)"),
    "weight_scale shape": (lambda g: _swap_quant(g, Op.DENSE, weight_scale=np.ones(3)), Op.DENSE,
                           r"quant.weight_scale must be a float array of shape \(10,\)"),
    "weight_scale sign": (lambda g: _swap_quant(g, Op.DENSE, weight_scale=-np.ones(10)), Op.DENSE,
                          "quant.weight_scale must be finite and > 0"),
    "lut missing": (lambda g: _swap_quant(g, Op.ACTIVATION, ActKind.TANH, lut=None), Op.ACTIVATION,
                    "quant.lut must be an integer array"),
    "lut shape": (lambda g: _swap_quant(g, Op.ACTIVATION, ActKind.SIGMOID, lut=np.zeros(255, np.int8)),
                  Op.ACTIVATION, r"quant.lut has shape \(255,\)"),
    "lut dtype": (lambda g: _swap_quant(g, Op.ACTIVATION, ActKind.SIGMOID, lut=np.zeros(256, np.int32)),
                  Op.ACTIVATION, "quant.lut is int32: must be int8"),
    "softmax lut": (lambda g: _swap_quant(g, Op.SOFTMAX, lut=np.zeros(256, np.int32)), Op.SOFTMAX,
                    "quant.lut .softmax, Q15."),
    "pad fill": (lambda g: _swap_quant(g, Op.PAD, fill=200), Op.PAD, r"quant.fill = 200"),
}


@pytest.mark.parametrize("rule", QUANT_RULES)
def test_quant_rule_fails_naming_node_and_field(rule, every_op_q):
    build, op, match = QUANT_RULES[rule]
    bad = build(every_op_q)
    changed = [b for a, b in zip(every_op_q.nodes, bad.nodes, strict=True) if a is not b]
    assert len(changed) == 1 and changed[0].op is op
    with pytest.raises(IRError, match=f"node {changed[0].name!r} \\({op.value}\\): .*{match}"):
        verify(bad)


@pytest.mark.parametrize("input_quant,match", [(QParams(-1.0, 0), "scale"), (QParams(0.1, -129), "zero_point"),
                                               (QParams(0.1, 0, 1), "bits")])
def test_input_quant_rules_name_the_graph(input_quant, match, every_op_q):
    with pytest.raises(IRError, match=f"graph 'every_op': input_quant {match}"):
        verify(replace(every_op_q, input_quant=input_quant))


@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(pow2=True), QuantConfig(per_channel=False),
                                 QuantConfig(weight_bits=4, act_bits=3)], ids=["default", "pow2", "per-tensor", "w4a3"])
def test_valid_graphs_pass(cfg, every_op, every_op_q, lenet, lenet_q):
    from quant.calibrate import collect_ranges
    calib = np.random.default_rng(5).random((8, 3, 12, 12), dtype=np.float32)
    for graph in (every_op, lenet, lenet_q, every_op_q, quantize(every_op, collect_ranges(every_op, calib), cfg)):
        assert verify(graph) is graph
    assert {n.op for n in every_op.nodes} == set(Op)  # the rule tables above reach every op
