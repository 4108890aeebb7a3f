"""Hardware im2col of the weight-stationary engine: the raw input tile in banked on-chip memory and an
address generator that feeds the array one A word (R reduction values of one output pixel) per cycle.
The expanded matrix never exists.

The raw tile (rtl.layout.raw_words writes it): each K chunk's channels of every input row, stored
NHWC (a row is in_w pixels x Cc channels, contiguous bytes), in words of Wb = the next power of two
>= R bytes. Row r of an image lies in bank (Kb + r) mod Kb at slot (Kb + r) / Kb (Kb banks, a power
of two: slot 0 holds nothing, so the top padding rows r in [-Kb, 0) have non-negative addresses), at
bank word L = image base + slot * pitch + byte / Wb. Each bank is two memories, even and odd words, so
any run of R <= Wb bytes (two neighbouring words) is one read of each.

The reduction order is (ky, kx, c) within a K chunk (c fastest; rtl.layout permutes B's rows the
same way): the R values of one A word are a few runs of contiguous bytes, one run per kernel row ky,
each in a different input row and so (kh <= Kb) in a different bank: every cycle reads each bank at
most once, whatever the stride, padding or channel count. Positions outside the image read the input
zero point (ONNX's padding of a quantized conv). Dilated convs are refused by the host.

Per fold, a walker steps k = kt*R .. kt*R + R-1 during the weight load (one lane per cycle) and writes
each lane's (ky, kx, kx*Cc + c, k < K) into a shadow table; the fold's first pixel copies it to the
active table. Per pixel (one issue per cycle) the pipeline is IM2COL_STAGES registers deep:

  1  per lane: bank and slot carry of row gl + ky, image row iy + ky and column ix + kx (inside the
     image?), byte offset bxc + kx*Cc + c
  2  per lane: its bank word L
  3  per bank: the word of its first live lane (the run's lowest byte) -> even/odd read addresses
  4  the banks' block-RAM read
  5  its output register
  6  per lane: the byte at (bank, L parity, byte mod Wb), or the zero point -> the array's row input
"""
from __future__ import annotations

from myhdl import ConcatSignal, Signal, always, always_comb, always_seq, block, intbv

from rtl.array import signed, unsigned
from rtl.params import COUNT_BITS, EngineParams, word_bytes
from rtl.requant import delay

IM2COL_STAGES = 6
POS_BITS = COUNT_BITS + 2  # signed pixel/byte positions: a padding position may lie before 0


def spos() -> Signal:
    return signed(POS_BITS)


@block
def _walker(clk, rst, step, reset, lane, cfg_k, cfg_cc, cfg_kw, tables, R: int):
    """Fills the shadow table: at each step, lane `lane` takes (ky, kx, kx*Cc + c, k < K) of the next k."""
    sh_ky, sh_kx, sh_kxc, sh_kv = tables
    wk, wky, wkx, wc, wkxc = unsigned(COUNT_BITS), unsigned(8), unsigned(COUNT_BITS), unsigned(COUNT_BITS), \
        unsigned(COUNT_BITS)
    ky, kx, c, kxc, k = unsigned(8), unsigned(COUNT_BITS), unsigned(COUNT_BITS), unsigned(COUNT_BITS), \
        unsigned(COUNT_BITS)

    @always_comb
    def now():  # the walker's k at this step (a reset restarts at k = 0)
        if reset:
            k.next = 0
            ky.next = 0
            kx.next = 0
            c.next = 0
            kxc.next = 0
        else:
            k.next = wk
            ky.next = wky
            kx.next = wkx
            c.next = wc
            kxc.next = wkxc

    @always_seq(clk.posedge, reset=rst)
    def walk():
        if step:
            wk.next = k + 1
            if c == cfg_cc - 1:
                wc.next = 0
                if kx == cfg_kw - 1:
                    wkx.next = 0
                    wky.next = ky + 1
                    wkxc.next = 0
                else:
                    wkx.next = kx + 1
                    wkxc.next = kxc + 1
                    wky.next = ky
            else:
                wc.next = c + 1
                wkxc.next = kxc + 1
                wkx.next = kx
                wky.next = ky

    insts = [now, walk]
    for i in range(R):
        insts.append(_table_lane(clk, step, lane, i, ky, kx, kxc, k, cfg_k, sh_ky[i], sh_kx[i], sh_kxc[i], sh_kv[i]))
    return insts


