"""Property tests: the vectorised fixed-point code against exact Python integers."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    POW2_M0,
    IntType,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

int32s = st.integers(INT32_MIN, INT32_MAX)


def srdhm_ref(a: int, b: int) -> int:
    """gemmlowp's scalar reference, in Python integers."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) >> 31
    return q if ab + nudge >= 0 else -q


def round_half_away(x: Fraction) -> int:
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


@settings(max_examples=500)
@given(int32s, int32s)
def test_srdhm_matches_reference(a, b):
    assert int(saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))[0]) == srdhm_ref(a, b)


def test_srdhm_saturates():
    assert saturating_rounding_doubling_high_mul(np.array([INT32_MIN]), np.array([INT32_MIN]))[0] == INT32_MAX


@settings(max_examples=500)
@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x, e):
    assert int(rounding_divide_by_pot(np.array([x]), np.array([e]))[0]) == round_half_away(Fraction(x, 2 ** e))


@pytest.mark.parametrize("x,e,want", [(5, 1, 3), (-5, 1, -3), (-6, 2, -2), (6, 2, 2), (-7, 2, -2), (7, 2, 2)])
def test_negative_rounding_edges(x, e, want):
    assert rounding_divide_by_pot(np.array([x]), np.array([e]))[0] == want


@settings(max_examples=300)
@given(st.floats(1e-6, 0.999, allow_nan=False))
def test_quantize_multiplier_is_close(real):
    m0, shift = quantize_multiplier(real)
    assert 1 << 30 <= m0 < 1 << 31
    assert abs(m0 * 2.0 ** (-31 - shift) - real) <= real * 2 ** -30


def test_quantize_multiplier_above_one_and_zero():
    m0, shift = quantize_multiplier(3.0)
    assert shift < 0 and m0 * 2.0 ** (-31 - shift) == 3.0
    assert quantize_multiplier(0.0) == (0, 0)
    with pytest.raises(ValueError):
        quantize_multiplier(-1.0)


@settings(max_examples=300)
@given(st.integers(-(1 << 24), 1 << 24), st.floats(1e-4, 0.99))
def test_mbqm_within_one_of_exact(acc, real):
    m0, shift = quantize_multiplier(real)
    got = int(multiply_by_quantized_multiplier(np.array([acc]), m0, shift)[0])
    exact = Fraction(acc) * Fraction(m0, 1 << 31) / (1 << shift)
    # gemmlowp rounds twice (high-mul, then shift): at most 1 LSB off the exact product, e.g. 1 * 0.25 -> 1
    assert abs(got - exact) <= 1


@given(st.integers(-(1 << 20), 1 << 20), st.integers(-20, 10))
def test_pow2_mode_is_a_rounding_shift(acc, exponent):
    m0, shift = quantize_multiplier(2.0 ** exponent, pow2=True)
    assert m0 == POW2_M0
    got = int(multiply_by_quantized_multiplier(np.array([acc]), m0, shift)[0])
    assert abs(got - Fraction(acc) * Fraction(2) ** exponent) <= 1


def test_requantize_saturates_and_applies_zero_point():
    m0, shift = quantize_multiplier(0.5)
    out = requantize(np.array([10_000, -10_000, 0, 7]), m0, shift, zero_point=-128, qmin=-128, qmax=127)
    assert out.tolist() == [127, -128, -128, -124]


@given(st.integers(2, 64), st.booleans())
def test_inttype_bounds(bits, signed):
    t = IntType(bits, signed)
    assert t.max - t.min == 2 ** bits - 1
    assert t.contains(np.array([t.min, t.max])) and not t.contains(t.max + 1)
    with pytest.raises(ValueError):
        IntType(1)
