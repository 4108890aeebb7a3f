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
    ResizeAttrs,
    Shape,
    ShuffleAttrs,
    SliceAttrs,
    ZeroInsertAttrs,
    window_output_size,
)


class ShapeWarning(UserWarning):
    """A window that does not tile its input: ONNX floor semantics drop input rows/cols."""


Mapper = Callable[[onnx.NodeProto, "ImportContext"], None]
MAX_ZERO_INSERTED = 1 << 28  # values per image a ConvTranspose's zero insertion may make (ImageNet CNNs: ~2^20)
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
        # Reshape/Transpose results that are not IR tensors yet: tensor -> (source tensor, index array); the
        # index array has the view's shape and holds, per element, its flat index in the source (batch 1)
        self.views: dict[str, tuple[str, np.ndarray]] = {}
        self.view_makers: dict[str, str] = {}  # view -> "'node' (Op)" that made it

    def view_error(self, tensor: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"node {self.view_makers[tensor]} gives shape {self.views[tensor][1].shape}, "
                                  "which is not a flatten, a 2-D/4-D reshape keeping the order or a channel "
                                  "permutation (hwsim supports only those)")

    def name_of(self, proto: onnx.NodeProto) -> str:
        return proto.name or f"{proto.op_type}_{len(self.nodes)}"

    def alias(self, out: str, source: str) -> None:
        """`out` names the same values as `source`: its uses become the source's (the aliasing node's
        own use of the source goes), so folds that need a sole consumer see every consumer."""
        source = self.resolve(source)
        self.aliases[out] = source
        self.uses[source] = self.uses.get(source, 0) - 1 + self.uses.get(out, 0)

    def resolve(self, tensor: str) -> str:
        while tensor in self.aliases:
            tensor = self.aliases[tensor]
        return tensor

    def shape(self, proto: onnx.NodeProto, tensor: str) -> Shape:
        tensor = self.resolve(tensor)
        if tensor in self.views:
            raise self.view_error(tensor)
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
        _channel_affine(proto, ctx, tensor, scale=None, shift=const, what="adding")
        return
    out = prev.out_shape
    aligned = (1,) * (len(out) - const.ndim) + tuple(const.shape)  # numpy broadcasting aligns on the right
    if len(aligned) != len(out) or any(d != 1 for i, d in enumerate(aligned) if i != 1) or \
            aligned[1] not in (1, channels):
        raise fail(proto, ctx, f"constant of shape {const.shape} is not a per-channel bias of {out} (it would "
                   "change the output's shape or vary along another axis)")
    flat = const.astype(np.float32).reshape(-1)
    bias = (prev.bias if prev.bias is not None else 0.0) + np.broadcast_to(flat, (channels,))
    _absorb(proto, ctx, tensor, replace(prev, bias=bias.astype(np.float32)))


def _absorb(proto: onnx.NodeProto, ctx: ImportContext, tensor: str, changed: Node) -> None:
    """The node producing `tensor`, changed to absorb proto (a bias, a scale), now produces proto's output."""
    index = ctx.producers.pop(tensor)
    ctx.nodes[index] = replace(changed, output=proto.output[0])
    ctx.producers[proto.output[0]] = index
    ctx.shapes[proto.output[0]] = changed.out_shape


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
    in_shape = _view_shape(proto, ctx, proto.input[0])
    axis = attrs_of(proto).get("axis", 1)
    if not isinstance(axis, int) or axis % max(len(in_shape), 1) != 1:
        raise fail(proto, ctx, f"only Flatten(axis=1) is supported, got axis {axis!r}")
    _reshape_to(proto, ctx, (1, math.prod(in_shape[1:])))


