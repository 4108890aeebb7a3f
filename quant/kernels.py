"""Array primitives shared by the float and integer executors (and hwsim's
mapping): padding, im2col lowering and pooling windows. dtype-agnostic."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quant.ir import ConvAttrs, PoolAttrs


def pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """(N, C, H, W) already padded -> view (N, C, OH, OW, kh, kw)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    view = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def im2col(x: np.ndarray, attrs: ConvAttrs, pad_value: float) -> np.ndarray:
    """(N, C, H, W) -> (N, G, OH*OW, C/G * kh * kw), the GEMM operand of each group.

    Column order (c, kh, kw) matches the flattened weight (N_out, C/G, kh, kw).
    Built with one strided copy per kernel tap (faster than copying a 6-D view)."""
    xp = pad_hw(x, attrs.pads, pad_value)
    (kh, kw), (sh, sw), (dh, dw) = attrs.kernel, attrs.stride, attrs.dilation
    n, c = x.shape[:2]
    oh = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            cols[..., i, j] = tap.transpose(0, 2, 3, 1)
    g = attrs.groups
    return cols.reshape(n, oh * ow, g, (c // g) * kh * kw).transpose(0, 2, 1, 3)


def conv_gemm(cols: np.ndarray, weight: np.ndarray, groups: int, out_hw: tuple[int, int]) -> np.ndarray:
    """cols (N, G, P, Kg) x weight (N_out, C/G, kh, kw) -> (N, N_out, OH, OW), in cols' dtype."""
    n, g, p, k = cols.shape
    w = weight.reshape(groups, weight.shape[0] // groups, k).astype(cols.dtype)
    if g == 1:
        out = cols[:, 0] @ w[0].T  # (N, P, N_out)
    else:
        out = np.einsum("ngpk,gok->npgo", cols, w).reshape(n, p, -1)
    return out.transpose(0, 2, 1).reshape(n, weight.shape[0], *out_hw)


def pool_windows(x: np.ndarray, attrs: PoolAttrs, pad_value: float) -> np.ndarray:
    """(N, C, H, W) -> view (N, C, OH, OW, kh, kw) of a pool's windows; the pads and
    the positions ceil_mode adds past the end pad hold pad_value."""
    top, left, bottom, right = attrs.pads
    eh, ew = attrs.extra_end(x.shape[2:])
    return windows(pad_hw(x, (top, left, bottom + eh, right + ew), pad_value), attrs.kernel, attrs.stride)


def pool_counts(in_hw: tuple[int, int], attrs: PoolAttrs) -> np.ndarray:
    """The AvgPool divisor of each window, (OH, OW): the real input cells it covers, plus
    the explicit pads if count_include_pad, never the positions ceil_mode adds (ONNX, PyTorch)."""
    cells = pad_hw(np.ones((1, 1, *in_hw), dtype=np.int64), attrs.pads, int(attrs.count_include_pad))
    eh, ew = attrs.extra_end(in_hw)
    return windows(pad_hw(cells, (0, 0, eh, ew), 0), attrs.kernel, attrs.stride).sum(axis=(-1, -2))[0, 0]


# --- Exact integer GEMM on float BLAS -------------------------------------------------------------
# A float32 matmul of integer operands is exact while every partial sum stays an integer of
# magnitude <= 2^24: with p = max|a| * max|b|, any k <= 2^24 // p products sum exactly, whatever
# order (or FMA) the BLAS uses, because every partial sum is bounded by the sum of the |terms|.
# Longer reductions are split into such K-chunks, each chunk's float32 result converted to int64
# exactly and the chunks summed in int64. float64 (exact to 2^53) covers wide operands (int16);
# beyond that the plain int64 matmul, which exact_matmul is defined to equal, is used.

F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
MIN_F32_CHUNK = 64  # below this many terms per chunk, one float64 pass beats many float32 ones


def _abs_max(x: np.ndarray) -> int:
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


def _bound(x: np.ndarray) -> int:
    """A cheap bound on max|x|: the dtype's for 8-bit integers (no pass over x), else the actual one."""
    if x.dtype.itemsize == 1 and x.dtype != np.bool_:
        info = np.iinfo(x.dtype)
        return max(-int(info.min), int(info.max))
    return _abs_max(x)


def _plan(a: np.ndarray, b: np.ndarray, k: int) -> tuple[type | None, int]:
    """(float dtype, terms per chunk) of an exact a (..., K) @ b (K, ...); dtype None: use int64.
    Chunks follow the operands' actual max|a| * max|b| (8-bit operands are only scanned when their
    dtype's bound would need more than one float32 chunk)."""
    if _bound(a) * _bound(b) * k <= F32_EXACT:
        return np.float32, k
    p = _abs_max(a) * _abs_max(b)
    if p * k <= F32_EXACT:
        return np.float32, k
    c32 = F32_EXACT // p
    if c32 >= MIN_F32_CHUNK:
        return np.float32, c32
    if p * k <= F64_EXACT:
        return np.float64, k
    if F64_EXACT // p >= 1:
        return np.float64, F64_EXACT // p
    return None, k


def _chunked_matmul(af: np.ndarray, bf: np.ndarray, chunk: int) -> np.ndarray:
    """af (..., M, K >= 1) @ bf (..., K, N) in float, K in balanced chunks of <= chunk terms; int64."""
    k = af.shape[-1]
    pieces = max(1, -(-k // chunk))
    step = -(-k // pieces)
    acc = None
    for k0 in range(0, k, step):
        part = np.matmul(af[..., k0:k0 + step], bf[..., k0:k0 + step, :]).astype(np.int64)
        if acc is None:
            acc = part
        else:
            acc += part  # every chunk has the full broadcast (..., M, N) shape
    return acc


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer a (..., M, K) @ b (..., K, N) (numpy matmul broadcasting) as int64, bit-identical to
    a.astype(int64) @ b.astype(int64), computed with float32 (or float64) BLAS in exact K-chunks."""
    a = np.asarray(a)
    b = np.asarray(b)
    for t in (a, b):
        if not (np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_):
            raise TypeError(f"exact_matmul takes integer operands, not {t.dtype}")
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"exact_matmul needs operands of rank >= 2, got {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"exact_matmul: shapes {a.shape} and {b.shape} do not align")
    k = a.shape[-1]
    if k == 0:
        shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
        return np.zeros(shape, dtype=np.int64)
    dtype, chunk = _plan(a, b, k)
    if dtype is None:
        return np.matmul(a.astype(np.int64), b.astype(np.int64))
    return _chunked_matmul(a.astype(dtype), b.astype(dtype), chunk)


def _narrow_acc(k: int, *operands: np.ndarray) -> type:
    """int32 if a sum of k products of the operands' values always fits int32, else int64."""
    p = 1
    for x in operands:
        p *= _abs_max(x)
    return np.int32 if p * k < (1 << 31) else np.int64


def int_depthwise_conv(x: np.ndarray, weight: np.ndarray, attrs: ConvAttrs, pad_value: int) -> np.ndarray:
    """Depthwise conv (groups == C, weight (C*m, 1, kh, kw)) straight from the input, no im2col:
    one multiply-accumulate per kernel tap over strided views of the padded input, in int32 while
    kh*kw * max|x| * max|w| < 2^31. int64 (N, C*m, OH, OW), equal to
    conv_gemm(im2col(x, attrs, pad_value), weight, C, out_hw) computed in int64."""
    n, c = x.shape[:2]
    if attrs.groups != c or weight.shape[1] != 1 or weight.shape[0] % c:
        raise ValueError(f"int_depthwise_conv: groups={attrs.groups}, input channels {c}, weight {weight.shape}")
    xp = pad_hw(x, attrs.pads, pad_value)
    (kh, kw), (sh, sw), (dh, dw) = attrs.kernel, attrs.stride, attrs.dilation
    oh = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    m = weight.shape[0] // c
    dtype = _narrow_acc(kh * kw, xp, weight)
    wk = weight.reshape(c, m, kh, kw).astype(dtype)
    acc = np.zeros((n, c, m, oh, ow), dtype=dtype)
    tmp = np.empty_like(acc)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, None, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            np.multiply(tap, wk[None, :, :, i, j, None, None], out=tmp, dtype=dtype, casting="unsafe")
            acc += tmp
    return acc.reshape(n, c * m, oh, ow).astype(np.int64, copy=False)


def int_conv_gemm(cols: np.ndarray, weight: np.ndarray, groups: int, out_hw: tuple[int, int]) -> np.ndarray:
    """conv_gemm for integer operands, exact and fast: cols (N, G, P, Kg) (im2col's output) x integer
    weight (N_out, C/G, kh, kw) -> int64 (N, N_out, OH, OW), bit-identical to conv_gemm on int64.

    groups == 1: one (N*P, K) x (K, N_out) float BLAS GEMM (in exact K-chunks); grouped: a batched
    float GEMM over the groups; depthwise (one input channel per group): an int32 einsum (from the
    input, int_depthwise_conv is faster still: it needs no im2col)."""
    n, g, p, k = cols.shape
    if g != groups:
        raise ValueError(f"int_conv_gemm: cols hold {g} groups, groups={groups}")
    n_out = weight.shape[0]
    w = weight.reshape(groups, n_out // groups, k)  # (G, O, K)
    if g == 1:
        out = exact_matmul(cols[:, 0].reshape(n * p, k), w[0].T).reshape(n, p, n_out)
    elif weight.shape[1] == 1:  # depthwise, K = kh*kw: too short for BLAS; einsum in int32 -> (N, G*O, P)
        out = np.einsum("ngpk,gok->ngop", cols, w.astype(_narrow_acc(k, cols, w)))
        return out.reshape(n, n_out, *out_hw).astype(np.int64, copy=False)
    else:
        out = exact_matmul(cols, w.transpose(0, 2, 1))  # (N, G, P, O)
        out = out.transpose(0, 2, 1, 3).reshape(n, p, n_out)
    return out.transpose(0, 2, 1).reshape(n, n_out, *out_hw)


def zero_insert(x: np.ndarray, stride: tuple[int, int], fill) -> np.ndarray:
    """(N, C, H, W) -> (N, C, (H-1)*sh+1, (W-1)*sw+1): stride - 1 copies of `fill` between
    neighbouring pixels (a transposed conv's input as the array's stride-1 conv reads it)."""
    n, c, h, w = x.shape
    sh, sw = stride
    out = np.full((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1), fill, dtype=x.dtype)
    out[:, :, ::sh, ::sw] = x
    return out


# --- Fast requantization ---------------------------------------------------------------------------
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True, eq=False)
class RequantPlan:
    """The data-independent part of requantize_fast for one (m0, shift, zero point, clamp)."""
    m0: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int
    reference: bool      # multipliers or shifts outside the fast path: use fixedpoint.requantize
    m0_max: int = 0
    left: bool = False   # some shift is a left shift
    right: np.ndarray | None = None
    r_max: int = 0
    r_min: int = 0
    fused_add: np.ndarray | None = None   # 2^30 + 2^(r+30) [r > 0] + zp 2^(31+r)
    fused_shift: np.ndarray | None = None  # 31 + r
    positive_mask: np.ndarray | None = None  # -1 where r > 0, else 0 (int64)
    round_add: np.ndarray | None = None   # 2^(r-1) where r > 0, else 0


def requant_plan(m0: np.ndarray, shift: np.ndarray, zero_point: int, qmin: int, qmax: int) -> RequantPlan:
    m0 = np.asarray(m0, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if (m0.size == 0 or shift.size == 0 or int(m0.min()) < 0 or int(m0.max()) > _I32_MAX
            or int(shift.min()) < -31 or int(shift.max()) > 62):
        return RequantPlan(m0, shift, int(zero_point), int(qmin), int(qmax), reference=True)
    right = np.maximum(shift, 0)
    positive = right > 0
    zp = int(zero_point)
    fused_add = ((1 << 30) + np.where(positive, np.left_shift(np.int64(1), right + 30), 0)
                 + (np.int64(zp) << (right + 31)))
    return RequantPlan(m0, shift, zp, int(qmin), int(qmax), reference=False, m0_max=int(m0.max()),
                       left=int(shift.min()) < 0, right=right, r_max=int(right.max()), r_min=int(right.min()),
                       fused_add=fused_add, fused_shift=right + 31, positive_mask=-positive.astype(np.int64),
                       round_add=np.where(positive, np.int64(1) << np.maximum(right - 1, 0), 0))


def requantize_fast(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray, zero_point: int,
                    qmin: int, qmax: int) -> np.ndarray:
    """Bit-identical to quant.fixedpoint.requantize (int64 out), in fewer array passes.

    For 0 <= m0 <= INT32_MAX (every multiplier quantize_multiplier makes) the saturating case of
    SaturatingRoundingDoublingHighMul cannot occur and, with floor shifts,
        SRDHM(x, m0) = (x * m0 + 2^30) >> 31        (exact: |x * m0| < 2^62)
        RDBP(y, r)   = (y + 2^(r-1) - [y < 0]) >> r  (r >= 1; y for r = 0).
    Anything else (negative or wide m0, left shifts over 31, right shifts over 62) goes to the
    reference."""
    return requantize_planned(acc, requant_plan(m0, shift, zero_point, qmin, qmax))


def requantize_planned(acc: np.ndarray, plan: RequantPlan) -> np.ndarray:
    """requantize_fast with its data-independent part precomputed (plan = requant_plan(...))."""
    from quant.fixedpoint import requantize

    acc = np.asarray(acc)
    if plan.reference or not np.issubdtype(acc.dtype, np.integer) or acc.size == 0:
        return requantize(acc, plan.m0, plan.shift, plan.zero_point, plan.qmin, plan.qmax)
    acc = acc.astype(np.int64, copy=False)
    m0, shift = plan.m0, plan.shift
    shape = np.broadcast_shapes(acc.shape, m0.shape, shift.shape)
    lo, hi = int(acc.min()), int(acc.max())
    if plan.left:  # left shifts: saturate, shift, saturate (as the reference)
        x = np.clip(acc, _I32_MIN, _I32_MAX) << np.maximum(-shift, 0)
        np.clip(x, _I32_MIN, _I32_MAX, out=x)
        x_max = 1 << 31
    elif lo < _I32_MIN or hi > _I32_MAX:
        x = np.clip(acc, _I32_MIN, _I32_MAX)
        x_max = 1 << 31
    else:
        x = acc
        x_max = max(-lo, hi)
    r_max, zp = plan.r_max, plan.zero_point
    fused = x_max * plan.m0_max + (1 << 31) + (1 << (r_max + 30)) + (1 << 31) + abs(zp) * (1 << (r_max + 31))
    y = np.multiply(x, m0)
    if y.shape != shape:
        y = np.broadcast_to(y, shape).copy()
    if fused < (1 << 63):
        # One rounding shift: with t = x * m0, z = t + 2^30 and r >= 1, floor shifts compose, so
        #   RDBP(floor(z / 2^31), r) + zp = (z + 2^(r+30) - 2^31 [z < 0] + zp 2^(31+r)) >> (31 + r)
        # (r = 0: (z + zp 2^31) >> 31). `fused` bounds every intermediate below 2^63.
        if r_max > 0:  # -2^31 where z < 0 (and r > 0); sign by shift: np.where / masked ops are far slower
            sign = y + (1 << 30)
            sign >>= 63
            if plan.r_min == 0:
                sign &= plan.positive_mask
            sign <<= 31
            y += sign
        y += plan.fused_add
        y >>= plan.fused_shift
    else:
        y += 1 << 30
        y >>= 31
        if r_max > 0:
            neg = y >> 63  # -1 where y < 0
            if plan.r_min == 0:
                neg &= plan.positive_mask  # no rounding term where r = 0
            y += plan.round_add
            y += neg
            y >>= plan.right
        if zp:
            y += zp
    np.clip(y, plan.qmin, plan.qmax, out=y)
    return y
