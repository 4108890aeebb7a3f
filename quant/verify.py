"""IR verifier, run after import, after every pass and on every loaded graph.
Raises IRError naming the node (and, for quantized graphs, the field).

Float rules: unique names, typed attributes, arity, inputs defined before use
with the shapes the node expects, output shapes that follow from the op, and
finite weights that fit the input. Quantized rules (a graph with `input_quant`):
the integer parameters are those `quant.quantize` produces and `quant.int_exec`
can run exactly — multipliers and shifts inside what `quant.fixedpoint`
supports, zero points and clamps inside the integer range, int8 weights shaped
like the float ones, int32 biases, 256-entry tables, finite positive scales,
and zero points that match the tensors they describe."""
from __future__ import annotations

import math

import numpy as np

from quant.errors import IRError
from quant.fixedpoint import INT32_MAX, INT32_MIN, POW2_M0, int_range
from quant.ir import (
    ARITY_OF_OP,
    ATTRS_OF_OP,
    LUT_KINDS,
    ActAttrs,
    ActKind,
    ConvAttrs,
    Graph,
    Node,
    NodeQuant,
    Op,
    PadAttrs,
    PoolAttrs,
    QParams,
    Requant,
    Shape,
    window_output_size,
)

# What quant.fixedpoint.multiply_by_quantized_multiplier computes exactly in int64: an int32
# accumulator shifted left by at most 31 (< 2^62), a rounding right shift of at most 62 (its
# mask 2^62 - 1). quantize_multiplier returns right shifts <= 62 (smaller multipliers become 0).
MIN_SHIFT, MAX_SHIFT = -31, 62
ACT_BITS = (2, 8)  # activations are stored in int8: 2..8 bits
SOFTMAX_ONE = 1 << 15  # the softmax table is exp(-s*d) in Q15: entries in 0..2^15
# copy values: same scale and zero point out as in
_PASS_THROUGH = (Op.MAXPOOL, Op.FLATTEN, Op.PAD, Op.SLICE, Op.SHUFFLE, Op.RESIZE, Op.ZERO_INSERT)
_SPATIAL = (Op.CONV, Op.MAXPOOL, Op.AVGPOOL, Op.GLOBAL_AVGPOOL, Op.PAD, Op.RESIZE, Op.ZERO_INSERT)  # NCHW inputs
_WITH_INPUT_REQUANTS = (Op.ADD, Op.CONCAT)


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
    if graph.is_quantized:
        _check_quantized(graph)
    return graph


def _fail(node: Node, why: str) -> None:
    raise IRError(f"node {node.name!r} ({node.op.value}): {why}")


def _check_node(node: Node, defined: dict, names: set[str], quantized: bool) -> None:
    if node.name in names:
        _fail(node, "duplicate node name")
    if not isinstance(node.attrs, ATTRS_OF_OP[node.op]):
        _fail(node, f"attributes are {type(node.attrs).__name__}, expected {ATTRS_OF_OP[node.op].__name__}")
    arity = ARITY_OF_OP[node.op]
    if len(node.inputs) != arity if arity is not None else len(node.inputs) < 2:
        _fail(node, f"takes {arity or 'two or more'} input(s), has {len(node.inputs)}")
    _check_attrs(node)
    if len(node.in_shapes) != len(node.inputs):
        _fail(node, f"has {len(node.inputs)} input(s) but {len(node.in_shapes)} input shape(s)")
    for tensor, shape in zip(node.inputs, node.in_shapes, strict=True):
        if tensor not in defined:
            _fail(node, f"input {tensor!r} is used before it is produced")
        if defined[tensor] != shape:
            _fail(node, f"input {tensor!r} has shape {defined[tensor]}, node expects {shape}")
    if any(d < 1 for d in node.out_shape):
        _fail(node, f"output shape {node.out_shape} has an empty dimension")
    if node.op in (Op.CONV, Op.DENSE, Op.AFFINE):
        _check_weights(node)
    expected = _expected_out_shape(node)
    if expected is not None and tuple(node.out_shape) != expected:
        _fail(node, f"output shape {node.out_shape} does not follow from its input and attributes: expected {expected}")
    if quantized and node.quant is None:
        _fail(node, "graph is quantized but this node has no quantization parameters")


