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


def _activation(b: _Builder, node: Node, x: str, out: str) -> str:
    a = node.attrs
    k = a.kind
    if k in (ActKind.TANH, ActKind.SIGMOID, ActKind.HARD_SWISH):
        return b.node({ActKind.TANH: "Tanh", ActKind.SIGMOID: "Sigmoid", ActKind.HARD_SWISH: "HardSwish"}[k], [x], out)
    if k is ActKind.HARD_SIGMOID:
        return b.node("HardSigmoid", [x], out, alpha=a.alpha, beta=a.beta)
    if k is ActKind.LEAKY_RELU:
        return b.node("LeakyRelu", [x], out, alpha=a.alpha)
    if k is ActKind.SILU:
        return b.node("Mul", [x, b.node("Sigmoid", [x], out + "_sigmoid")], out)
    if k is ActKind.PRELU:
        slope = np.array(a.slope, np.float32).reshape(-1, *[1] * (len(node.in_shape) - 2)) if len(a.slope) > 1 \
            else np.array(a.slope, np.float32)
        return b.node("PRelu", [x, b.const(out + "_slope", slope)], out)
    return b.clamp(x, Clamp(max(a.lo, 0.0) if k is ActKind.RELU else a.lo, a.hi))


def _float_op(b: _Builder, node: Node, xs: list[str], s_in: QParams) -> str:
    out, a = node.output + "_f", node.attrs
    if node.op in (Op.CONV, Op.DENSE):
        return _gemm(b, node, xs[0], s_in)
    if node.op is Op.AFFINE:
        q, shape = node.quant, b.const(out + "_shape", np.array([1, -1, *[1] * (len(node.in_shape) - 2)]))
        w = b.node("Reshape", [b.dq_const(out + "_w", q.weight, q.weight_scale, np.int8), shape], out + "_w_r")
        bias = b.dq_const(out + "_b", q.bias, (s_in.scale * q.weight_scale).astype(np.float32), np.int32)
        y = b.node("Add", [b.node("Mul", [xs[0], w], out + "_mul"), b.node("Reshape", [bias, shape], out + "_b_r")],
                   out)
        return b.clamp(y, a.act)
    if node.op in (Op.MAXPOOL, Op.AVGPOOL):
        kw = {"count_include_pad": int(a.count_include_pad)} if node.op is Op.AVGPOOL else {}
        return b.node("MaxPool" if node.op is Op.MAXPOOL else "AveragePool", xs, out, kernel_shape=list(a.kernel),
                      strides=list(a.stride), pads=list(a.pads), ceil_mode=int(a.ceil_mode), **kw)
    if node.op is Op.GLOBAL_AVGPOOL:
        return b.node("GlobalAveragePool", xs, out)
    if node.op is Op.ADD:
        return b.clamp(b.node("Add", xs, out), a.act)
    if node.op is Op.ACTIVATION:
        return _activation(b, node, xs[0], out)
    if node.op is Op.FLATTEN:
        return b.node("Reshape", [xs[0], b.const(out + "_shape", np.array([0, *node.out_shape[1:]]))], out)
    if node.op is Op.CONCAT:
        return b.node("Concat", xs, out, axis=1)
    if node.op is Op.MUL:
        return b.node("Mul", xs, out)
    if node.op is Op.SLICE:
        bounds = [b.const(out + n, np.array([v])) for n, v in (("_start", a.start), ("_stop", a.stop), ("_axis", 1))]
        return b.node("Slice", [xs[0], *bounds], out)
    if node.op in (Op.SHUFFLE, Op.RESIZE):  # a Gather per permuted axis
        y = xs[0]
        for axis, index in ((1, a.perm),) if node.op is Op.SHUFFLE else ((2, a.rows), (3, a.cols)):
            y = b.node("Gather", [y, b.const(f"{out}_index{axis}", np.array(index, dtype=np.int64))], f"{out}_{axis}",
                       axis=axis)
        return y
    if node.op is Op.ZERO_INSERT:  # a 1x1 depthwise ConvTranspose of weight 1 inserts the zeros
        c = node.in_shape[1]
        return b.node("ConvTranspose", [xs[0], b.const(out + "_one", np.ones((c, 1, 1, 1), np.float32))], out,
                      strides=list(a.stride), group=c)
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
