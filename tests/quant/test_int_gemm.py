"""The exact float-BLAS integer kernels of quant.kernels equal plain int64 arithmetic bit for bit:
exact_matmul, int_conv_gemm, int_depthwise_conv and requantize_fast (no timing assertions)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.fixedpoint import requantize
from quant.ir import ConvAttrs
from quant.kernels import (
    _plan,
    conv_gemm,
    exact_matmul,
    im2col,
    int_conv_gemm,
    int_depthwise_conv,
    requantize_fast,
)


def ref_matmul(a, b):
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def ref_conv(cols, weight, groups, out_hw):
    return conv_gemm(cols.astype(np.int64), weight.astype(np.int64), groups, out_hw)


def same(got, want):
    assert got.dtype == np.int64
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# --- exact_matmul -------------------------------------------------------------------------------

def test_worst_case_int8_over_many_chunks():
    """-128 x -127 over K = 5000: 5000 * 16256 ~ 2^26.3, so float32 alone would round; 5 chunks."""
    a = np.full((3, 5000), -128, dtype=np.int8)
    b = np.full((5000, 4), -127, dtype=np.int8)
    assert _plan(a, b, 5000) == (np.float32, (1 << 24) // (128 * 127))
    same(exact_matmul(a, b), ref_matmul(a, b))
    assert exact_matmul(a, b)[0, 0] == 5000 * 128 * 127


def test_alternating_signs_and_extremes():
    rng = np.random.default_rng(0)
    a = rng.choice(np.array([-128, 127], dtype=np.int8), size=(17, 4099))
    b = rng.choice(np.array([-127, 127, -128], dtype=np.int8), size=(4099, 9))
    same(exact_matmul(a, b), ref_matmul(a, b))
    a[:] = -128
    b[:] = -128
    same(exact_matmul(a, b), ref_matmul(a, b))


@pytest.mark.parametrize("dtype, lo, hi", [(np.int8, -128, 128), (np.uint8, 0, 256), (np.int16, -32768, 32768),
                                           (np.int32, -(1 << 31), 1 << 31), (np.int64, -(1 << 40), 1 << 40)])
def test_random_dtypes(dtype, lo, hi):
    rng = np.random.default_rng(1)
    for k in (1, 7, 1031, 1033, 3000):
        a = rng.integers(lo, hi, (2, 5, k), dtype=dtype)
        b = rng.integers(lo, hi, (k, 6), dtype=dtype)
        same(exact_matmul(a, b), ref_matmul(a, b))


def test_plan_uses_actual_magnitudes():
    k = 4608
    narrow = np.full((2, k), 15, dtype=np.int8)  # 15 * 127 * 4608 < 2^24: one float32 chunk
    w = np.full((k, 3), -127, dtype=np.int8)
    assert _plan(narrow, w, k) == (np.float32, k)
    wide = np.full((2, k), 30000, dtype=np.int16)  # 2^24 // (30000 * 127) = 4: float64 instead
    assert _plan(wide, w, k)[0] == np.float64
    same(exact_matmul(wide, w), ref_matmul(wide, w))
    chunked = np.full((2, k), 1 << 40, dtype=np.int64)  # 2^40 * 127 * 4608 > 2^53: float64 in chunks
    assert _plan(chunked, w, k) == (np.float64, (1 << 53) // ((1 << 40) * 127))
    same(exact_matmul(chunked, w), ref_matmul(chunked, w))
    huge = np.full((2, k), 1 << 50, dtype=np.int64)  # one product past 2^53: the int64 matmul itself
    assert _plan(huge, w, k)[0] is None
    same(exact_matmul(huge, w), ref_matmul(huge, w))


def test_zero_point_shifted_operands():
    """(x - zp) spans up to 255: still exact, the chunk just shrinks."""
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (40, 2304)).astype(np.int16)
    a = x - np.int16(-128)  # 0..255
    b = rng.integers(-127, 128, (2304, 64), dtype=np.int8)
    b[0] = -127
    a[:, 0] = 255
    same(exact_matmul(a, b), ref_matmul(a, b))


def test_batched_broadcasting():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (2, 3, 10, 2000), dtype=np.int8)
    b = rng.integers(-127, 128, (3, 2000, 4), dtype=np.int8)
    same(exact_matmul(a, b), ref_matmul(a, b))
    same(exact_matmul(a[0, 0], b), ref_matmul(a[0, 0], b))


def test_noncontiguous_and_empty():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (30, 3000), dtype=np.int8)[::2, ::3]
    b = rng.integers(-127, 128, (8, 1000), dtype=np.int8).T
    same(exact_matmul(a, b), ref_matmul(a, b))
    same(exact_matmul(np.zeros((4, 0), np.int8), np.zeros((0, 3), np.int8)), np.zeros((4, 3), np.int64))
    same(exact_matmul(np.zeros((0, 5), np.int8), np.ones((5, 3), np.int8)), np.zeros((0, 3), np.int64))


def test_rejects_float_operands():
    with pytest.raises(TypeError):
        exact_matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.int8))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(1, 2600), n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       bits=st.sampled_from([2, 5, 8, 9, 12, 16]), extreme=st.booleans())
def test_hypothesis_matmul(m, k, n, seed, bits, extreme):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    a = rng.integers(lo, hi, (m, k), dtype=np.int64).astype(np.int16 if bits > 8 else np.int8)
    b = rng.integers(-127, 128, (k, n), dtype=np.int8)
    if extreme:
        a[:, ::2] = lo
        b[::2] = -127
    same(exact_matmul(a, b), ref_matmul(a, b))


# --- int_conv_gemm ------------------------------------------------------------------------------

CONV_CASES = [  # (N, C, H, W, N_out, kernel, stride, pads, dilation, groups)
    (2, 3, 9, 11, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 64, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),     # K = 576
    (2, 256, 5, 5, 8, (3, 3), (2, 2), (1, 0, 1, 1), (1, 1), 1),    # K = 2304: 3 chunks
    (3, 600, 4, 4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),    # K = 5400, worst-case values below
    (2, 8, 10, 10, 12, (3, 3), (1, 1), (1, 1, 1, 1), (2, 2), 4),   # grouped, dilated
    (2, 512, 4, 4, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),    # grouped, K = 2304 per group
    (2, 6, 9, 9, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 6),      # depthwise
    (2, 4, 8, 7, 8, (5, 3), (1, 2), (2, 1, 2, 1), (1, 1), 4),      # depthwise, channel multiplier 2
    (1, 5, 7, 7, 10, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 5),     # 1x1 depthwise
]


def _operands(case, rng, worst=False):
    n, c, h, w, n_out, kernel, stride, pads, dilation, groups = case
    x = rng.integers(-128, 128, (n, c, h, w), dtype=np.int8)
    weight = rng.integers(-127, 128, (n_out, c // groups, *kernel), dtype=np.int8)
    if worst:
        x[:] = -128
        weight[:] = -127
    attrs = ConvAttrs(kernel=kernel, stride=stride, pads=pads, dilation=dilation, groups=groups)
    return x, weight, attrs


def _out_hw(x, attrs):
    top, left, bottom, right = attrs.pads
    return tuple((size + lo + hi - (k - 1) * d - 1) // s + 1 for size, lo, hi, k, d, s in
                 zip(x.shape[2:], (top, left), (bottom, right), attrs.kernel, attrs.dilation,
                     attrs.stride, strict=True))


@pytest.mark.parametrize("worst", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_int_conv_gemm(case, worst):
    x, weight, attrs = _operands(case, np.random.default_rng(5), worst)
    cols = im2col(x, attrs, -128)
    out_hw = _out_hw(x, attrs)
    want = ref_conv(cols, weight, attrs.groups, out_hw)
    same(int_conv_gemm(cols, weight, attrs.groups, out_hw), want)
    if attrs.groups == x.shape[1] and weight.shape[1] == 1:
        same(int_depthwise_conv(x, weight, attrs, -128), want)


def test_int_conv_gemm_int16_and_shifted_cols():
    """Wider operands (int16 cols, zero-point-shifted 0..255) still match exactly."""
    rng = np.random.default_rng(6)
    for case in (CONV_CASES[2], CONV_CASES[5], CONV_CASES[6]):
        x, weight, attrs = _operands(case, rng)
        cols = im2col(x.astype(np.int16) + 128, attrs, 0)  # 0..255
        out_hw = _out_hw(x, attrs)
        same(int_conv_gemm(cols, weight, attrs.groups, out_hw), ref_conv(cols, weight, attrs.groups, out_hw))
        wide = im2col((x.astype(np.int16) * 200), attrs, -25600)  # int16 near its range: float64 path
        same(int_conv_gemm(wide, weight, attrs.groups, out_hw), ref_conv(wide, weight, attrs.groups, out_hw))
        if attrs.groups == x.shape[1]:
            same(int_depthwise_conv(x.astype(np.int16) * 200, weight, attrs, -25600),
                 ref_conv(wide, weight, attrs.groups, out_hw))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), cg=st.integers(1, 40), g=st.sampled_from([1, 2, 3]), og=st.integers(1, 4),
       hw=st.integers(3, 8), k=st.sampled_from([1, 2, 3]), s=st.integers(1, 2), pad=st.integers(0, 1),
       depthwise=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_conv(n, cg, g, og, hw, k, s, pad, depthwise, seed):
    rng = np.random.default_rng(seed)
    if depthwise:
        cg, g = 1, max(g, 2)
    c = cg * g
    x = rng.integers(-128, 128, (n, c, hw, hw), dtype=np.int8)
    weight = rng.integers(-127, 128, (og * g, cg, k, k), dtype=np.int8)
    attrs = ConvAttrs(kernel=(k, k), stride=(s, s), pads=(pad,) * 4, groups=g)
    cols = im2col(x, attrs, int(rng.integers(-128, 128)))
    oh = (hw + 2 * pad - k) // s + 1
    want = ref_conv(cols, weight, g, (oh, oh))
    same(int_conv_gemm(cols, weight, g, (oh, oh)), want)


def test_int_conv_gemm_rejects_group_mismatch():
    with pytest.raises(ValueError):
        int_conv_gemm(np.zeros((1, 2, 4, 9), np.int8), np.zeros((4, 1, 3, 3), np.int8), 4, (2, 2))


# --- requantize_fast ----------------------------------------------------------------------------

def test_requantize_fast_random():
    rng = np.random.default_rng(7)
    for trial in range(300):
        c = int(rng.integers(1, 5))
        acc = rng.integers(-(1 << int(rng.integers(1, 40))), 1 << int(rng.integers(1, 40)), (2, c, 3, 4))
        if trial % 5 == 0:
            acc[..., 0] = rng.choice([-(1 << 31), (1 << 31) - 1, -(1 << 31) - 5, (1 << 31) + 7, -1, 0, 1])
        m0 = rng.integers(0, 1 << 31, (c, 1, 1)) if trial % 3 else np.full((c, 1, 1), 1 << 30)
        if trial % 7 == 0:
            m0[0] = rng.choice([0, (1 << 31) - 1, 1 << 30])
        shift = rng.integers(-10, 40, (c, 1, 1)) if trial % 2 else rng.integers(0, 20, (c, 1, 1))
        zp = int(rng.integers(-128, 128))
        qmin, qmax = (-(1 << 40), 1 << 40) if trial % 4 == 0 else (-128, 127)
        same(requantize_fast(acc, m0, shift, zp, qmin, qmax), requantize(acc, m0, shift, zp, qmin, qmax))


@pytest.mark.parametrize("m0", [0, 1, 1 << 30, (1 << 30) + 1, 1234567890, (1 << 31) - 1])
def test_requantize_fast_every_small_accumulator(m0):
    """Every accumulator in [-70000, 70000) at every shift from 3 left to 39 right, three zero points,
    no clamp: the rounding ties of both steps included, single-shift and two-step paths."""
    acc = np.arange(-70000, 70000, dtype=np.int64)
    for shift in range(-3, 40):
        for zp in (0, -128, 77):
            same(requantize_fast(acc, m0, shift, zp, -(1 << 62), 1 << 62),
                 requantize(acc, m0, shift, zp, -(1 << 62), 1 << 62))


def test_requantize_fast_two_step_path():
    """A zero point times 2^(31 + r) past int64 forces the two-step rounding; still identical."""
    acc = np.array([-(1 << 31), -(1 << 20) - 1, -3, 0, 3, (1 << 20) + 1, (1 << 31) - 1], dtype=np.int64)
    for shift, zp in [(31, 1 << 20), (40, -5000), (62, 1)]:
        same(requantize_fast(acc, (1 << 31) - 1, shift, zp, -(1 << 62), 1 << 62),
             requantize(acc, (1 << 31) - 1, shift, zp, -(1 << 62), 1 << 62))


def test_requantize_fast_scalar_and_fallbacks():
    acc = np.array([[-(1 << 31), -5, 0, 5, (1 << 31) - 1]], dtype=np.int64)
    for m0, shift in [(np.int64(1 << 30), np.int64(3)), (-(1 << 31), 2), (1 << 31, 1), (1 << 30, 62), (1 << 30, -40)]:
        same(requantize_fast(acc, m0, shift, 3, -128, 127), requantize(acc, m0, shift, 3, -128, 127))
    same(requantize_fast(acc.astype(np.int32), np.array([1 << 30]), np.array([0]), 0, -128, 127),
         requantize(acc.astype(np.int32), np.array([1 << 30]), np.array([0]), 0, -128, 127))


# --- the executor equals the plain int64 one on the bar's models ---------------------------------

@pytest.mark.parametrize("name", ["lenet5", "lenet5_classic", "vgg_small_bn", "resnet18"])
def test_executor_bit_identical_to_the_plain_int64_one(name, tmp_path):
    """LeNet, the tanh/average-pool LeNet, a BatchNorm VGG and ResNet-18: every tensor of the
    integer executor equals the one computed with plain int64 GEMMs and fixedpoint.requantize."""
    import warnings

    import quant.int_exec as ie
    from models.zoo import build
    from quant.calibrate import collect_ranges
    from quant.int_reference import plain_kernels
    from quant.onnx_import import load_onnx
    from quant.quantize import quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ResNet's stride-2 1x1 skips drop a row (ONNX floor semantics)
        graph = load_onnx(build(name, tmp_path, "legacy"))
    rng = np.random.default_rng(8)
    qgraph = quantize(graph, collect_ranges(graph, rng.random((4, *graph.input_shape[1:]), dtype=np.float32)))
    x_q = ie.quantize_input(rng.random((2 if name == "resnet18" else 8, *graph.input_shape[1:])), qgraph.input_quant)
    got = ie.run_int(qgraph, x_q, intermediate=True)
    with plain_kernels():
        want = ie.run_int(qgraph, x_q, intermediate=True)
    assert got.keys() == want.keys()
    for tensor in want:
        np.testing.assert_array_equal(got[tensor], want[tensor], err_msg=tensor)