def _check_attrs(node: Node) -> None:
    a = node.attrs
    if isinstance(a, ConvAttrs | PoolAttrs):
        positive = {"kernel": a.kernel, "stride": a.stride, **({"dilation": a.dilation} if isinstance(a, ConvAttrs)
                                                                else {})}
        for name, pair in positive.items():
            if len(pair) != 2 or min(pair) < 1:
                _fail(node, f"{name} {pair} must be two integers >= 1")
    if isinstance(a, ConvAttrs) and a.groups < 1:
        _fail(node, f"groups {a.groups} must be >= 1")
    if isinstance(a, ConvAttrs | PoolAttrs | PadAttrs) and (len(a.pads) != 4 or min(a.pads) < 0):
        _fail(node, f"pads {a.pads} must be four integers >= 0")
    if isinstance(a, PoolAttrs) and len(node.in_shapes) == 1 and len(node.in_shape) == 4:
        for n, f, pb, pe in zip(node.in_shape[2:], a.kernel, a.pads[:2], a.pads[2:], strict=True):
            if n + pb + pe < f:
                _fail(node, f"window {a.kernel} is larger than the padded input {node.in_shape[2:]} + pads {a.pads}")
    if isinstance(a, PadAttrs) and not math.isfinite(a.value):
        _fail(node, f"pad value {a.value} is not finite")
    if isinstance(a, ActAttrs):
        numbers = (a.alpha, a.beta, *a.slope)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
            _fail(node, f"activation parameters {numbers} must be finite numbers")
        channels = node.in_shape[1] if len(node.in_shape) > 1 else 1
        if (a.kind is ActKind.PRELU) != bool(a.slope) or len(a.slope) not in (0, 1, channels):
            _fail(node, f"slope holds {len(a.slope)} values: PRelu takes one or one per channel ({channels}), "
                        "other activations none")
    clamp = (a.lo, a.hi) if isinstance(a, ActAttrs) else (a.act.lo, a.act.hi) if getattr(a, "act", None) else None
    if clamp is not None and not clamp[0] <= clamp[1]:  # also refuses NaN
        _fail(node, f"clamp [{clamp[0]}, {clamp[1]}] is empty")


def _check_weights(node: Node) -> None:
    w = node.weight
    if w is None:
        _fail(node, "has no weight")
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        _fail(node, f"weight must be a float array, not {getattr(w, 'dtype', type(w).__name__)}")
    if node.op is Op.CONV:
        c_in, groups = node.in_shape[1], node.attrs.groups
        if w.ndim != 4 or c_in % groups or w.shape[1] != c_in // groups or w.shape[0] % groups:
            _fail(node, f"weight {w.shape} does not fit input {node.in_shape} with groups={groups}")
        if w.shape[2:] != node.attrs.kernel:
            _fail(node, f"weight {w.shape} does not match kernel {node.attrs.kernel}")
    elif node.op is Op.AFFINE:
        if w.shape != (node.in_shape[1],):
            _fail(node, f"weight {w.shape} must hold one factor per channel of {node.in_shape}")
    elif w.ndim != 2 or w.shape[1] != node.in_shape[-1]:
        _fail(node, f"weight {w.shape} does not fit input {node.in_shape}")
    if node.bias is not None and (not isinstance(node.bias, np.ndarray) or node.bias.dtype.kind != "f"
                                  or node.bias.shape != (w.shape[0],) or not np.all(np.isfinite(node.bias))):
        _fail(node, f"bias {getattr(node.bias, 'shape', node.bias)} must be {w.shape[0]} finite floats")
    if not np.all(np.isfinite(w)):
        _fail(node, "weight holds NaN or infinity")


