"""MyHDL requantization unit: int32 accumulator -> int8, the fixed-point code of quant.fixedpoint in gates.

    s       = acc + bias
    shifted = clamp_int32(s << max(-shift, 0))
    high    = SaturatingRoundingDoublingHighMul(shifted, m0)      (gemmlowp)
            = (shifted * m0 + (ab >= 0 ? 2^30 : 1 - 2^30)) / 2^31, truncated toward zero
    x       = RoundingDivideByPOT(high, max(shift, 0))             (round half away from zero)
            = e == 0 ? high : (high + 2^(e-1) - (high < 0)) >>> e
    out     = clamp(x + zero_point, qmin, qmax)                    (qmin = zero_point for a fused ReLU)

m0 lies in [0, 2^31), so the INT32_MIN * INT32_MIN saturation case of gemmlowp
cannot arise. Combinational: it sits in the drain path, which hwsim counts as free.
"""
from __future__ import annotations

from myhdl import always_comb, block, intbv

WIDE = 80  # bits of the internal signed variables: a 33-bit sum shifted left by up to 31, a 64-bit product


@block
def requant_unit(acc, bias, m0, shift, zero_point, qmin, qmax, out):
    """acc: signed (<= 32 bits); bias: signed 32; m0: unsigned 32; shift: signed 8;
    zero_point/qmin/qmax/out: signed data bits."""

    @always_comb
    def comb():
        s = intbv(0, min=-(1 << (WIDE - 1)), max=1 << (WIDE - 1))
        t = intbv(0, min=-(1 << (WIDE - 1)), max=1 << (WIDE - 1))
        left = intbv(0)[8:]
        right = intbv(0)[8:]
        if shift < 0:
            left[:] = -shift
            right[:] = 0
        else:
            left[:] = 0
            right[:] = shift
        s[:] = acc + bias
        s[:] = s << left
        if s > (1 << 31) - 1:
            s[:] = (1 << 31) - 1
        elif s < -(1 << 31):
            s[:] = -(1 << 31)
        s[:] = s * m0
        if s >= 0:
            s[:] = s + (1 << 30)
        else:
            s[:] = s + (1 - (1 << 30))
        if s < 0:
            s[:] = s + ((1 << 31) - 1)
        s[:] = s >> 31
        if right > 0:
            t[:] = 1
            t[:] = t << (right - 1)
            if s < 0:
                t[:] = t - 1
            s[:] = (s + t) >> right
        s[:] = s + zero_point
        if s > qmax:
            s[:] = qmax
        elif s < qmin:
            s[:] = qmin
        out.next = s

    return comb
