"""Export a quantized IR graph as a QDQ ONNX model (QuantizeLinear/DequantizeLinear
around float ops), the form onnxruntime turns into its own int8 kernels. Used to
cross-check our integer executor against an independent implementation."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quant.errors import ConfigError
from quant.ir import ActKind, Clamp, Graph, Node, Op, QParams

OPSET = 18


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def qdq(self, tensor: str, qp: QParams) -> str:
        s = self.const(tensor + "_scale", np.float32(qp.scale))
        z = self.const(tensor + "_zp", np.int8(qp.zero_point))
        q = self.node("QuantizeLinear", [tensor, s, z], tensor + "_q")
        return self.node("DequantizeLinear", [q, s, z], tensor + "_dq")

    def dq_const(self, name: str, q: np.ndarray, scale: np.ndarray, zp_dtype: type) -> str:
        args = [self.const(name + "_q", q), self.const(name + "_scale", scale.astype(np.float32)),
                self.const(name + "_zp", np.zeros(scale.shape, dtype=zp_dtype))]
        return self.node("DequantizeLinear", args, name + "_dq", axis=0)

    def clamp(self, tensor: str, act: Clamp | None) -> str:
        if act is None:
            return tensor
        if act.lo == 0.0 and math.isinf(act.hi):
            return self.node("Relu", [tensor], tensor + "_relu")
        lo = self.const(tensor + "_lo", np.float32(act.lo))
        hi = self.const(tensor + "_hi", np.float32(act.hi))
        return self.node("Clip", [tensor, lo, hi], tensor + "_clip")


def _gemm(b: _Builder, node: Node, x: str, s_in: QParams) -> str:
    q = node.quant
    w = b.dq_const(node.output + "_w", q.weight, q.weight_scale, np.int8)
    bias = b.dq_const(node.output + "_b", q.bias, (s_in.scale * q.weight_scale).astype(np.float32), np.int32)
    if node.op is Op.DENSE:
        y = b.node("Gemm", [x, w, bias], node.output + "_f", transB=1)
    else:
        a = node.attrs
        y = b.node("Conv", [x, w, bias], node.output + "_f", kernel_shape=list(a.kernel), strides=list(a.stride),
                   pads=[a.pads[0], a.pads[1], a.pads[2], a.pads[3]], dilations=list(a.dilation), group=a.groups)
    return b.clamp(y, node.attrs.act)


def _float_op(b: _Builder, node: Node, xs: list[str], s_in: QParams) -> str:
    out, a = node.output + "_f", node.attrs
    if node.op in (Op.CONV, Op.DENSE):
        return _gemm(b, node, xs[0], s_in)
    if node.op in (Op.MAXPOOL, Op.AVGPOOL):
        kw = {"count_include_pad": int(a.count_include_pad)} if node.op is Op.AVGPOOL else {}
        return b.node("MaxPool" if node.op is Op.MAXPOOL else "AveragePool", xs, out, kernel_shape=list(a.kernel),
                      strides=list(a.stride), pads=list(a.pads), ceil_mode=int(a.ceil_mode), **kw)
    if node.op is Op.GLOBAL_AVGPOOL:
        return b.node("GlobalAveragePool", xs, out)
    if node.op is Op.ADD:
        return b.clamp(b.node("Add", xs, out), a.act)
    if node.op is Op.ACTIVATION:
        if a.kind in (ActKind.TANH, ActKind.SIGMOID):
            return b.node("Tanh" if a.kind is ActKind.TANH else "Sigmoid", xs, out)
        return b.clamp(xs[0], Clamp(max(a.lo, 0.0) if a.kind is ActKind.RELU else a.lo, a.hi))
    if node.op is Op.FLATTEN:
        return b.node("Flatten", xs, out, axis=1)
    if node.op is Op.SOFTMAX:
        return b.node("Softmax", xs, out, axis=-1)
    if node.op is Op.PAD:
        pads = b.const(out + "_pads", np.array([0, 0, a.pads[0], a.pads[1], 0, 0, a.pads[2], a.pads[3]]))
        return b.node("Pad", [xs[0], pads, b.const(out + "_value", np.float32(a.value))], out)
    raise ValueError(f"no QDQ export for {node.op}")


def to_qdq_model(graph: Graph) -> onnx.ModelProto:
    """The quantized graph as QDQ ONNX: float in, dequantized int8 logits out."""
    b = _Builder()
    dq = {graph.input_name: b.qdq(graph.input_name, graph.input_quant)}
    qp = {graph.input_name: graph.input_quant}
    for node in graph.nodes:
        y = _float_op(b, node, [dq[t] for t in node.inputs], qp[node.inputs[0]])
        dq[node.output] = b.qdq(y, node.quant.out)
        qp[node.output] = node.quant.out
    b.node("Identity", [dq[graph.output]], "output")
    shape = ["N", *graph.input_shape[1:]]
    out_shape = ["N", *graph.output_shape[1:]]
    g = helper.make_graph(b.nodes, graph.name + "_qdq",
                          [helper.make_tensor_value_info(graph.input_name, TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwsim")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def save_qdq(graph: Graph, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        onnx.save(to_qdq_model(graph), str(tmp))
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write there ({err.strerror})") from None
    return path