def _expected_out_shape(node: Node) -> Shape | None:
    """The output shape each op implies (pools with their rounding mode: PoolAttrs.out_hw)."""
    x = tuple(node.in_shape)
    if node.op in _SPATIAL and len(x) != 4:
        _fail(node, f"input shape {x} is not NCHW")
    if node.op is Op.CONV:
        a = node.attrs
        try:
            hw = [window_output_size(n, f, s, pb, pe, d)[0] for n, f, s, pb, pe, d in
                  zip(x[2:], a.kernel, a.stride, a.pads[:2], a.pads[2:], a.dilation, strict=True)]
        except ValueError as err:
            _fail(node, str(err))
        return (x[0], node.weight.shape[0], *hw)
    if node.op is Op.DENSE:
        return (x[0], node.weight.shape[0])
    if node.op in (Op.MAXPOOL, Op.AVGPOOL):
        try:
            return (*x[:2], *node.attrs.out_hw(x[2:]))
        except ValueError as err:
            _fail(node, str(err))
    if node.op is Op.GLOBAL_AVGPOOL:
        return (*x[:2], 1, 1)
    if node.op is Op.FLATTEN:  # any reshape that keeps the values' order
        if math.prod(node.out_shape) != math.prod(x) or len(node.out_shape) not in (2, 4):
            _fail(node, f"output shape {node.out_shape} does not follow from its input {x}: a reshape keeps the "
                        "number of values (2-D or 4-D)")
        return tuple(node.out_shape)
    if node.op in (Op.CONCAT, Op.SLICE, Op.SHUFFLE, Op.MUL) and len(x) not in (2, 4):
        _fail(node, f"input shape {x} is neither (N, C) nor NCHW")
    if node.op is Op.CONCAT:
        shapes = [tuple(s) for s in node.in_shapes]
        if any(len(s) != len(x) or s[:1] + s[2:] != x[:1] + x[2:] for s in shapes):
            _fail(node, f"concatenates shapes {shapes}: all but the channels must agree")
        return (x[0], sum(s[1] for s in shapes), *x[2:])
    if node.op is Op.MUL:
        y = tuple(node.in_shapes[1])
        if not _broadcasts_to(y, x) or (y != x and any(d != 1 for i, d in enumerate(y) if i != 1)):
            _fail(node, f"multiplies {x} by {y}: the second must be equal or per channel")
        return x
    if node.op is Op.SLICE:
        a = node.attrs
        if not (_is_int(a.start) and _is_int(a.stop) and 0 <= a.start < a.stop <= x[1]):
            _fail(node, f"channels {a.start}..{a.stop} are not a range inside the input's {x[1]}")
        return (x[0], a.stop - a.start, *x[2:])
    if node.op is Op.SHUFFLE and sorted(node.attrs.perm) != list(range(x[1])):
        _fail(node, f"perm is not a permutation of the input's {x[1]} channels")
    if node.op is Op.RESIZE:
        a = node.attrs
        for name, idx, n in (("rows", a.rows, x[2]), ("cols", a.cols, x[3])):
            if not idx or not all(_is_int(i) and 0 <= i < n for i in idx):
                _fail(node, f"{name} must index the input's {n} positions")
        return (*x[:2], len(a.rows), len(a.cols))
    if node.op is Op.ZERO_INSERT:
        sh, sw = node.attrs.stride
        if min(sh, sw) < 1:
            _fail(node, f"stride {node.attrs.stride} must be two integers >= 1")
        return (*x[:2], (x[2] - 1) * sh + 1, (x[3] - 1) * sw + 1)
    if node.op is Op.PAD:
        top, left, bottom, right = node.attrs.pads
        return (*x[:2], x[2] + top + bottom, x[3] + left + right)
    if node.op is Op.ADD and tuple(node.in_shapes[1]) != x:
        _fail(node, f"adds shapes {x} and {tuple(node.in_shapes[1])}: they must be equal")
    return x  # Add, Activation, Softmax: elementwise


# --- quantized graphs ------------------------------------------------------------------------------

