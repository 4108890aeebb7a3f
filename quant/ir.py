"""The one IR shared by quant, hwsim and rtl.

A `Graph` is a topologically ordered tuple of `Node`s. Each node has one output
tensor, typed attributes (one frozen dataclass per op, never a dict), its input
and output shapes (NCHW or NK, batch 1) and, for Conv/Dense, float parameters.
A quantized graph is the same IR with a `NodeQuant` attached to every node and a
`QParams` for the graph input (see quant.quantize). Nobody but quant.onnx_import
parses ONNX.
"""
from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, field

import numpy as np

Shape = tuple[int, ...]


class Op(enum.Enum):
    CONV = "Conv"
    DENSE = "Dense"
    MAXPOOL = "MaxPool"
    AVGPOOL = "AvgPool"
    GLOBAL_AVGPOOL = "GlobalAvgPool"
    ADD = "Add"
    ACTIVATION = "Activation"
    FLATTEN = "Flatten"
    SOFTMAX = "Softmax"
    PAD = "Pad"
    CONCAT = "Concat"          # channel concatenation of 2+ tensors
    MUL = "Mul"                # elementwise product; the second input may be per channel (N, C, 1, 1)
    SLICE = "Slice"            # a contiguous channel range (Split becomes one Slice per output)
    SHUFFLE = "ChannelShuffle"  # a channel permutation (a Reshape/Transpose/Reshape channel shuffle)
    RESIZE = "Resize"          # nearest-neighbour resampling of H, W by index maps
    ZERO_INSERT = "ZeroInsert"  # zeros between pixels (ConvTranspose = ZeroInsert + Conv)
    AFFINE = "ChannelAffine"   # x * w[c] + b[c] (a BatchNorm no conv absorbs), on the vector unit


class ActKind(enum.Enum):
    RELU = "relu"
    CLIP = "clip"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    HARD_SIGMOID = "hardsigmoid"  # clip(alpha * x + beta, 0, 1)
    HARD_SWISH = "hardswish"      # x * clip(x / 6 + 1/2, 0, 1)
    SILU = "silu"                 # x * sigmoid(x) (fused from Sigmoid + Mul)
    LEAKY_RELU = "leakyrelu"      # x if x >= 0 else alpha * x
    PRELU = "prelu"               # x if x >= 0 else slope[c] * x


# Activations quantized as an int8 table lookup (the rest, ReLU and Clip, as a clamp)
LUT_KINDS = frozenset({ActKind.TANH, ActKind.SIGMOID, ActKind.HARD_SIGMOID, ActKind.HARD_SWISH, ActKind.SILU,
                       ActKind.LEAKY_RELU, ActKind.PRELU})
# ... whose output range is fixed by the function (the rest take a calibrated output range)
BOUNDED_KINDS = {ActKind.TANH: (-1.0, 1.0), ActKind.SIGMOID: (0.0, 1.0), ActKind.HARD_SIGMOID: (0.0, 1.0)}


@dataclass(frozen=True)
class Clamp:
    """A fused piecewise-linear activation: ReLU is Clamp(0, inf), ReLU6 Clamp(0, 6)."""
    lo: float = 0.0
    hi: float = math.inf

    @property
    def label(self) -> str:
        return "relu" if self.lo == 0.0 and self.hi == math.inf else f"clip[{self.lo:g},{self.hi:g}]"


@dataclass(frozen=True)
class ConvAttrs:
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    act: Clamp | None = None


@dataclass(frozen=True)
class DenseAttrs:
    act: Clamp | None = None


@dataclass(frozen=True)
class PoolAttrs:
    """MaxPool/AvgPool. `pads` are the model's own; with `ceil_mode` (ONNX, PyTorch) a
    last window may also run past the end pad, over positions that are never counted.
    `count_include_pad`: the AvgPool divisor counts the explicit pads."""
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False
    ceil_mode: bool = False

    def out_hw(self, in_hw: tuple[int, ...]) -> tuple[int, int]:
        """Output (OH, OW) on an (H, W) input."""
        axes = zip(in_hw, self.kernel, self.stride, self.pads[:2], self.pads[2:], strict=True)
        oh, ow = (window_output_size(n, f, s, pb, pe, ceil_mode=self.ceil_mode)[0] for n, f, s, pb, pe in axes)
        return oh, ow

    def extra_end(self, in_hw: tuple[int, ...]) -> tuple[int, int]:
        """Positions past the bottom/right pad that ceil_mode's last window covers (0 without ceil_mode)."""
        eh, ew = (max(0, (o - 1) * s + f - (n + pb + pe)) for o, n, f, s, pb, pe in
                  zip(self.out_hw(in_hw), in_hw, self.kernel, self.stride, self.pads[:2], self.pads[2:], strict=True))
        return eh, ew