@register("Reshape")
def map_reshape(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = _view_shape(proto, ctx, proto.input[0])
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
    _reshape_to(proto, ctx, tuple(target))


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
    ctx.alias(proto.output[0], proto.input[0])


# --- reshapes, transposes and channel shuffles ----------------------------------------------------

def _view_shape(proto: onnx.NodeProto, ctx: ImportContext, tensor: str) -> Shape:
    tensor = ctx.resolve(tensor)
    return tuple(ctx.views[tensor][1].shape) if tensor in ctx.views else ctx.shape(proto, tensor)


def _index_of(proto: onnx.NodeProto, ctx: ImportContext, tensor: str) -> tuple[str, np.ndarray]:
    """(source IR tensor, per-element flat index into it) of a tensor or a pending view."""
    tensor = ctx.resolve(tensor)
    if tensor in ctx.views:
        return ctx.views[tensor]
    shape = ctx.shape(proto, tensor)
    return tensor, np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _define(proto: onnx.NodeProto, ctx: ImportContext, source: str, index: np.ndarray) -> None:
    """Give proto's output the values source.flat[index]: an alias, a reshape that keeps the order
    (2-D or 4-D), a channel permutation, or a view pending a later Reshape/Transpose."""
    out, shape, src_shape = proto.output[0], tuple(index.shape), ctx.shapes[source]
    if not shape or shape[0] != 1:
        raise fail(proto, ctx, f"result shape {shape} does not keep the batch axis first")
    flat = index.reshape(-1)
    if np.array_equal(flat, np.arange(flat.size)):
        if shape == src_shape:
            ctx.alias(out, source)
            return
        if len(shape) in (2, 4):
            ctx.emit(proto, Op.FLATTEN, [source], shape)
            return
    elif len(shape) == 4 and shape == src_shape:
        hw = shape[2] * shape[3]
        perm = index[0, :, 0, 0] // hw
        if np.array_equal(index[0], perm[:, None, None] * hw + np.arange(hw).reshape(shape[2:])):
            ctx.emit(proto, Op.SHUFFLE, [source], shape, ShuffleAttrs(tuple(int(c) for c in perm)))
            return
    ctx.views[out] = (source, index)
    ctx.view_makers[out] = f"{ctx.name_of(proto)!r} ({proto.op_type})"


def _reshape_to(proto: onnx.NodeProto, ctx: ImportContext, target: Shape) -> None:
    source, index = _index_of(proto, ctx, proto.input[0])
    _define(proto, ctx, source, index.reshape(target))


@register("Transpose")
def map_transpose(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    source, index = _index_of(proto, ctx, proto.input[0])
    perm = [int(p) for p in attrs_of(proto).get("perm", range(index.ndim - 1, -1, -1))]
    if sorted(perm) != list(range(index.ndim)):
        raise fail(proto, ctx, f"perm {perm} is not a permutation of {index.ndim} axes")
    if perm[0] != 0:
        raise fail(proto, ctx, f"perm {perm} moves the batch axis")
    _define(proto, ctx, source, index.transpose(perm))


def _axes(proto: onnx.NodeProto, ctx: ImportContext, rank: int) -> list[int]:
    axes = ctx.opt_const(proto, 1)
    axes = [int(v) for v in (axes.reshape(-1) if axes is not None else attrs_of(proto).get("axes", []))]
    return sorted({a % rank for a in axes})


@register("Squeeze")
def map_squeeze(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    shape = _view_shape(proto, ctx, proto.input[0])
    axes = _axes(proto, ctx, len(shape)) or [i for i, d in enumerate(shape) if d == 1 and i > 0]
    if 0 in axes or any(shape[a] != 1 for a in axes):
        raise fail(proto, ctx, f"cannot squeeze axes {axes} of {shape} (the batch axis or a size other than 1)")
    _reshape_to(proto, ctx, tuple(d for i, d in enumerate(shape) if i not in axes))


@register("Unsqueeze")
def map_unsqueeze(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    shape = list(_view_shape(proto, ctx, proto.input[0]))
    given = ctx.opt_const(proto, 1)
    given = [int(v) for v in (given.reshape(-1) if given is not None else attrs_of(proto).get("axes", []))]
    axes = sorted({v % (len(shape) + len(given)) for v in given})
    if len(axes) != len(given):
        raise fail(proto, ctx, f"axes {given} repeat an axis")
    if 0 in axes:
        raise fail(proto, ctx, "cannot insert an axis before the batch axis")
    for a in axes:
        shape.insert(a, 1)
    _reshape_to(proto, ctx, tuple(shape))


# --- channel concatenation, split and slice --------------------------------------------------------

def _channel_axis(proto: onnx.NodeProto, ctx: ImportContext, axis: Any, rank: int) -> None:
    if not isinstance(axis, int) or rank not in (2, 4) or axis % rank != 1:
        raise fail(proto, ctx, f"only the channel axis (1) of an (N, C) or NCHW tensor is supported, got axis "
                               f"{axis!r} of a rank-{rank} tensor")


@register("Concat")
def map_concat(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    inputs = [t for t in proto.input if t]
    if any(t in ctx.consts for t in inputs):
        raise fail(proto, ctx, "concatenating a constant with activations is not supported")
    shapes = [ctx.shape(proto, t) for t in inputs]
    _channel_axis(proto, ctx, attrs_of(proto).get("axis"), len(shapes[0]))
    if len(inputs) == 1:
        ctx.alias(proto.output[0], inputs[0])
        return
    if any(len(s) != len(shapes[0]) or s[:1] + s[2:] != shapes[0][:1] + shapes[0][2:] for s in shapes):
        raise fail(proto, ctx, f"shapes {shapes} differ in more than the channels")
    ctx.emit(proto, Op.CONCAT, inputs, (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:]))


@register("Split")
def map_split(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    shape = ctx.shape(proto, proto.input[0])
    a = attrs_of(proto)
    _channel_axis(proto, ctx, a.get("axis", 0), len(shape))
    channels, outputs = shape[1], list(proto.output)
    sizes = ctx.opt_const(proto, 1)
    if sizes is not None:
        sizes = [int(v) for v in sizes.reshape(-1)]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:  # equal parts; opset 18's num_outputs lets the last be smaller
        parts = int(a.get("num_outputs", len(outputs)))
        each = -(-channels // parts)
        sizes = [min(each, channels - i * each) for i in range(parts)]
    if len(sizes) != len(outputs) or sum(sizes) != channels or min(sizes) < 1:
        raise fail(proto, ctx, f"split sizes {sizes} do not divide {channels} channels into {len(outputs)} outputs")
    start = 0
    for i, (out, size) in enumerate(zip(outputs, sizes, strict=True)):
        if out:
            ctx.emit(proto, Op.SLICE, [proto.input[0]], (shape[0], size, *shape[2:]),
                     SliceAttrs(start, start + size), output=out, name=f"{ctx.name_of(proto)}_{i}")
        start += size


@register("Slice")
def map_slice(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    shape = ctx.shape(proto, proto.input[0])
    if ctx.opset < 10:
        a = attrs_of(proto)
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", range(len(starts))), [1] * len(starts)
    else:
        starts, ends = (ctx.const(proto, t, "starts/ends").reshape(-1) for t in proto.input[1:3])
        axes, steps = ctx.opt_const(proto, 3), ctx.opt_const(proto, 4)
        axes = range(len(starts)) if axes is None else axes.reshape(-1)
        steps = [1] * len(starts) if steps is None else steps.reshape(-1)
    begin, stop = [0] * len(shape), list(shape)
    for axis, s0, e0, step in zip(axes, starts, ends, steps, strict=True):
        axis, dim = int(axis) % len(shape), shape[int(axis) % len(shape)]
        if int(step) != 1:
            raise fail(proto, ctx, f"step {int(step)} along axis {axis}: only step 1 is supported")
        begin[axis] = min(max(int(s0) + dim if int(s0) < 0 else int(s0), 0), dim)
        stop[axis] = min(max(int(e0) + dim if int(e0) < 0 else int(e0), 0), dim)
    cut = [i for i in range(len(shape)) if (begin[i], stop[i]) != (0, shape[i])]
    if not cut:
        ctx.alias(proto.output[0], proto.input[0])
        return
    if cut != [1] or len(shape) not in (2, 4) or begin[1] >= stop[1]:
        raise fail(proto, ctx, f"only a non-empty channel range is supported, got [{begin}, {stop}) of {shape}")
    ctx.emit(proto, Op.SLICE, [proto.input[0]], (shape[0], stop[1] - begin[1], *shape[2:]),
             SliceAttrs(begin[1], stop[1]))


# --- products, constants on activations ------------------------------------------------------------

def _per_channel(proto: onnx.NodeProto, ctx: ImportContext, const: np.ndarray, shape: Shape) -> np.ndarray:
    """A constant that broadcasts to `shape` varying at most along the channels, as (C,) floats."""
    aligned = (1,) * (len(shape) - const.ndim) + tuple(const.shape)
    if len(aligned) != len(shape) or any(d != 1 for i, d in enumerate(aligned) if i != 1) or \
            aligned[1] not in (1, shape[1]):
        raise fail(proto, ctx, f"constant of shape {const.shape} is not a scalar or per-channel constant of {shape}")
    values = np.broadcast_to(const.astype(np.float64).reshape(-1), (shape[1],)).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise fail(proto, ctx, "the constant holds NaN or infinity")
    return values


def _channel_affine(proto: onnx.NodeProto, ctx: ImportContext, tensor: str, scale: np.ndarray | None,
                    shift: np.ndarray | None, what: str) -> None:
    """x * scale + shift per channel as a depthwise 1x1 conv (the passes fold it into a conv before)."""
    shape = ctx.shape(proto, tensor)
    if len(shape) != 4:
        raise fail(proto, ctx, f"{what} a constant is supported on NCHW tensors and as a Gemm's bias, got {shape}")
    c = shape[1]
    w = np.ones(c, np.float32) if scale is None else _per_channel(proto, ctx, scale, shape)
    b = np.zeros(c, np.float32) if shift is None else _per_channel(proto, ctx, shift, shape)
    ctx.emit(proto, Op.CONV, [tensor], shape, ConvAttrs(kernel=(1, 1), groups=c), w.reshape(c, 1, 1, 1), b)


def _const_mul(proto: onnx.NodeProto, ctx: ImportContext, tensor: str, const: np.ndarray) -> None:
    """x * constant: folded into the Conv/Gemm producing x when it can be, else a channel affine."""
    tensor = ctx.resolve(tensor)
    index = ctx.producers.get(tensor)
    prev = None if index is None else ctx.nodes[index]
    if prev is not None and prev.op in (Op.CONV, Op.DENSE) and ctx.uses.get(tensor, 0) == 1 and \
            prev.attrs.act is None:
        k = _per_channel(proto, ctx, const, prev.out_shape)
        weight = prev.weight * k.reshape(-1, *[1] * (prev.weight.ndim - 1))
        bias = None if prev.bias is None else prev.bias * k
        _absorb(proto, ctx, tensor, replace(prev, weight=weight.astype(np.float32), bias=bias))
        return
    _channel_affine(proto, ctx, tensor, const, None, "multiplying by")


@register("Mul")
def map_mul(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    x, y = proto.input
    if x in ctx.consts or y in ctx.consts:
        _const_mul(proto, ctx, y if x in ctx.consts else x, ctx.consts[x if x in ctx.consts else y])
        return
    sx, sy = ctx.shape(proto, x), ctx.shape(proto, y)
    if math.prod(sy) > math.prod(sx):
        (x, sx), (y, sy) = (y, sy), (x, sx)
    if len(sy) != len(sx) or (sy != sx and any(d != 1 for i, d in enumerate(sy) if i != 1)) or \
            sy[1] not in (1, sx[1]):
        raise fail(proto, ctx, f"multiplies {sx} by {sy}: supported are equal shapes and per-channel factors")
    ctx.emit(proto, Op.MUL, [x, y], sx)


@register("Div")
def map_div(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    x, y = proto.input
    divisor = ctx.const(proto, y, "divisor").astype(np.float64)
    if np.any(divisor == 0):
        raise fail(proto, ctx, "division by a constant that holds 0")
    _const_mul(proto, ctx, x, (1.0 / divisor).astype(np.float32))


@register("Sub")
def map_sub(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    x, y = proto.input
    if y in ctx.consts:
        _map_bias_add(proto, ctx, x, -ctx.consts[y].astype(np.float32))
    elif x in ctx.consts:  # c - y
        _channel_affine(proto, ctx, y, np.float32(-1.0), ctx.consts[x], "subtracting from")
    else:
        raise fail(proto, ctx, "subtracting two activation tensors is not supported")


# --- more activations ------------------------------------------------------------------------------

@register("HardSigmoid")
def map_hard_sigmoid(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    a = attrs_of(proto)
    _activation(proto, ctx, ActAttrs(ActKind.HARD_SIGMOID, 0.0, 1.0, finite_float(proto, ctx, a, "alpha", 0.2),
                                     finite_float(proto, ctx, a, "beta", 0.5)))


@register("HardSwish")
def map_hard_swish(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    _activation(proto, ctx, ActAttrs(ActKind.HARD_SWISH, -math.inf, math.inf))


@register("LeakyRelu")
def map_leaky_relu(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    alpha = finite_float(proto, ctx, attrs_of(proto), "alpha", 0.01)
    _activation(proto, ctx, ActAttrs(ActKind.LEAKY_RELU, -math.inf, math.inf, alpha))


@register("PRelu")
def map_prelu(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    shape = ctx.shape(proto, proto.input[0])
    slope = _per_channel(proto, ctx, ctx.const(proto, proto.input[1], "slope"), shape)
    slope = slope[:1] if np.all(slope == slope[0]) else slope
    _activation(proto, ctx, ActAttrs(ActKind.PRELU, -math.inf, math.inf, slope=tuple(float(v) for v in slope)))


@register("GlobalMaxPool")
def map_global_maxpool(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    ctx.emit(proto, Op.MAXPOOL, [proto.input[0]], (1, in_shape[1], 1, 1),
             PoolAttrs(kernel=tuple(in_shape[2:]), stride=(1, 1)))


# --- resampling ------------------------------------------------------------------------------------

@register("Resize", "Upsample")
def map_resize(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    """Nearest-neighbour Resize/Upsample of H and W. The index maps come from running the node itself
    (onnx.reference) on an input that holds each element's own index, so every coordinate mode and
    rounding rule is ONNX's."""
    shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, shape)
    a = attrs_of(proto)
    text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    if text(a.get("mode", b"nearest")) != "nearest":
        raise fail(proto, ctx, f"only mode 'nearest' is supported, got {a.get('mode')!r}")
    if text(a.get("coordinate_transformation_mode", b"")) == "tf_crop_and_resize":
        raise fail(proto, ctx, "coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
    legacy = proto.op_type == "Upsample" or ctx.opset < 11  # Upsample, Resize-10: scales only, x_in = floor(x / s)
    scales = a.get("scales") if proto.op_type == "Upsample" and ctx.opset < 9 else \
        ctx.opt_const(proto, 1 if legacy else 2)
    sizes = None if legacy else ctx.opt_const(proto, 3)
    if scales is not None and np.asarray(scales).size:
        scales = np.asarray(scales, dtype=np.float64).reshape(-1)
        if scales.size != 4 or not np.all(np.isfinite(scales)) or np.any(scales != np.round(scales)) or \
                np.any(scales < 1) or scales[0] != 1 or scales[1] != 1:
            raise fail(proto, ctx, f"scales {scales.tolist()}: only integer upsampling of H and W is supported "
                                   "(give sizes for other ratios)")
        out_hw = (shape[2] * int(scales[2]), shape[3] * int(scales[3]))
    elif sizes is not None and sizes.size == 4:
        out_hw = (int(sizes[2]), int(sizes[3]))
    else:
        raise fail(proto, ctx, "needs constant scales or sizes for N, C, H and W")
    if math.prod(shape) >= 1 << 24 or shape[0] * shape[1] * out_hw[0] * out_hw[1] >= 1 << 24:
        raise fail(proto, ctx, f"resizing {shape} to {out_hw} is too large to map")
    if legacy:  # integer scales, floor: each pixel repeated
        rows = np.arange(out_hw[0]) // int(scales[2])
        cols = np.arange(out_hw[1]) // int(scales[3])
        ctx.emit(proto, Op.RESIZE, [proto.input[0]], (*shape[:2], *out_hw),
                 ResizeAttrs(tuple(int(r) for r in rows), tuple(int(c) for c in cols)))
        return
    from onnx.reference import ReferenceEvaluator
    feeds = {t: ctx.consts[t] for t in proto.input[1:] if t}
    missing = [t for t in proto.input[1:] if t and t not in ctx.consts]
    if missing:
        raise fail(proto, ctx, f"inputs {missing} must be constants")
    inputs = [helper.make_tensor_value_info(proto.input[0], onnx.TensorProto.FLOAT, list(shape))]
    inits = [onnx.numpy_helper.from_array(v, t) for t, v in feeds.items()]
    graph = helper.make_graph([proto], "resize", inputs, [helper.make_tensor_value_info(proto.output[0], 0, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.opset)])
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    try:
        out = np.asarray(ReferenceEvaluator(model).run(None, {proto.input[0]: x})[0])
    except Exception as err:  # the reference implementation's own complaint, as one line
        raise fail(proto, ctx, f"cannot evaluate its index maps ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if out.ndim != 4 or out.shape[:2] != shape[:2] or min(out.shape) < 1:
        raise fail(proto, ctx, f"resizes {shape} to {out.shape}: only H and W may change")
    index = out.astype(np.int64)
    hw = shape[2] * shape[3]
    rows, cols = (index[0, 0, :, 0] % hw) // shape[3], index[0, 0, 0, :] % shape[3]
    want = np.arange(shape[1]).reshape(1, -1, 1, 1) * hw + rows.reshape(-1, 1) * shape[3] + cols
    if not np.array_equal(index, want):
        raise fail(proto, ctx, "the resampling does not pick whole rows and columns")
    ctx.emit(proto, Op.RESIZE, [proto.input[0]], out.shape,
             ResizeAttrs(tuple(int(r) for r in rows), tuple(int(c) for c in cols)))


@register("ConvTranspose")
def map_conv_transpose(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    """A transposed conv runs on the array as a conv: zeros inserted between the input pixels
    (ZeroInsert, stride - 1 per gap), then a stride-1 conv with the kernel flipped and its in/out
    channels swapped per group, padded by dilation * (k - 1) - pad (+ output_padding at the end)."""
    in_shape = ctx.shape(proto, proto.input[0])
    _spatial(proto, ctx, in_shape)
    w = ctx.const(proto, proto.input[1], "weight").astype(np.float32)
    a = attrs_of(proto)
    groups = a.get("group", 1)
    if w.ndim != 4 or not isinstance(groups, int) or groups < 1 or w.shape[0] != in_shape[1] or in_shape[1] % groups:
        raise fail(proto, ctx, f"weight {w.shape} with group={groups!r} does not fit {in_shape[1]} input channels")
    kernel = ints_attr(proto, ctx, a, "kernel_shape", w.shape[2:])
    stride = ints_attr(proto, ctx, a, "strides", (1, 1))
    dilation = ints_attr(proto, ctx, a, "dilations", (1, 1))
    out_pad = ints_attr(proto, ctx, a, "output_padding", (0, 0), minimum=0)
    auto_pad = a.get("auto_pad", b"NOTSET")
    if "output_shape" in a or (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) != "NOTSET":
        raise fail(proto, ctx, "output_shape and auto_pad are not supported; give explicit pads")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if kernel != w.shape[2:] or len(pads) != 4 or min(pads) < 0 or any(o >= s for o, s in
                                                                      zip(out_pad, stride, strict=True)):
        raise fail(proto, ctx, f"kernel {list(kernel)}, pads {pads} or output_padding {list(out_pad)} is invalid")
    conv_pads = [dilation[i] * (kernel[i] - 1) - pads[i] for i in range(2)] + \
                [dilation[i] * (kernel[i] - 1) - pads[i + 2] + out_pad[i] for i in range(2)]
    if min(conv_pads) < 0:
        raise fail(proto, ctx, f"pads {pads} exceed dilation * (kernel - 1): cropping is not supported")
    cg, mg = in_shape[1] // groups, w.shape[1]
    flipped = w[:, :, ::-1, ::-1].reshape(groups, cg, mg, *kernel).transpose(0, 2, 1, 3, 4)
    weight = np.ascontiguousarray(flipped.reshape(groups * mg, cg, *kernel), dtype=np.float32)
    bias = ctx.opt_const(proto, 2)
    if bias is not None and bias.shape != (weight.shape[0],):
        raise fail(proto, ctx, f"bias of shape {bias.shape} does not match {weight.shape[0]} filters")
    x = proto.input[0]
    inserted = (1, in_shape[1], (in_shape[2] - 1) * stride[0] + 1, (in_shape[3] - 1) * stride[1] + 1)
    if math.prod(inserted) > MAX_ZERO_INSERTED:
        raise fail(proto, ctx, f"stride {list(stride)} spreads its input to {inserted}: more than "
                               f"{MAX_ZERO_INSERTED:,} values per image")
    if stride != (1, 1):
        x = proto.output[0] + "__zero_inserted"
        ctx.emit(proto, Op.ZERO_INSERT, [proto.input[0]],
                 (1, in_shape[1], (in_shape[2] - 1) * stride[0] + 1, (in_shape[3] - 1) * stride[1] + 1),
                 ZeroInsertAttrs(stride), output=x, name=ctx.name_of(proto) + "_zeros")
    attrs = ConvAttrs(kernel=kernel, pads=(conv_pads[0], conv_pads[1], conv_pads[2], conv_pads[3]),
                      dilation=dilation, groups=groups)
    xh, xw = ctx.shapes[ctx.resolve(x)][2:]
    oh, ow = (window_output_size(n, k, 1, pb, pe, d)[0] for n, k, pb, pe, d in
              zip((xh, xw), kernel, conv_pads[:2], conv_pads[2:], dilation, strict=True))
    ctx.emit(proto, Op.CONV, [x], (1, weight.shape[0], oh, ow), attrs, weight,
             None if bias is None else bias.astype(np.float32))


SUPPORTED_OPS = tuple(sorted(MAPPERS))