def _check_quantized(graph: Graph) -> None:
    if not isinstance(graph.input_quant, QParams):
        raise IRError(f"graph {graph.name!r}: input_quant is {type(graph.input_quant).__name__}, not QParams")
    why = _qparams_problem(graph.input_quant)
    if why:
        raise IRError(f"graph {graph.name!r}: input_quant {why}")
    out_qp = {graph.input_name: graph.input_quant}
    for node in graph.nodes:
        _check_node_quant(node, [out_qp[t] for t in node.inputs])
        out_qp[node.output] = node.quant.out


def _qparams_problem(qp: QParams) -> str | None:
    if not _is_int(qp.bits) or not ACT_BITS[0] <= qp.bits <= ACT_BITS[1]:
        return f"bits = {qp.bits!r}: must be an integer in {ACT_BITS[0]}..{ACT_BITS[1]}"
    real = isinstance(qp.scale, int | float | np.integer | np.floating) and not isinstance(qp.scale, bool)
    if not real or not math.isfinite(qp.scale) or qp.scale <= 0:
        return f"scale = {qp.scale!r}: must be a finite float > 0"
    lo, hi = int_range(qp.bits)
    if not _is_int(qp.zero_point) or not lo <= qp.zero_point <= hi:
        return f"zero_point = {qp.zero_point!r}: must be an integer in [{lo}, {hi}]"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_node_quant(node: Node, ins: list[QParams]) -> None:
    q = node.quant
    if not isinstance(q, NodeQuant):
        _fail(node, f"quant is {type(q).__name__}, not NodeQuant")
    if not isinstance(q.out, QParams):
        _fail(node, f"quant.out is {type(q.out).__name__}, not QParams")
    why = _qparams_problem(q.out)
    if why:
        _fail(node, f"quant.out {why}")
    zps = tuple(q.in_zero_points)
    if len(zps) != len(node.inputs):
        _fail(node, f"quant.in_zero_points has {len(zps)} entries for {len(node.inputs)} input(s)")
    for tensor, zp, qp in zip(node.inputs, zps, ins, strict=True):
        if zp != qp.zero_point:
            _fail(node, f"quant.in_zero_points gives {zp!r} for input {tensor!r}, whose zero point is {qp.zero_point}")
    if node.op in _PASS_THROUGH and (q.out.scale, q.out.zero_point) != (ins[0].scale, ins[0].zero_point):
        _fail(node, "quant.out must keep the input's scale and zero point (the op copies values)")
    n_in_rq = len(node.inputs) if node.op in _WITH_INPUT_REQUANTS else 0
    if len(q.input_requants) != n_in_rq:
        _fail(node, f"quant.input_requants has {len(q.input_requants)} entries, expected {n_in_rq}")
    for i, rq in enumerate(q.input_requants):
        bounds = (INT32_MIN, INT32_MAX) if node.op is Op.ADD else int_range(q.out.bits)
        _check_requant(node, rq, f"quant.input_requants[{i}]", bounds, node.in_shapes[i])
    if _needs_requant(node) or q.requant is not None:
        if q.requant is None:
            _fail(node, "quant.requant is missing")
        _check_requant(node, q.requant, "quant.requant", int_range(q.out.bits), node.out_shape)
        if q.requant.zero_point != q.out.zero_point:
            _fail(node, f"quant.requant.zero_point = {q.requant.zero_point} differs from quant.out.zero_point "
                        f"= {q.out.zero_point}")
    if node.op in (Op.CONV, Op.DENSE, Op.AFFINE):
        _check_gemm_quant(node)
    _check_lut(node)
    if node.op in (Op.PAD, Op.ZERO_INSERT):
        lo, hi = int_range(q.out.bits)
        if not _is_int(q.fill) or not lo <= q.fill <= hi:
            _fail(node, f"quant.fill = {q.fill!r}: must be an integer in [{lo}, {hi}]")


def _needs_requant(node: Node) -> bool:
    if node.op is Op.ACTIVATION:
        return node.attrs.kind not in LUT_KINDS
    return node.op in (Op.CONV, Op.DENSE, Op.ADD, Op.AVGPOOL, Op.GLOBAL_AVGPOOL, Op.MUL, Op.AFFINE)


