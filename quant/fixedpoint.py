"""Fixed-point arithmetic: the one definition of requantization.

Semantics are gemmlowp's / TFLite's reference kernels:

    requantize(acc, m0, shift) = RoundingDivideByPOT(
        SaturatingRoundingDoublingHighMul(acc << left, m0), right)

with m0 an int32 mantissa in [2^30, 2^31) representing M / 2^(exponent), left =
max(exponent, 0) and right = max(-exponent, 0). `shift` below is the *right*
shift (negative for a left shift). Called by the integer executor, by hwsim's
cycle engine and by the RTL's cocotb model alike. Everything is vectorised over
numpy int64 arrays; no floating point is used except in `quantize_multiplier`,
which runs once, offline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
POW2_M0 = 1 << 30  # the mantissa of the power-of-two mode: 0.5 in Q31


@dataclass(frozen=True)
class IntType:
    """An integer type of `bits` bits, signed or not, with numpy helpers."""
    bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 < self.bits <= 64:
            raise ValueError(f"bits must be an integer in 2..64, not {self.bits!r}")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def contains(self, values: np.ndarray | int) -> bool:
        arr = np.asarray(values)
        return bool(arr.size == 0 or (arr.min() >= self.min and arr.max() <= self.max))

    def clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.min, self.max)

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


def int_range(bits: int) -> tuple[int, int]:
    """(min, max) of a signed `bits`-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


INT8 = IntType(8)
INT32 = IntType(32)


def quantize_multiplier(real: float, pow2: bool = False) -> tuple[int, int]:
    """Real multiplier M > 0 -> (m0, right_shift) with M ~= m0 * 2^-31 * 2^-right_shift.

    pow2=True rounds M to a power of two: m0 is then always 2^30 and only the
    shift varies (a shifter instead of a multiplier in hardware).
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and non-negative, not {real}")
    if real == 0.0:
        return 0, 0
    if pow2:
        exponent = round(math.log2(real))  # M ~= 2^exponent = 0.5 * 2^(exponent+1)
        return POW2_M0, -(exponent + 1)
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    m0 = round(mantissa * (1 << 31))
    if m0 == 1 << 31:
        m0 //= 2
        exponent += 1
    if exponent < -62:
        return 0, 0
    return int(m0), int(-exponent)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64:
    (a*b + nudge) / 2^31 truncated toward zero, nudge = 2^30 or 1 - 2^30 by sign."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    negative = ab < 0
    total = ab + (1 << 30) - negative * ((1 << 31) - 1)
    # truncation toward zero: floor for total >= 0, ceil (add 2^31 - 1 first) for total < 0
    high = (total + (total < 0) * ((1 << 31) - 1)) >> 31
    if np.any(a == INT32_MIN) and np.any(b == INT32_MIN):
        high = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)
    return high


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier; shift is the right shift (negative = left)."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(-shift, 0)
    right = np.maximum(shift, 0)
    # Saturate to int32 before the left shift: the same result as shifting then saturating (a value
    # outside int32 stays outside after a left shift), without overflowing int64 for wide accumulators.
    shifted = np.clip(np.asarray(acc, dtype=np.int64), INT32_MIN, INT32_MAX) << left
    shifted = np.clip(shifted, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m0), right)


def requantize(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray, zero_point: int,
               qmin: int, qmax: int) -> np.ndarray:
    """int32 accumulator -> clamp(MBQM(acc, m0, shift) + zero_point, qmin, qmax) as int64.

    m0/shift broadcast against acc (per-channel: shape (C, 1, 1) for NCHW)."""
    out = multiply_by_quantized_multiplier(acc, m0, shift) + zero_point
    return np.clip(out, qmin, qmax)