@dataclass(frozen=True)
class ActAttrs:
    kind: ActKind
    lo: float = 0.0
    hi: float = math.inf
    alpha: float = 0.0                # HardSigmoid's slope, LeakyRelu's negative slope
    beta: float = 0.0                 # HardSigmoid's offset
    slope: tuple[float, ...] = ()     # PRelu: one negative slope per channel (or one for all)

    def fn(self, x: np.ndarray, channel_axis: int = 1) -> np.ndarray:
        """The activation in float64 (the float executor's and the lookup tables' definition)."""
        x = np.asarray(x, dtype=np.float64)
        k = self.kind
        if k is ActKind.TANH:
            return np.tanh(x)
        if k in (ActKind.SIGMOID, ActKind.SILU):
            with np.errstate(over="ignore"):  # exp(-x) = inf gives sigmoid 0, as it should
                sig = 1.0 / (1.0 + np.exp(-x))
            return sig if k is ActKind.SIGMOID else x * sig
        if k is ActKind.HARD_SIGMOID:
            return np.clip(self.alpha * x + self.beta, 0.0, 1.0)
        if k is ActKind.HARD_SWISH:
            return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)
        if k is ActKind.LEAKY_RELU:
            return np.where(x >= 0, x, self.alpha * x)
        if k is ActKind.PRELU:
            slope = np.asarray(self.slope, dtype=np.float64)
            if slope.size > 1 and x.ndim > channel_axis:
                slope = slope.reshape(-1, *[1] * (x.ndim - channel_axis - 1))
            return np.where(x >= 0, x, slope * x)
        return np.clip(x, max(self.lo, 0.0) if k is ActKind.RELU else self.lo, self.hi)


@dataclass(frozen=True)
class AddAttrs:
    act: Clamp | None = None


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    value: float = 0.0


@dataclass(frozen=True)
class NoAttrs:
    pass


@dataclass(frozen=True)
class AffineAttrs:
    act: Clamp | None = None


@dataclass(frozen=True)
class SliceAttrs:
    """Channels start..stop - 1 of the input (axis 1)."""
    start: int
    stop: int


@dataclass(frozen=True)
class ShuffleAttrs:
    """out[:, i] = in[:, perm[i]]."""
    perm: tuple[int, ...]


@dataclass(frozen=True)
class ResizeAttrs:
    """Nearest neighbour: out[:, :, i, j] = in[:, :, rows[i], cols[j]]."""
    rows: tuple[int, ...]
    cols: tuple[int, ...]


@dataclass(frozen=True)
class ZeroInsertAttrs:
    """stride - 1 zeros (real 0: the zero point) between neighbouring pixels along H and W."""
    stride: tuple[int, int]


Attrs = (ConvAttrs | DenseAttrs | PoolAttrs | ActAttrs | AddAttrs | PadAttrs | NoAttrs | SliceAttrs | ShuffleAttrs
         | ResizeAttrs | ZeroInsertAttrs | AffineAttrs)

ATTRS_OF_OP: dict[Op, type] = {
    Op.CONV: ConvAttrs, Op.DENSE: DenseAttrs, Op.MAXPOOL: PoolAttrs, Op.AVGPOOL: PoolAttrs,
    Op.GLOBAL_AVGPOOL: NoAttrs, Op.ADD: AddAttrs, Op.ACTIVATION: ActAttrs, Op.FLATTEN: NoAttrs,
    Op.SOFTMAX: NoAttrs, Op.PAD: PadAttrs, Op.CONCAT: NoAttrs, Op.MUL: NoAttrs, Op.SLICE: SliceAttrs,
    Op.SHUFFLE: ShuffleAttrs, Op.RESIZE: ResizeAttrs, Op.ZERO_INSERT: ZeroInsertAttrs, Op.AFFINE: AffineAttrs,
}

# inputs per op; None: two or more (Concat)
ARITY_OF_OP: dict[Op, int | None] = {op: (2 if op in (Op.ADD, Op.MUL) else None if op is Op.CONCAT else 1)
                                     for op in Op}