def _int_array(node: Node, value: object, field: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        _fail(node, f"{field} must be an integer array, not {getattr(value, 'dtype', type(value).__name__)}")
    return value


def _check_requant(node: Node, rq: Requant, field: str, bounds: tuple[int, int], shape: Shape) -> None:
    if not isinstance(rq, Requant):
        _fail(node, f"{field} is {type(rq).__name__}, not Requant")
    m0 = _int_array(node, rq.m0, f"{field}.m0")
    shift = _int_array(node, rq.shift, f"{field}.shift")
    for name, arr in (("m0", m0), ("shift", shift)):
        if arr.size == 0 or not _broadcasts_to(arr.shape, tuple(shape)):
            _fail(node, f"{field}.{name} has shape {arr.shape}: must broadcast to the tensor shape {tuple(shape)} "
                        "(one entry, or one per output channel)")
    bad = (m0 != 0) & ((m0 < POW2_M0) | (m0 > INT32_MAX))
    if np.any(bad):
        _fail(node, f"{field}.m0 holds {int(m0[bad].flat[0])}: must be 0 or in [2^30, 2^31 - 1]")
    if shift.min() < MIN_SHIFT or shift.max() > MAX_SHIFT:
        _fail(node, f"{field}.shift holds {int(shift.min())}..{int(shift.max())}: must be in {MIN_SHIFT}..{MAX_SHIFT}")
    lo, hi = bounds
    for name in ("qmin", "qmax", "zero_point"):
        value = getattr(rq, name)
        if not _is_int(value) or not lo <= value <= hi:
            _fail(node, f"{field}.{name} = {value!r}: must be an integer in [{lo}, {hi}]")
    if not rq.qmin <= rq.zero_point <= rq.qmax:
        _fail(node, f"{field}: zero_point {rq.zero_point} is outside [qmin, qmax] = [{rq.qmin}, {rq.qmax}]")


def _broadcasts_to(shape: Shape, target: Shape) -> bool:
    try:
        return len(shape) <= len(target) and np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _check_gemm_quant(node: Node) -> None:
    q, channels = node.quant, node.weight.shape[0]
    w = _int_array(node, q.weight, "quant.weight")
    if w.dtype != np.int8 or w.shape != node.weight.shape:
        _fail(node, f"quant.weight is {w.dtype} {w.shape}: must be int8 shaped like weight {node.weight.shape}")
    if q.acc_bias is None:
        _fail(node, "quant.acc_bias is missing")
    for name in ("bias", "acc_bias"):
        value = getattr(q, name)
        if value is not None:
            arr = _int_array(node, value, f"quant.{name}")
            if arr.dtype != np.int32 or arr.shape != (channels,):
                _fail(node, f"quant.{name} is {arr.dtype} {arr.shape}: must be int32 of shape ({channels},)")
    s = q.weight_scale
    if s is not None:
        if not isinstance(s, np.ndarray) or s.dtype.kind != "f" or s.shape != (channels,):
            _fail(node, f"quant.weight_scale must be a float array of shape ({channels},)")
        if not np.all(np.isfinite(s) & (s > 0)):
            _fail(node, "quant.weight_scale must be finite and > 0")


def _check_lut(node: Node) -> None:
    q = node.quant
    is_table_act = node.op is Op.ACTIVATION and node.attrs.kind in LUT_KINDS
    if not is_table_act and node.op is not Op.SOFTMAX:
        return
    lut = _int_array(node, q.lut, "quant.lut")
    channels = len(node.attrs.slope) if is_table_act and len(node.attrs.slope) > 1 else None
    if lut.shape != ((256,) if channels is None else (channels, 256)):
        _fail(node, f"quant.lut has shape {lut.shape}: must be (256,)" + (f" or ({channels}, 256)" if channels else ""))
    if is_table_act and lut.dtype != np.int8:
        _fail(node, f"quant.lut is {lut.dtype}: must be int8")
    if node.op is Op.SOFTMAX and (lut.min() < 0 or lut.max() > SOFTMAX_ONE or lut[0] < 1):
        _fail(node, f"quant.lut (softmax, Q15) must hold 0..{SOFTMAX_ONE} with entry 0 > 0")
