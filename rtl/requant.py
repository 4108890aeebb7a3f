"""MyHDL requantization pipeline: int32 accumulator -> int8, the fixed-point code of quant.fixedpoint
in gates, cut into REQUANT_STAGES register stages so it never limits the engine's clock.

    s       = acc + bias
    shifted = clamp_int32(s << max(-shift, 0))
    high    = SaturatingRoundingDoublingHighMul(shifted, m0)      (gemmlowp)
            = (shifted * m0 + (ab >= 0 ? 2^30 : 1 - 2^30)) / 2^31, truncated toward zero
    x       = RoundingDivideByPOT(high, max(shift, 0))             (round half away from zero)
            = e == 0 ? high : (high + 2^(e-1) - (high < 0)) >>> e
    out     = clamp(x + zero_point, qmin, qmax)                    (qmin = zero_point for a fused ReLU)

Stages (one register each; the row's write address and its channel's m0/shift travel along, so a
new fold's parameters never meet the previous fold's values still in flight). Each stage holds at
most two chained adders or one barrel shifter, so that it never limits the engine's clock:

    1  s = acc + bias; the left and right shifts, clamped (34-bit add)
    2  shifted = saturate_int32(s << left)                  (barrel shift, compare)
    3  four 16 x 16 partial products of shifted * m0        (DSP blocks, registered)
    4  the two middle products added; the nudge into the low one
    5  total = shifted * m0 + nudge; half = 2^(right-1)      (two 65-bit adds; a decoder)
    6  r = (total / 2^31 truncated toward zero) + half - (it < 0 and right > 0)
    7  x = r >>> right                                      (barrel shift)
    8  z = x + zero_point
       out = clamp(z, qmin, qmax) feeds the write           (combinational: two compares)

A right shift past 33 gives what 33 gives (0), so the shifters stop at 33 and a left shift at 32
(anything non-zero saturates).
m0 lies in [0, 2^31), so the INT32_MIN * INT32_MIN saturation case of gemmlowp cannot arise.
The tile engine puts two accumulate stages (the K chunks' partial sums) before them; hwsim counts
both as hwsim.timing.WRITEBACK_CYCLES: a chunk's last result is written that many cycles after it
leaves the array.
"""
from __future__ import annotations

from myhdl import Signal, always, always_comb, always_seq, block, intbv

from rtl.array import signed, unsigned

REQUANT_STAGES = 8

SUM_BITS = 34  # acc (<= 32 bits) + bias (32 bits), signed
PROD_BITS = 65  # int32 x [0, 2^31) plus the nudge, signed
MAX_RIGHT = 33  # a right shift past it gives what it gives
HALF = 16  # the partial products split each factor at bit 16: 17 x 17 signed multipliers (an 18 x 18 DSP)


@block
def delay(clk, rst, d, q, stages: int):
    """q is d delayed by `stages` edges (a register chain; reset to 0 when rst is given)."""
    chain = [Signal(d.val) for _ in range(stages - 1)] + [q]
    insts = []
    for i in range(stages):
        insts.append(_reg(clk, rst, d if i == 0 else chain[i - 1], chain[i]))
    return insts


@block
def _reg(clk, rst, d, q):
    if rst is None:
        @always(clk.posedge)
        def plain():
            q.next = d
        return plain

    @always_seq(clk.posedge, reset=rst)
    def with_reset():
        q.next = d
    return with_reset