@dataclass(frozen=True)
class QParams:
    """Affine quantization of one tensor: real = scale * (q - zero_point)."""
    scale: float
    zero_point: int
    bits: int = 8


@dataclass(frozen=True, eq=False)
class Requant:
    """int32 accumulator -> intN: requantize(acc, m0, shift) + zero_point, clamped.

    m0/shift hold one entry per output channel (or a single entry)."""
    m0: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int


@dataclass(frozen=True, eq=False)
class NodeQuant:
    """Integer parameters attached to a node by quant.quantize."""
    out: QParams
    requant: Requant | None = None
    weight: np.ndarray | None = None        # int8, same layout as Node.weight
    weight_scale: np.ndarray | None = None  # float, one per output channel
    bias: np.ndarray | None = None          # int32, scale s_in * s_w (as in QDQ)
    acc_bias: np.ndarray | None = None      # int32, bias - zp_in * sum(w): what the array adds
    in_zero_points: tuple[int, ...] = ()    # zero point of each input tensor
    input_requants: tuple[Requant, ...] = ()  # Add, Concat: rescale of each input (TFLite scheme)
    fill: int = 0                           # Pad: the quantized pad value
    lut: np.ndarray | None = None           # table activations (256,) or (C, 256) per channel; softmax


@dataclass(frozen=True, eq=False)
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...]
    output: str
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    attrs: Attrs = field(default_factory=NoAttrs)
    weight: np.ndarray | None = None  # Conv (N, C/groups, kh, kw); Dense (N, K); ChannelAffine (C,)
    bias: np.ndarray | None = None    # (N,)
    quant: NodeQuant | None = None

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]

    @property
    def params(self) -> int:
        """Trainable parameters: weights plus biases."""
        return self.weights_count + (0 if self.bias is None else int(self.bias.size))

    @property
    def weights_count(self) -> int:
        return 0 if self.weight is None else int(self.weight.size)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image on the array (a ChannelAffine's products run on the vector unit)."""
        if self.op is Op.CONV:
            return int(np.prod(self.out_shape)) * int(np.prod(self.weight.shape[1:]))
        if self.op is Op.DENSE:
            return int(self.weight.size)
        return 0

    @property
    def activations(self) -> int:
        """Values this node produces per image; 0 for views (Flatten/Reshape) that only re-label."""
        return 0 if self.op is Op.FLATTEN else int(np.prod(self.out_shape))


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    input_name: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    output: str
    input_quant: QParams | None = None

    @property
    def is_quantized(self) -> bool:
        return self.input_quant is not None

    @property
    def output_shape(self) -> Shape:
        return self.producer(self.output).out_shape

    @functools.cached_property
    def _producers(self) -> dict[str, Node]:
        return {node.output: node for node in self.nodes}

    @functools.cached_property
    def _consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for tensor in dict.fromkeys(node.inputs):
                users.setdefault(tensor, []).append(node)
        return users

    def producer(self, tensor: str) -> Node:
        return self._producers[tensor]

    def consumers(self, tensor: str) -> list[Node]:
        return list(self._consumers.get(tensor, ()))

    def shape_of(self, tensor: str) -> Shape:
        return self.input_shape if tensor == self.input_name else self.producer(tensor).out_shape

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def total_macs(self) -> int:
        return sum(n.macs for n in self.nodes)


def window_output_size(n: int, f: int, s: int, pad_begin: int, pad_end: int,
                       dilation: int = 1, ceil_mode: bool = False) -> tuple[int, int]:
    """Output length of a conv/pool window along one axis, ONNX floor semantics
    (ceil_mode: rounded up, less one when that last window would start past the
    input and its begin pad, as ONNX and PyTorch pools).

    Returns (out, dropped): `dropped` is how many input rows/cols at the end no
    window reaches ((N + 2P - F) not divisible by S). out < 1 raises ValueError.
    """
    span = n + pad_begin + pad_end - (dilation * (f - 1) + 1)
    if span < 0:
        raise ValueError(f"window {f} (dilation {dilation}) is larger than the padded input {n + pad_begin + pad_end}")
    if not ceil_mode:
        return span // s + 1, span % s
    out = -(-span // s) + 1
    if (out - 1) * s >= n + pad_begin:
        out -= 1
    return out, max(0, span - (out - 1) * s)