@block
def _table_lane(clk, step, lane, i: int, ky, kx, kxc, k, cfg_k, q_ky, q_kx, q_kxc, q_kv):
    @always(clk.posedge)
    def write():
        if step and lane == i:
            q_ky.next = ky
            q_kx.next = kx
            q_kxc.next = kxc
            q_kv.next = k < cfg_k

    return write


@block
def _activate(clk, go, src, dst):
    @always(clk.posedge)
    def copy():
        if go:
            dst.next = src

    return copy


@block
def _pixel(clk, rst, iss, first, cfg, cur, lk: int, Kb: int):
    """The issued pixel's state: the run's start pixel at a fold's first issue, else the one after the
    last issued. cur = (ox, oy, bx, bxc, iyb, gmod, rowaddr, img) of this cycle's issue."""
    (cfg_ox0, cfg_oy0, cfg_bx0, cfg_bxc0, cfg_iyb0, cfg_gmod0, cfg_ra0, cfg_img0, cfg_out_w, cfg_out_h, cfg_sw,
     cfg_swc, cfg_sh, cfg_bx_row, cfg_bxc_row, cfg_iyb_img, cfg_gmod_img, cfg_ra_img, cfg_img_words, cfg_pitch) = cfg
    ox, oy, bx, bxc, iyb, gmod, ra, img = cur
    n_ox, n_oy, n_ra, n_img = (unsigned(COUNT_BITS) for _ in range(4))
    n_bx, n_bxc, n_iyb = spos(), spos(), spos()
    n_gmod = unsigned(lk + 1)

    @always_comb
    def select():
        if first:
            ox.next = cfg_ox0
            oy.next = cfg_oy0
            bx.next = cfg_bx0
            bxc.next = cfg_bxc0
            iyb.next = cfg_iyb0
            gmod.next = cfg_gmod0
            ra.next = cfg_ra0
            img.next = cfg_img0
        else:
            ox.next = n_ox
            oy.next = n_oy
            bx.next = n_bx
            bxc.next = n_bxc
            iyb.next = n_iyb
            gmod.next = n_gmod
            ra.next = n_ra
            img.next = n_img

    @always_seq(clk.posedge, reset=rst)
    def advance():
        if iss:
            if ox == cfg_out_w - 1:
                n_ox.next = 0
                n_bx.next = cfg_bx_row
                n_bxc.next = cfg_bxc_row
                if oy == cfg_out_h - 1:
                    n_oy.next = 0
                    n_iyb.next = cfg_iyb_img
                    n_gmod.next = cfg_gmod_img
                    n_ra.next = cfg_ra_img
                    n_img.next = img + cfg_img_words
                else:
                    n_oy.next = oy + 1
                    n_iyb.next = iyb + cfg_sh
                    n_img.next = img
                    if gmod + cfg_sh >= Kb:
                        n_gmod.next = gmod + cfg_sh - Kb
                        n_ra.next = ra + cfg_pitch
                    else:
                        n_gmod.next = gmod + cfg_sh
                        n_ra.next = ra
            else:
                n_ox.next = ox + 1
                n_bx.next = bx + cfg_sw
                n_bxc.next = bxc + cfg_swc
                n_oy.next = oy
                n_iyb.next = iyb
                n_gmod.next = gmod
                n_ra.next = ra
                n_img.next = img

    return select, advance


@block
def _lane_front(clk, cur, ky, kx, kxc, kv, cfg_in_h, cfg_in_w, cfg_pitch, lk: int, lw: int, Kb: int,
                o_bank, o_L, o_off, o_ok, o_kv):
    """Stages 1-2 of one lane: its bank, bank word, byte within the word, inside-the-image flag."""
    _, _, bx, bxc, iyb, gmod, ra, img = cur
    bank1, carry1 = unsigned(lk), Signal(bool(0))
    byte1 = spos()
    ok1, kv1 = Signal(bool(0)), Signal(bool(0))
    base1 = unsigned(COUNT_BITS)
    t = unsigned(lk + 1)
    iy, ix = spos(), spos()

    @always_comb
    def sums():
        t.next = gmod + ky
        iy.next = iyb + ky
        ix.next = bx + kx

    @always(clk.posedge)
    def stage1():
        bank1.next = t[lk:]
        carry1.next = t >= Kb
        byte1.next = bxc + kxc
        ok1.next = kv and iy >= 0 and iy < cfg_in_h and ix >= 0 and ix < cfg_in_w
        kv1.next = kv
        base1.next = img + ra

    @always(clk.posedge)
    def stage2():
        if carry1:
            o_L.next = base1 + cfg_pitch + (byte1 >> lw)
        else:
            o_L.next = base1 + (byte1 >> lw)
        o_bank.next = bank1
        o_off.next = byte1[lw:]
        o_ok.next = ok1
        o_kv.next = kv1

    return sums, stage1, stage2