@block
def requant_pipeline(clk, rst, acc, bias, m0, shift, zero_point, qmin, qmax, valid_in, tag_in,
                     out, valid_out, tag_out):
    """acc: signed (<= 32 bits); bias: signed 32; m0: unsigned 32 (< 2^31); shift: signed 8;
    zero_point/qmin/qmax/out: signed data bits (the layer's, steady while values are in flight);
    valid_in/valid_out: bool; tag_in/tag_out: what travels with a value (its write address).
    out/valid_out/tag_out come REQUANT_STAGES edges after acc/valid_in/tag_in."""
    m0_1, m0_2 = unsigned(len(m0)), unsigned(len(m0))  # m0 rides stages 1-2 (used in 3)
    right1, right4, right6 = unsigned(6), unsigned(6), unsigned(6)  # the right shift, clamped to 33
    left1 = unsigned(6)  # stage 1 holds the left shift (used in 2), clamped to 32
    s1 = signed(SUM_BITS)
    x2 = signed(32)
    pp_ll, pp_lh, pp_hl, pp_hh = (signed(2 * HALF + 2) for _ in range(4))
    neg3 = Signal(bool(0))  # stage 3: the product is negative
    mid4, low4, high4 = signed(2 * HALF + 3), signed(2 * HALF + 3), signed(2 * HALF + 2)
    total5 = signed(PROD_BITS)
    half5 = unsigned(MAX_RIGHT)
    r6 = signed(MAX_RIGHT + 2)
    x7 = signed(33)
    z8 = signed(34)

    @always(clk.posedge)
    def stage1():
        s1.next = acc + bias
        m0_1.next = m0
        if shift < 0:
            right1.next = 0
            if shift < -32:
                left1.next = 32
            else:
                left1.next = -shift
        else:
            left1.next = 0
            if shift > MAX_RIGHT:
                right1.next = MAX_RIGHT
            else:
                right1.next = shift

    @always(clk.posedge)
    def stage2():
        w = intbv(0, min=-(1 << (SUM_BITS + 32)), max=1 << (SUM_BITS + 32))
        w[:] = s1
        w[:] = w << left1
        if w > (1 << 31) - 1:
            x2.next = (1 << 31) - 1
        elif w < -(1 << 31):
            x2.next = -(1 << 31)
        else:
            x2.next = w
        m0_2.next = m0_1

    @always(clk.posedge)
    def stage3():
        xl = intbv(0, min=-(1 << HALF), max=1 << HALF)
        xh = intbv(0, min=-(1 << HALF), max=1 << HALF)
        ml = intbv(0, min=-(1 << HALF), max=1 << HALF)
        mh = intbv(0, min=-(1 << HALF), max=1 << HALF)
        xl[:] = x2[HALF:0]
        xh[:] = x2[32:HALF].signed()
        ml[:] = m0_2[HALF:0]
        mh[:] = m0_2[32:HALF]
        pp_ll.next = xl * ml
        pp_lh.next = xl * mh
        pp_hl.next = xh * ml
        pp_hh.next = xh * mh
        neg3.next = x2 < 0 and m0_2 != 0

    @always(clk.posedge)
    def stage4():
        mid4.next = pp_lh + pp_hl
        if neg3:
            low4.next = pp_ll + (1 - (1 << 30))
        else:
            low4.next = pp_ll + (1 << 30)
        high4.next = pp_hh

    @always(clk.posedge)
    def stage5():
        t = intbv(0, min=-(1 << (PROD_BITS - 1)), max=1 << (PROD_BITS - 1))
        t[:] = high4
        t[:] = (t << (2 * HALF)) + (mid4 << HALF)
        total5.next = t + low4
        if right4 == 0:
            half5.next = 0
        else:
            half5.next = 1 << (right4 - 1)

    @always(clk.posedge)
    def stage6():
        t = intbv(0, min=-(1 << (PROD_BITS - 1)), max=1 << (PROD_BITS - 1))
        if total5 < 0:
            t[:] = total5 + ((1 << 31) - 1)
        else:
            t[:] = total5
        t[:] = t >> 31  # gemmlowp's high word, truncated toward zero
        if t < 0 and half5 != 0:
            r6.next = t + half5 - 1
        else:
            r6.next = t + half5

    @always(clk.posedge)
    def stage7():
        x7.next = r6 >> right6

    @always(clk.posedge)
    def stage8():
        z8.next = x7 + zero_point

    @always_comb
    def clamp():
        if z8 > qmax:
            out.next = qmax
        elif z8 < qmin:
            out.next = qmin
        else:
            out.next = z8

    return (stage1, stage2, stage3, stage4, stage5, stage6, stage7, stage8, clamp,
            delay(clk, rst, valid_in, valid_out, REQUANT_STAGES), delay(clk, None, tag_in, tag_out, REQUANT_STAGES),
            delay(clk, None, right1, right4, 3), delay(clk, None, right4, right6, 2))
