"""One mapper per ONNX op, registered in one table (`MAPPERS`).

A mapper reads one onnx.NodeProto through an `ImportContext` and either emits IR
nodes (`ctx.emit`), records a constant (`ctx.consts`) or aliases its output to
its input (`ctx.alias`). Registering an op twice is an error.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import onnx
from onnx import helper

from quant.errors import ShapeError, UnsupportedOpError
from quant.ir import (
    ActAttrs,
    ActKind,
    AddAttrs,
    ConvAttrs,
    DenseAttrs,
    NoAttrs,
    Node,
    Op,
    PadAttrs,
    PoolAttrs,
    Shape,
    window_output_size,
)


class ShapeWarning(UserWarning):
    """A window that does not tile its input: ONNX floor semantics drop input rows/cols."""


Mapper = Callable[[onnx.NodeProto, "ImportContext"], None]
MAPPERS: dict[str, Mapper] = {}

# Ops evaluated at import time when all their inputs are constants (shape arithmetic
# such as torch's x.view(x.size(0), -1) chain); evaluated with onnx.reference.
FOLDABLE_OPS = frozenset({"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul",
                          "Div", "Sub", "Add", "ReduceProd", "Range", "ConstantOfShape", "Expand",
                          "Reshape", "Transpose", "Identity", "Sqrt", "Neg"})


def register(*op_types: str) -> Callable[[Mapper], Mapper]:
    def wrap(fn: Mapper) -> Mapper:
        for op_type in op_types:
            if op_type in MAPPERS:
                raise RuntimeError(f"ONNX op {op_type} registered twice")
            MAPPERS[op_type] = fn
        return fn
    return wrap


class ImportContext:
    """Mutable state of one import: constants, tensor shapes, emitted IR nodes."""

    def __init__(self, consts: dict[str, np.ndarray], input_name: str, input_shape: Shape, opset: int):
        self.consts = consts
        self.shapes: dict[str, Shape] = {input_name: input_shape}
        self.nodes: list[Node] = []
        self.aliases: dict[str, str] = {}
        self.opset = opset
        self.uses: dict[str, int] = {}
        self.producers: dict[str, int] = {}  # tensor -> index in nodes

    def name_of(self, proto: onnx.NodeProto) -> str:
        return proto.name or f"{proto.op_type}_{len(self.nodes)}"

    def resolve(self, tensor: str) -> str:
        while tensor in self.aliases:
            tensor = self.aliases[tensor]
        return tensor

    def shape(self, proto: onnx.NodeProto, tensor: str) -> Shape:
        tensor = self.resolve(tensor)
        if tensor not in self.shapes:
            raise UnsupportedOpError(f"node {self.name_of(proto)!r} ({proto.op_type}): input {tensor!r} "
                                     "is neither a tensor hwsim computes nor a constant")
        return self.shapes[tensor]

    def const(self, proto: onnx.NodeProto, tensor: str, what: str) -> np.ndarray:
        if tensor not in self.consts:
            raise UnsupportedOpError(f"node {self.name_of(proto)!r} ({proto.op_type}): {what} {tensor!r} "
                                     "must be a constant initializer")
        return self.consts[tensor]

    def opt_const(self, proto: onnx.NodeProto, index: int) -> np.ndarray | None:
        if len(proto.input) > index and proto.input[index]:
            return self.const(proto, proto.input[index], f"input {index}")
        return None

    def emit(self, proto: onnx.NodeProto, op: Op, inputs: list[str], out_shape: Shape, attrs: Any = None,
             weight: np.ndarray | None = None, bias: np.ndarray | None = None,
             output: str | None = None, name: str | None = None) -> Node:
        inputs = [self.resolve(t) for t in inputs]
        node = Node(name=name or self.name_of(proto), op=op, inputs=tuple(inputs), output=output or proto.output[0],
                    in_shapes=tuple(self.shapes[t] for t in inputs), out_shape=tuple(int(d) for d in out_shape),
                    attrs=attrs if attrs is not None else NoAttrs(), weight=weight, bias=bias)
        self.producers[node.output] = len(self.nodes)
        self.nodes.append(node)
        self.shapes[node.output] = node.out_shape
        return node


def fail(proto: onnx.NodeProto, ctx: ImportContext, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): {why}")


def attrs_of(proto: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in proto.attribute}


def _pads4(proto: onnx.NodeProto, ctx: ImportContext, attrs: dict, in_hw: tuple[int, int],
           kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", "VALID"):
        pads = list(attrs.get("pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else [0, 0, 0, 0]
        if len(pads) != 4 or not all(isinstance(v, int) and v >= 0 for v in pads):
            raise fail(proto, ctx, f"expects four non-negative 2-D pads, got {pads}")
        return pads[0], pads[1], pads[2], pads[3]
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise fail(proto, ctx, f"auto_pad={auto_pad} is not supported")
    pads = []
    for n, f, s, d in zip(in_hw, kernel, stride, dilation, strict=False):
        out = math.ceil(n / s)
        total = max(0, (out - 1) * s + d * (f - 1) + 1 - n)
        pads.append((total // 2, total - total // 2) if auto_pad == "SAME_UPPER" else (total - total // 2, total // 2))
    return pads[0][0], pads[1][0], pads[0][1], pads[1][1]


def _window_out(proto: onnx.NodeProto, ctx: ImportContext, in_hw: tuple[int, int], kernel: tuple[int, int],
                stride: tuple[int, int], pads: tuple[int, int, int, int], dilation: tuple[int, int],
                ceil_mode: bool = False) -> tuple[int, int]:
    out = []
    for axis, (n, f, s, pb, pe, d) in enumerate(zip(in_hw, kernel, stride, pads[:2], pads[2:], dilation, strict=False)):
        try:
            size, dropped = window_output_size(n, f, s, pb, pe, d, ceil_mode)
        except ValueError as err:
            raise ShapeError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): {err}") from None
        if dropped > pe:  # only padding dropped is harmless (stride-2 'same' convs)
            warnings.warn(f"node {ctx.name_of(proto)!r} ({proto.op_type}): (N + 2P - F)/S is not an integer along "
                          f"{'HW'[axis]} (N={n}, F={f}, S={s}, P={pb}+{pe}); ONNX floor semantics drop the last "
                          f"{dropped - pe} input {'row' if axis == 0 else 'col'}(s)", ShapeWarning, stacklevel=2)
        out.append(size)
    return out[0], out[1]


def _spatial(proto: onnx.NodeProto, ctx: ImportContext, in_shape: Shape) -> None:
    if len(in_shape) != 4:
        raise fail(proto, ctx, f"only 2-D (NCHW) inputs are supported, got shape {in_shape}")


def ints_attr(proto: onnx.NodeProto, ctx: ImportContext, attrs: dict, key: str, default: tuple[int, ...],
              minimum: int = 1) -> tuple[int, ...]:
    """A 2-D integer attribute (kernel_shape, strides, dilations): exactly two values, each >= minimum."""
    value = attrs.get(key, default)
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise fail(proto, ctx, f"{key} must be two integers for a 2-D op, got {value!r}")
    if min(value) < minimum:
        raise fail(proto, ctx, f"{key} {list(value)} must be at least {minimum}")
    return tuple(int(v) for v in value)


def finite_float(proto: onnx.NodeProto, ctx: ImportContext, attrs: dict, key: str, default: float) -> float:
    value = attrs.get(key, default)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(proto, ctx, f"{key} must be a finite number, got {value!r}")
    return float(value)


@register("Conv")
def map_conv(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    weight = ctx.const(proto, proto.input[1], "weight").astype(np.float32)
    if weight.ndim != 4:
        raise fail(proto, ctx, f"weight of shape {weight.shape} is not 4-D (filters, channels/group, kh, kw)")
    bias = ctx.opt_const(proto, 2)
    a = attrs_of(proto)
    kernel = ints_attr(proto, ctx, a, "kernel_shape", weight.shape[2:])
    stride = ints_attr(proto, ctx, a, "strides", (1, 1))
    dilation = ints_attr(proto, ctx, a, "dilations", (1, 1))
    groups = a.get("group", 1)
    if not isinstance(groups, int) or groups < 1:
        raise fail(proto, ctx, f"group must be a positive integer, got {groups!r}")
    if kernel != weight.shape[2:]:
        raise fail(proto, ctx, f"kernel_shape {list(kernel)} does not match the weight's {list(weight.shape[2:])}")
    if in_shape[1] % groups or weight.shape[1] * groups != in_shape[1] or weight.shape[0] % groups:
        raise fail(proto, ctx, f"weight {weight.shape} with group={groups} does not fit {in_shape[1]} input channels")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise fail(proto, ctx, f"bias of shape {bias.shape} does not match {weight.shape[0]} filters")
    pads = _pads4(proto, ctx, a, in_shape[2:], kernel, stride, dilation)
    oh, ow = _window_out(proto, ctx, in_shape[2:], kernel, stride, pads, dilation)
    attrs = ConvAttrs(kernel=kernel, stride=stride, pads=pads, dilation=dilation, groups=groups)
    ctx.emit(proto, Op.CONV, [proto.input[0]], (1, weight.shape[0], oh, ow), attrs, weight,
             None if bias is None else bias.astype(np.float32))


@register("Gemm")
def map_gemm(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    a = attrs_of(proto)
    in_shape = ctx.shape(proto, proto.input[0])
    if a.get("transA", 0) or len(in_shape) != 2:
        raise fail(proto, ctx, f"only Y = X @ W (+ C) with X of shape (N, K) is supported, got X {in_shape}")
    weight = ctx.const(proto, proto.input[1], "B").astype(np.float32)
    if weight.ndim != 2:
        raise fail(proto, ctx, f"B of shape {weight.shape} is not a matrix")
    weight = weight * np.float32(finite_float(proto, ctx, a, "alpha", 1.0))
    weight = weight if a.get("transB", 0) else weight.T
    if weight.shape[1] != in_shape[1]:
        raise fail(proto, ctx, f"weight {weight.shape} does not fit input {in_shape}")
    bias = ctx.opt_const(proto, 2)
    if bias is not None:  # C broadcasts to Y's (batch, N): per column only; a per-row C depends on the batch
        n = weight.shape[0]
        try:
            bias = np.broadcast_to(bias.astype(np.float32), (1, n)).reshape(n)
        except ValueError:
            raise fail(proto, ctx, f"bias C of shape {bias.shape} does not broadcast to one row of (batch, {n}); "
                       "hwsim runs one image per row") from None
        bias = bias * np.float32(finite_float(proto, ctx, a, "beta", 1.0))
    ctx.emit(proto, Op.DENSE, [proto.input[0]], (1, weight.shape[0]), DenseAttrs(), np.ascontiguousarray(weight),
             None if bias is None else np.ascontiguousarray(bias, dtype=np.float32))


@register("MatMul")
def map_matmul(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    weight = ctx.const(proto, proto.input[1], "B")
    if len(in_shape) != 2 or weight.ndim != 2 or weight.shape[0] != in_shape[1]:
        raise fail(proto, ctx, f"only (N, K) @ constant (K, N) is supported, got {in_shape} @ {weight.shape}")
    ctx.emit(proto, Op.DENSE, [proto.input[0]], (1, weight.shape[1]), DenseAttrs(),
             np.ascontiguousarray(weight.T, dtype=np.float32))


@register("Add")
def map_add(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    x, y = proto.input
    if x in ctx.consts or y in ctx.consts:
        _map_bias_add(proto, ctx, y if x in ctx.consts else x, ctx.consts[x if x in ctx.consts else y])
        return
    sx, sy = ctx.shape(proto, x), ctx.shape(proto, y)
    if sx != sy:
        raise fail(proto, ctx, f"broadcasting Add is not supported ({sx} + {sy})")
    ctx.emit(proto, Op.ADD, [x, y], sx, AddAttrs())


def _map_bias_add(proto: onnx.NodeProto, ctx: ImportContext, tensor: str, const: np.ndarray) -> None:
    """Add of a constant: folded into the bias of the Conv/Dense that produces `tensor`."""
    tensor = ctx.resolve(tensor)
    index = ctx.producers.get(tensor)
    prev = None if index is None else ctx.nodes[index]
    channels = None if prev is None or prev.op not in (Op.CONV, Op.DENSE) else prev.weight.shape[0]
    if channels is None or ctx.uses.get(tensor, 0) != 1 or prev.attrs.act is not None:
        raise fail(proto, ctx, "adding a constant is supported only as the bias of a Conv/MatMul")
    out = prev.out_shape
    aligned = (1,) * (len(out) - const.ndim) + tuple(const.shape)  # numpy broadcasting aligns on the right
    if len(aligned) != len(out) or any(d != 1 for i, d in enumerate(aligned) if i != 1) or \
            aligned[1] not in (1, channels):
        raise fail(proto, ctx, f"constant of shape {const.shape} is not a per-channel bias of {out} (it would "
                   "change the output's shape or vary along another axis)")
    flat = const.astype(np.float32).reshape(-1)
    bias = (prev.bias if prev.bias is not None else 0.0) + np.broadcast_to(flat, (channels,))
    ctx.nodes[index] = replace(prev, bias=bias.astype(np.float32), output=proto.output[0])
    del ctx.producers[tensor]
    ctx.producers[proto.output[0]] = index
    ctx.shapes[proto.output[0]] = prev.out_shape


def _activation(proto: onnx.NodeProto, ctx: ImportContext, attrs: ActAttrs) -> None:
    shape = ctx.shape(proto, proto.input[0])
    ctx.emit(proto, Op.ACTIVATION, [proto.input[0]], shape, attrs)


@register("Relu")
def map_relu(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _activation(proto, ctx, ActAttrs(ActKind.RELU))


@register("Clip")
def map_clip(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    a = attrs_of(proto)
    lo = ctx.opt_const(proto, 1)
    hi = ctx.opt_const(proto, 2)
    lo = float(lo) if lo is not None and lo.size else float(a.get("min", -math.inf))
    hi = float(hi) if hi is not None and hi.size else float(a.get("max", math.inf))
    if math.isnan(lo) or math.isnan(hi) or lo > 0 or hi <= 0:
        raise fail(proto, ctx, f"Clip({lo}, {hi}) must contain 0 to be quantized as a clamp")
    _activation(proto, ctx, ActAttrs(ActKind.CLIP, lo, hi))


@register("Tanh")
def map_tanh(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _activation(proto, ctx, ActAttrs(ActKind.TANH, -1.0, 1.0))


@register("Sigmoid")
def map_sigmoid(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _activation(proto, ctx, ActAttrs(ActKind.SIGMOID, 0.0, 1.0))


def _pool(proto: onnx.NodeProto, ctx: ImportContext, op: Op) -> None:
    if len([o for o in proto.output if o]) > 1:
        raise fail(proto, ctx, "the Indices output is not supported")
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    a = attrs_of(proto)
    kernel = tuple(a["kernel_shape"])
    stride = tuple(a.get("strides", (1, 1)))
    if tuple(a.get("dilations", (1, 1))) != (1, 1):
        raise fail(proto, ctx, "dilated pooling is not supported")
    pads = _pads4(proto, ctx, a, in_shape[2:], kernel, stride, (1, 1))
    ceil_mode = bool(a.get("ceil_mode", 0))  # the IR keeps the model's pads; see PoolAttrs
    oh, ow = _window_out(proto, ctx, in_shape[2:], kernel, stride, pads, (1, 1), ceil_mode)
    attrs = PoolAttrs(kernel=kernel, stride=stride, pads=pads,
                      count_include_pad=bool(a.get("count_include_pad", 0)), ceil_mode=ceil_mode)
    ctx.emit(proto, op, [proto.input[0]], (1, in_shape[1], oh, ow), attrs)


@register("MaxPool")
def map_maxpool(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _pool(proto, ctx, Op.MAXPOOL)


@register("AveragePool")
def map_avgpool(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _pool(proto, ctx, Op.AVGPOOL)


@register("GlobalAveragePool")
def map_gap(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    ctx.emit(proto, Op.GLOBAL_AVGPOOL, [proto.input[0]], (1, in_shape[1], 1, 1))


@register("ReduceMean")
def map_reduce_mean(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    a = attrs_of(proto)
    axes = ctx.opt_const(proto, 1)
    axes = sorted(int(x) % 4 for x in (axes if axes is not None else a.get("axes", [])))
    if len(in_shape) != 4 or axes != [2, 3]:
        raise fail(proto, ctx, f"only the mean over H and W (axes 2, 3) is supported, got axes {axes}")
    if a.get("keepdims", 1):
        map_gap(proto, ctx)
        return
    pooled = proto.output[0] + "__pooled"
    ctx.emit(proto, Op.GLOBAL_AVGPOOL, [proto.input[0]], (1, in_shape[1], 1, 1), output=pooled)
    ctx.emit(proto, Op.FLATTEN, [pooled], (1, in_shape[1]), name=ctx.name_of(proto) + "_flatten")


@register("BatchNormalization")
def map_batchnorm(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    """Becomes a per-channel affine (a depthwise 1x1 conv); passes fold it into the conv before it."""
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    gamma, beta, mean, var = (ctx.const(proto, t, "parameter").astype(np.float64) for t in proto.input[1:5])
    eps = finite_float(proto, ctx, attrs_of(proto), "epsilon", 1e-5)
    channels = in_shape[1]
    if any(p.shape != (channels,) for p in (gamma, beta, mean, var)):
        raise fail(proto, ctx, f"scale/bias/mean/var must each hold {channels} values")
    with np.errstate(all="ignore"):
        scale = gamma / np.sqrt(var + eps)
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(beta - mean * scale))):
        raise fail(proto, ctx, "parameters give a non-finite scale or shift (negative variance, NaN or inf)")
    attrs = ConvAttrs(kernel=(1, 1), groups=channels)
    ctx.emit(proto, Op.CONV, [proto.input[0]], in_shape, attrs, scale.reshape(channels, 1, 1, 1).astype(np.float32),
             (beta - mean * scale).astype(np.float32))


@register("Flatten")
def map_flatten(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    axis = attrs_of(proto).get("axis", 1)
    if not isinstance(axis, int) or axis % max(len(in_shape), 1) != 1:
        raise fail(proto, ctx, f"only Flatten(axis=1) is supported, got axis {axis!r}")
    ctx.emit(proto, Op.FLATTEN, [proto.input[0]], (1, math.prod(in_shape[1:])))


@register("Reshape")
def map_reshape(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    target = [int(d) for d in ctx.const(proto, proto.input[1], "shape").reshape(-1)]
    allowzero = attrs_of(proto).get("allowzero", 0)
    if not allowzero:
        if len(target) > len(in_shape) and 0 in target[len(in_shape):]:
            raise fail(proto, ctx, f"shape {target}: a 0 (copy) past the input's rank {len(in_shape)}")
        target = [in_shape[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise fail(proto, ctx, f"invalid Reshape target {target}")
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        if known == 0 or math.prod(in_shape) % known:
            raise fail(proto, ctx, f"cannot reshape {in_shape} to {target}")
        target[target.index(-1)] = math.prod(in_shape) // known
    if math.prod(target) != math.prod(in_shape):
        raise fail(proto, ctx, f"cannot reshape {in_shape} ({math.prod(in_shape)} values) to {tuple(target)}")
    if tuple(target) == in_shape:
        ctx.aliases[proto.output[0]] = ctx.resolve(proto.input[0])
    elif len(target) == 2 and target[0] == 1:
        ctx.emit(proto, Op.FLATTEN, [proto.input[0]], (1, target[1]))
    else:
        raise fail(proto, ctx, f"Reshape {in_shape} -> {tuple(target)} is not a flatten")


@register("Softmax")
def map_softmax(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    axis = attrs_of(proto).get("axis", -1 if ctx.opset >= 13 else 1)
    if len(in_shape) != 2 or not isinstance(axis, int) or axis % 2 != 1:
        raise fail(proto, ctx, f"only Softmax over the last axis of an (N, K) tensor is supported, got {in_shape}")
    ctx.emit(proto, Op.SOFTMAX, [proto.input[0]], in_shape)


@register("Pad")
def map_pad(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    a = attrs_of(proto)
    mode = a.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        raise fail(proto, ctx, f"only constant padding is supported, got mode {mode!r}")
    pads = ctx.opt_const(proto, 1)
    pads = [int(p) for p in (pads.reshape(-1) if pads is not None else a["pads"])]
    if len(pads) != 2 * len(in_shape):
        raise fail(proto, ctx, f"pads {pads} do not give begin and end for each of {len(in_shape)} axes")
    value = ctx.opt_const(proto, 2)
    value = float(value.reshape(-1)[0]) if value is not None and value.size else float(a.get("value", 0.0))
    if not math.isfinite(value):
        raise fail(proto, ctx, f"pad value {value} is not finite")
    if len(ctx.opt_const(proto, 3) if ctx.opt_const(proto, 3) is not None else []) or \
            pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise fail(proto, ctx, f"only non-negative padding of H and W is supported, got pads {pads}")
    attrs = PadAttrs(pads=(pads[2], pads[3], pads[6], pads[7]), value=value)
    ctx.emit(proto, Op.PAD, [proto.input[0]],
             (1, in_shape[1], in_shape[2] + pads[2] + pads[6], in_shape[3] + pads[3] + pads[7]), attrs)


@register("Dropout", "Identity")
def map_identity(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    ctx.shape(proto, proto.input[0])
    ctx.aliases[proto.output[0]] = ctx.resolve(proto.input[0])


SUPPORTED_OPS = tuple(sorted(MAPPERS))
