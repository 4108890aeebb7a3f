"""Array primitives shared by the float and integer executors (and hwsim's
mapping): padding, im2col lowering and pooling windows. dtype-agnostic."""
from __future__ import annotations

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