@block
def _pick(hit, value, rest, q):
    """q = value if hit else rest (one link of a bank's priority chain over the lanes)."""

    @always_comb
    def comb():
        if hit:
            q.next = value
        else:
            q.next = rest

    return comb


@block
def _hit(bank, kv, b: int, q):
    @always_comb
    def comb():
        q.next = kv and bank == b

    return comb


@block
def _bank(clk, ld_write, ld_bank, ld_L, ld_word, lead, mem_e, mem_o, q_e, q_o, b: int):
    """Bank b: its even/odd word memories, written from the load port, read at the lead lane's word
    (stage 3 registers the addresses, 4 reads, 5 is the block RAM's output register)."""
    addr_e, addr_o = unsigned(COUNT_BITS), unsigned(COUNT_BITS)
    w_e, w_o = Signal(q_e.val), Signal(q_o.val)

    @always(clk.posedge)
    def write():
        if ld_write and ld_bank == b:
            if ld_L[0]:
                mem_o[ld_L >> 1].next = ld_word
            else:
                mem_e[ld_L >> 1].next = ld_word

    @always(clk.posedge)
    def stage3():
        addr_e.next = (lead + 1) >> 1
        addr_o.next = lead >> 1

    @always(clk.posedge)
    def stage4():
        w_e.next = mem_e[addr_e]
        w_o.next = mem_o[addr_o]

    @always(clk.posedge)
    def stage5():
        q_e.next = w_e
        q_o.next = w_o

    return write, stage3, stage4, stage5


@block
def _lane_back(clk, words, sel, off, ok, zp, q, lw: int, D: int):
    """Stage 6 of one lane: the byte `off` of memory word `sel` (bank * 2 + L parity), or the zero point."""
    Wbits = D << lw

    @always(clk.posedge)
    def stage6():
        if ok:
            base = (sel * Wbits) + (off * D)
            v = intbv(0)[D:]
            for j in range(D):
                v[j] = words[base + j]
            q.next = v.signed()
        else:
            q.next = zp

    return stage6


@block
def im2col_ws(clk, rst, ld_write, ld_addr, ld_data, walk_step, walk_reset, walk_lane, iss, iss_first, cfg_k, cfg_cc,
              cfg_kw, cfg_in_h, cfg_in_w, cfg_in_zp, pixel_cfg, a_rows, params: EngineParams):
    """The generator: raw-memory writes (ld_write: ld_addr = bank * 2 * raw_depth + L), the walker, and
    per issue (iss; iss_first: a fold's first pixel) the A word IM2COL_STAGES cycles later on a_rows."""
    ap = params.array
    R, D = ap.rows, ap.data_bits
    Kb, depth = params.banks, params.raw_depth
    lk = (Kb - 1).bit_length()
    Wb = word_bytes(R)
    lw = (Wb - 1).bit_length()
    ld_depth_bits = (2 * depth - 1).bit_length()
    insts = []

    # ---- walker and lane tables --------------------------------------------------------------------
    shadow = ([unsigned(8) for _ in range(R)], [unsigned(COUNT_BITS) for _ in range(R)],
              [unsigned(COUNT_BITS) for _ in range(R)], [Signal(bool(0)) for _ in range(R)])
    active = ([unsigned(8) for _ in range(R)], [unsigned(COUNT_BITS) for _ in range(R)],
              [unsigned(COUNT_BITS) for _ in range(R)], [Signal(bool(0)) for _ in range(R)])
    insts.append(_walker(clk, rst, walk_step, walk_reset, walk_lane, cfg_k, cfg_cc, cfg_kw, shadow, R))
    for field in range(4):
        for i in range(R):
            insts.append(_activate(clk, iss_first, shadow[field][i], active[field][i]))
    # the first pixel of a fold reads the table it fills: the copy lands with the issue, so stage 1 of a
    # fold's first pixel takes the shadow values directly
    table = ([unsigned(8) for _ in range(R)], [unsigned(COUNT_BITS) for _ in range(R)],
             [unsigned(COUNT_BITS) for _ in range(R)], [Signal(bool(0)) for _ in range(R)])
    for field in range(4):
        for i in range(R):
            insts.append(_pick(iss_first, shadow[field][i], active[field][i], table[field][i]))

    # ---- pixel state -------------------------------------------------------------------------------
    cur = (unsigned(COUNT_BITS), unsigned(COUNT_BITS), spos(), spos(), spos(), unsigned(lk + 1),
           unsigned(COUNT_BITS), unsigned(COUNT_BITS))
    cfg_pitch = pixel_cfg[-1]
    insts.append(_pixel(clk, rst, iss, iss_first, pixel_cfg, cur, lk, Kb))

    # ---- lanes, stages 1-2 -------------------------------------------------------------------------
    banks = [unsigned(lk) for _ in range(R)]
    words_L = [unsigned(COUNT_BITS) for _ in range(R)]
    offs = [unsigned(lw) if lw else unsigned(1) for _ in range(R)]
    oks = [Signal(bool(0)) for _ in range(R)]
    kvs = [Signal(bool(0)) for _ in range(R)]
    for i in range(R):
        insts.append(_lane_front(clk, cur, table[0][i], table[1][i], table[2][i], table[3][i], cfg_in_h, cfg_in_w,
                                 cfg_pitch, lk, lw, Kb, banks[i], words_L[i], offs[i], oks[i], kvs[i]))

    # ---- banks: each reads at its first live lane's word (stage 3), memories (4-5) ---------------------
    ld_bank = unsigned(max(1, lk))
    ld_L = unsigned(ld_depth_bits)
    ld_word = unsigned(Wb * D)

    @always_comb
    def ld_split():
        ld_bank.next = ld_addr >> ld_depth_bits
        ld_L.next = ld_addr[ld_depth_bits:]
        ld_word.next = ld_data[Wb * D:]

    insts.append(ld_split)
    q_words = []
    for b in range(Kb):
        chain = [unsigned(COUNT_BITS) for _ in range(R)] + [unsigned(COUNT_BITS)]  # chain[R]: no lane (0)
        for i in reversed(range(R)):
            hit = Signal(bool(0))
            insts.append(_hit(banks[i], kvs[i], b, hit))
            insts.append(_pick(hit, words_L[i], chain[i + 1], chain[i]))
        mem_e = [unsigned(Wb * D) for _ in range(depth)]
        mem_o = [unsigned(Wb * D) for _ in range(depth)]
        q_e, q_o = unsigned(Wb * D), unsigned(Wb * D)
        insts.append(_bank(clk, ld_write, ld_bank, ld_L, ld_word, chain[0], mem_e, mem_o, q_e, q_o, b))
        q_words += [q_e, q_o]
    all_words = ConcatSignal(*reversed(q_words))  # word s = bank s // 2, parity s % 2, in bits [s*Wb*D, ...)

    # ---- lanes, stage 6 ----------------------------------------------------------------------------
    for i in range(R):
        sel3 = unsigned(lk + 1)
        sel = unsigned(lk + 1)
        off, ok = Signal(offs[i].val), Signal(bool(0))
        insts.append(_select_index(clk, banks[i], words_L[i], sel3))
        # stage 3 registered sel3 beside the bank addresses; 4 and 5 carry it and the byte and flag along
        insts += [delay(clk, rst, sel3, sel, 2), delay(clk, rst, offs[i], off, 3), delay(clk, rst, oks[i], ok, 3)]
        insts.append(_lane_back(clk, all_words, sel, off, ok, cfg_in_zp, a_rows[i], lw, D))
    return insts


@block
def _select_index(clk, bank, L, q):
    @always(clk.posedge)
    def r():
        q.next = (bank << 1) | L[0]

    return r
