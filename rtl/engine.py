"""MyHDL tile engine: runs a GEMM layer, or one chunk of the tiler's schedule of it, free from preloaded
memories; K chunks accumulate in an accumulator memory and the last one requantizes in a pipeline on
the drain path.

Interface (all synchronous to clk, active-high synchronous reset):

  load   ld_valid/ld_ready + ld_sel, ld_addr, ld_data: write one memory word per
         handshake. ld_sel 0: A word (R lanes, lane i = row i), 1: B word (C lanes),
         2: channel parameters {shift[8], m0[32], bias[32]} (bias in the low bits).
         ld_ready is low while the engine runs.
  config (held steady during a run; rtl.layout.words / chunk_runs fill them)
         cfg_m/k/n/groups: the run's GEMM (a chunk: its m, k and n, one group);
         cfg_row_tiles/col_tiles: ceil(m/R), ceil(n/C);
         cfg_kstride: B words from one column tile to the next (the layer's K);
         cfg_astride: A words from one row tile to the next (OS: the layer's K; WS: its M);
         cfg_a_start/b_start: the first A/B word (tile and K-chunk offsets folded in);
         cfg_o_start/ostride: the first result word and the words per column tile (the layer's M);
         cfg_p_start: the first output channel's parameter word;
         cfg_first/last: the run is the first / last K chunk of its output tile (first: ignore
         the accumulator memory; last: requantize into the result banks, else add into it);
         cfg_beats: result words to stream after the run (0 for all but the layer's last run);
         cfg_zp/qmin/qmax: the output's zero point and clamp.
  run    a `start` pulse; `busy` while running; `done` afterwards; `cycles` counts the
         edges from the first operand entering the array to the write of the last result
         (WRITEBACK_STAGES after it leaves the array): the window hwsim calls a chunk's compute
         cycles. Before it lie read_latency(params) cycles (OS: 2, the operand memories' block-RAM
         read and output register; WS: IM2COL_STAGES = 6), so start -> done takes cycles + that.
  result out_valid/out_ready + out_data (C int8 lanes) + out_last: one cycle after `done`
         the engine streams cfg_beats words from word 0: word (g, ct, m) holds channels
         g*N + ct*C + j (lane j) of output row m.
  debug  obs_write: the per-column result-write strobes, for the cycle-exact monitor.

Memory layout (written by the host, rtl.layout). OS: A word (g*row_tiles + rt)*K + t holds
A[g][rt*R + i, t] in lane i (the host's im2col); B word (g*col_tiles + ct)*K + t holds B[g][t, ct*C + j]
in lane j. WS: no A memory: the layer's raw input sits in the banked memories of the hardware im2col
(rtl.im2col; ld_sel 0 writes them) and B's rows are in that unit's (ky, kx, c) order, per K chunk.
Lanes past the matrix edge are zero. Result and accumulator words (g, ct, m) as streamed.

Schedule: hwsim's fold schedule (hwsim.cycle states it register by register). Folds run in the
order of hwsim.mapping.FoldPlan.tiles (group, column tile, row tile innermost), one every
P = max(T, R) cycles (T: k for OS, m for WS).
  OS  fold f issues operand t at cycle f*P + t with `first` at t = 0 and `last` at t = k-1.
  WS  fold f loads its weight tile at cycles f*P + c (c < R: B word of K row R-1-c of the tile, rows
      past k read as zeros, `cap` on the last; the im2col walker steps lane c of the fold's table) and
      issues pixel m at cycle R + f*P + m (`first` at m = 0), its A word reaching the array
      IM2COL_STAGES later (the weights are delayed to match); its sums add into the accumulator memory
      (first K tile: none; last: requantized).
"""
from __future__ import annotations

from myhdl import ResetSignal, Signal, always, always_comb, always_seq, block

from hwsim.timing import WRITEBACK_CYCLES
from rtl.array import pack, row_bits, signed, systolic_array, unsigned, ws_array
from rtl.im2col import IM2COL_STAGES, im2col_ws, spos
from rtl.layout import PIXEL_CONFIG_PORTS, SIGNED_CONFIG_PORTS, WS_CONFIG_PORTS
from rtl.params import BIAS_BITS, COUNT_BITS, M0_BITS, SHIFT_BITS, EngineParams
from rtl.requant import REQUANT_STAGES, delay, requant_pipeline

ACCUMULATE_STAGES = 2  # the accumulator memory's read and output register
WRITEBACK_STAGES = ACCUMULATE_STAGES + REQUANT_STAGES
assert WRITEBACK_STAGES == WRITEBACK_CYCLES, "the hardware and hwsim's timing must count the same pipeline"
READ_LATENCY_CYCLES = 2  # start -> first operand at the array edge: the block-RAM read and its output register


def read_latency(params) -> int:
    """Cycles from a run's start to its first operand at the array edge: OS the operand memories' read
    (2); WS the hardware im2col's pipeline (rtl.im2col.IM2COL_STAGES), the weights delayed to match."""
    ap = params.array if isinstance(params, EngineParams) else params
    return IM2COL_STAGES if ap.ws else READ_LATENCY_CYCLES


def _count() -> Signal:
    return unsigned(COUNT_BITS)


@block
def _memory_read(clk, mem, addr, q, enable):
    """A block RAM's read port with its output register: q is mem[addr] two edges after an enabled
    read (words read while not issuing travel with valid = 0 and are ignored)."""
    word = Signal(q.val)

    @always(clk.posedge)
    def read():
        if enable:
            word.next = mem[addr]

    @always(clk.posedge)
    def out_reg():  # a BRAM's output register (ECP5 DP16KD OUTREG): the slow clock-to-out ends here
        q.next = word

    return read, out_reg


@block
def _flags(clk, rst, d_valid, d_first, d_last, q_valid, q_first, q_last, latency: int):
    """The issue flags, delayed to travel with the operand words out of the read ports."""
    return [delay(clk, rst, d, q, latency) for d, q in ((d_valid, q_valid), (d_first, q_first), (d_last, q_last))]


@block
def _lane(word, lo: int, q):
    hi = lo + len(q)

    @always_comb
    def comb():
        q.next = word[hi:lo].signed()

    return comb


@block
def _column(clk, rst, j: int, acc, valid, row, load, prev_meta, meta, cfg_m, cfg_n, cfg_first, cfg_last, bias_mem,
            m0_mem, shift_mem, zp, qmin, qmax, psums, bank, rd_addr, rd_data, write, count, ws: bool):
    """Column j's drain bookkeeping, requant pipeline and result bank.

    meta = (mbase, ofs, nin, nb, last, kfirst, klast, pofs) of the fold draining in this column: taken
    from column j-1 (one cycle ahead on the same schedule) at this column's load (OS: the drain
    chain's load; WS: one cycle before the fold's first sum). A result leaves the array with its bank
    address: OS ofs + mbase + row; WS ofs + count, count the fold's sums so far. kfirst/klast: the
    fold is its output's first/last K tile (OS: always both). The accumulator memory holds the run's
    output tile only: its word is pofs (the fold's column tile within the run, times cfg_m) plus the
    row (OS mbase + row, WS count). The two accumulate stages (the accumulator
    memory's read and its output register) add the partial sum
    of the earlier K chunks (its `psums` word, unless cfg_first); on a chunk that is not the
    last the sum goes back to `psums`, on the last it passes the REQUANT_STAGES of the
    requant pipeline and `write` strobes as the int8 value lands in the bank."""
    mbase, ofs, nin, nb, last, kfirst, klast, pofs = meta
    p_mbase, p_ofs, p_nin, p_nb, p_last, p_kfirst, p_klast, p_pofs = prev_meta
    step = 0 if j == 0 else 1  # column 0 takes the drain counters as they are
    addr, waddr, addr0, addr1 = _count(), _count(), _count(), _count()
    paddr, paddr0, paddr1 = _count(), _count(), _count()
    live, live0, live1, final = Signal(bool(0)), Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    v0, v1, old, old1, total = (signed(len(acc)) for _ in range(5))
    first0, first1, last0, last1 = (Signal(bool(0)) for _ in range(4))
    bias0, m0_0, shift0 = signed(BIAS_BITS), unsigned(M0_BITS), signed(SHIFT_BITS)  # the params, riding along
    bias1, m0_1, shift1 = signed(BIAS_BITS), unsigned(M0_BITS), signed(SHIFT_BITS)
    bias = signed(BIAS_BITS)
    m0 = unsigned(M0_BITS)
    shift = signed(SHIFT_BITS)
    q = signed(len(rd_data))

    @always_seq(clk.posedge, reset=rst)
    def take():
        if load:
            mbase.next = p_mbase
            ofs.next = p_ofs
            nin.next = p_nin + step
            nb.next = p_nb + step
            last.next = p_last
            kfirst.next = p_kfirst
            klast.next = p_klast
            pofs.next = p_pofs

    @always_seq(clk.posedge, reset=rst)
    def counting():  # WS: the fold's sums leave one per cycle, m = 0 first
        if load:
            count.next = 0
        elif valid:
            count.next = count + 1

    @always(clk.posedge)
    def params():  # registered read of this column's channel parameters, at the load that selects them
        if load:
            bias.next = bias_mem[p_nb + step]
            m0.next = m0_mem[p_nb + step]
            shift.next = shift_mem[p_nb + step]

    @always_comb
    def where_os():
        addr.next = ofs + mbase + row
        paddr.next = pofs + mbase + row
        if valid and mbase + row < cfg_m and nin < cfg_n:
            live.next = 1
        else:
            live.next = 0

    @always_comb
    def where_ws():
        addr.next = ofs + count
        paddr.next = pofs + count
        if valid and nin < cfg_n:
            live.next = 1
        else:
            live.next = 0

    @always_seq(clk.posedge, reset=rst)
    def accumulate_valid():
        live0.next = live
        live1.next = live0

    @always(clk.posedge)
    def accumulate():  # two stages: the psums block RAM's read and its output register, the value beside
        v0.next = acc
        addr0.next = addr
        paddr0.next = paddr
        old.next = psums[paddr]
        bias0.next = bias
        m0_0.next = m0
        shift0.next = shift
        first0.next = kfirst
        last0.next = klast
        first1.next = first0
        last1.next = last0
        v1.next = v0
        addr1.next = addr0
        paddr1.next = paddr0
        old1.next = old
        bias1.next = bias0
        m0_1.next = m0_0
        shift1.next = shift0

    @always_comb
    def add():
        if cfg_first and first1:
            total.next = v1
        else:
            total.next = v1 + old1
        final.next = live1 and cfg_last and last1

    @always(clk.posedge)
    def keep():  # a chunk (WS: a K tile) that is not the last leaves its partial sums for the next
        if live1 and not (cfg_last and last1):
            psums[paddr1].next = total

    @always(clk.posedge)
    def store():
        if write:
            bank[waddr].next = q

    @always(clk.posedge)
    def read():
        rd_data.next = bank[rd_addr]

    rq = requant_pipeline(clk, rst, total, bias1, m0_1, shift1, zp, qmin, qmax, final, addr1, q, write, waddr)
    where = where_ws if ws else where_os
    return take, counting, where, params, accumulate_valid, accumulate, add, keep, store, read, rq


@block
def tile_engine(clk, rst, ld_valid, ld_ready, ld_sel, ld_addr, ld_data,
                cfg_m, cfg_k, cfg_n, cfg_groups, cfg_row_tiles, cfg_col_tiles, cfg_zp, cfg_qmin, cfg_qmax,
                cfg_kstride, cfg_astride, cfg_a_start, cfg_b_start, cfg_o_start, cfg_ostride, cfg_p_start, cfg_first,
                cfg_last, cfg_beats, start, busy, done, cycles, out_valid, out_ready, out_data, out_last, obs_write,
                params: EngineParams,
                cfg_cc=None, cfg_kw=None, cfg_in_h=None, cfg_in_w=None, cfg_in_zp=None, cfg_ox0=None, cfg_oy0=None,
                cfg_bx0=None, cfg_bxc0=None, cfg_iyb0=None, cfg_gmod0=None, cfg_ra0=None, cfg_img0=None,
                cfg_out_w=None, cfg_out_h=None, cfg_sw=None, cfg_swc=None, cfg_sh=None, cfg_bx_row=None,
                cfg_bxc_row=None, cfg_iyb_img=None, cfg_gmod_img=None, cfg_ra_img=None, cfg_img_words=None,
                cfg_pitch=None, cfg_gstride=None):
    """The cfg_* ports after `params`: a WS engine's hardware im2col (rtl.layout.WS_CONFIG_PORTS and
    PIXEL_CONFIG_PORTS); None in an OS engine."""
    ws_cfg = {name: value for name, value in locals().items() if name in WS_CONFIG_PORTS + PIXEL_CONFIG_PORTS}
    ap = params.array
    R, C, D, W = ap.rows, ap.cols, ap.data_bits, ap.acc_bits
    ws = ap.ws
    latency = read_latency(params)
    a_mem = [unsigned(R * D) for _ in range(params.a_depth)]
    b_mem = [unsigned(C * D) for _ in range(params.b_depth)]
    bias_mem = [signed(BIAS_BITS) for _ in range(params.param_depth)]
    m0_mem = [unsigned(M0_BITS) for _ in range(params.param_depth)]
    shift_mem = [signed(SHIFT_BITS) for _ in range(params.param_depth)]

    # ---- load port -------------------------------------------------------------------------
    running = Signal(bool(0))

    @always_comb
    def ready():
        ld_ready.next = not running
        busy.next = running

    @always(clk.posedge)
    def load():
        if ld_valid and not running:
            if ld_sel == 1:
                b_mem[ld_addr].next = ld_data[C * D:]
            elif ld_sel == 2:
                bias_mem[ld_addr].next = ld_data[BIAS_BITS:].signed()
                m0_mem[ld_addr].next = ld_data[BIAS_BITS + M0_BITS:BIAS_BITS]
                shift_mem[ld_addr].next = ld_data[BIAS_BITS + M0_BITS + SHIFT_BITS:BIAS_BITS + M0_BITS].signed()

    # ---- issue controller ---------------------------------------------------------------------
    # the stream loop (OS: A and B operand t of the fold; WS: A word m) over folds (g, ct, rt innermost)
    issuing = Signal(bool(0))
    p = _count()
    rt, ct, g = _count(), _count(), _count()
    a_gbase, a_base, b_base = _count(), _count(), _count()
    # the run's loop bounds minus one, registered at start: the counters compare against registers
    k_last, period_last, rt_last, ct_last, g_last = _count(), _count(), _count(), _count(), _count()
    a_addr, b_addr = _count(), _count()
    iss_valid, iss_first, iss_last = Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    in_valid, in_first, in_last = Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    a_word, b_word = unsigned(R * D), unsigned(C * D)
    # WS: the load loop, R cycles ahead of the stream loop: the weight tile of each fold, K row R-1-c at c
    lead = _count()
    c_ph, brow, b_rt, b_ct, b_g = _count(), _count(), _count(), _count(), _count()
    loading = Signal(bool(0))
    ld_iss, ld_cap, s_ok, s_cap = Signal(bool(0)), Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    ld_step = Signal(bool(0))  # WS: a load-loop cycle that walks one lane of the fold's im2col table

    @always_comb
    def issue_os():
        a_addr.next = a_base + p
        b_addr.next = b_base + p
        if issuing and p < cfg_k:
            iss_valid.next = 1
            iss_first.next = p == 0
            iss_last.next = p == k_last
        else:
            iss_valid.next = 0
            iss_first.next = 0
            iss_last.next = 0

    @always_comb
    def issue_ws():
        a_addr.next = a_base + p
        if issuing and p < cfg_m:
            iss_valid.next = 1
            iss_first.next = p == 0
        else:
            iss_valid.next = 0
            iss_first.next = 0
        iss_last.next = 0
        if loading and c_ph < R and brow + (R - 1) - c_ph < cfg_k:
            ld_iss.next = 1
            b_addr.next = b_base + brow + (R - 1) - c_ph
        else:
            ld_iss.next = 0
            b_addr.next = b_base
        ld_cap.next = loading and c_ph == R - 1
        ld_step.next = loading and c_ph < R

    insts = [ready, issue_ws if ws else issue_os,
             _flags(clk, rst, iss_valid, iss_first, iss_last, in_valid, in_first, in_last, latency)]
    a_rows = [signed(D) for _ in range(R)]
    b_cols = [signed(D) for _ in range(C)]
    if ws:
        # A through the hardware im2col (IM2COL_STAGES); the weight loads wait IM2COL_STAGES - 2 cycles so
        # both reach the array as the schedule says. Weight rows past the fold's K read as zeros.
        lag = IM2COL_STAGES - READ_LATENCY_CYCLES
        b_addr_l, ld_iss_l, ld_cap_l = _count(), Signal(bool(0)), Signal(bool(0))
        walk_reset, ld_write = Signal(bool(0)), Signal(bool(0))

        @always_comb
        def walk():
            walk_reset.next = b_rt == 0 and c_ph == 0
            ld_write.next = ld_valid and not running and ld_sel == 0

        # a run over several groups (a whole grouped layer) reads group g's block at cfg_gstride * g further on
        goff, img0 = _count(), _count()
        img_start, gstride = ws_cfg["cfg_img0"], ws_cfg["cfg_gstride"]

        @always_comb
        def group_base():
            img0.next = img_start + goff

        @always_seq(clk.posedge, reset=rst)
        def group_step():
            if start and not running:
                goff.next = 0
            elif issuing and p == period_last and rt == rt_last and ct == ct_last and g != g_last:
                goff.next = goff + gstride

        pixel_cfg = tuple(img0 if name == "cfg_img0" else ws_cfg[name] for name in PIXEL_CONFIG_PORTS)
        insts += [group_base, group_step]
        insts += [walk, load, delay(clk, rst, b_addr, b_addr_l, lag), delay(clk, rst, ld_iss, ld_iss_l, lag),
                  delay(clk, rst, ld_cap, ld_cap_l, lag),
                  _memory_read(clk, b_mem, b_addr_l, b_word, ld_iss_l),
                  delay(clk, rst, ld_iss_l, s_ok, READ_LATENCY_CYCLES),
                  delay(clk, rst, ld_cap_l, s_cap, READ_LATENCY_CYCLES),
                  im2col_ws(clk, rst, ld_write, ld_addr, ld_data, ld_step, walk_reset, c_ph, iss_valid, iss_first,
                            cfg_k, ws_cfg["cfg_cc"], ws_cfg["cfg_kw"], ws_cfg["cfg_in_h"], ws_cfg["cfg_in_w"],
                            ws_cfg["cfg_in_zp"], pixel_cfg, a_rows, params)]
        insts += [_masked_lane(b_word, j * D, s_ok, b_cols[j]) for j in range(C)]
    else:
        @always(clk.posedge)
        def load_a():
            if ld_valid and not running and ld_sel == 0:
                a_mem[ld_addr].next = ld_data[R * D:]

        insts += [load, load_a, _memory_read(clk, a_mem, a_addr, a_word, iss_valid),
                  _memory_read(clk, b_mem, b_addr, b_word, iss_valid)]
        insts += [_lane(a_word, i * D, a_rows[i]) for i in range(R)]
        insts += [_lane(b_word, j * D, b_cols[j]) for j in range(C)]

    # ---- the array ----------------------------------------------------------------------------
    accs = [signed(W) for _ in range(C)]
    valids = [Signal(bool(0)) for _ in range(C)]
    rows = [unsigned(row_bits(R)) for _ in range(C)]
    loads: list = []
    if ws:
        loads = [Signal(bool(0)) for _ in range(C)]
        insts.append(ws_array(clk, rst, a_rows, b_cols, in_valid, in_first, s_cap, accs, valids, loads, ap))
    else:
        insts.append(systolic_array(clk, rst, a_rows, b_cols, in_valid, in_first, in_last, accs, valids, rows, ap,
                                    loads=loads))

    # ---- drain bookkeeping for column 0 (the fold order of the issue side) ---------------------
    d_rt, d_ct, d_g = _count(), _count(), _count()
    d_mbase, d_ofs, d_nin, d_nb, d_gn = _count(), _count(), _count(), _count(), _count()
    d_last, d_kfirst, d_klast = Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    d_pofs = _count()

    @always_comb
    def drain_last():
        d_last.next = d_rt == rt_last and d_ct == ct_last and d_g == g_last
        if ws:
            d_kfirst.next = d_rt == 0
            d_klast.next = d_rt == rt_last
        else:
            d_kfirst.next = 1
            d_klast.next = 1

    metas = [(_count(), _count(), _count(), _count(), Signal(bool(0)), Signal(bool(0)), Signal(bool(0)), _count())
             for _ in range(C)]
    counts = [_count() for _ in range(C)]
    rd_addr = _count()
    rd_data = [signed(D) for _ in range(C)]
    writes = [Signal(bool(0)) for _ in range(C)]
    banks = [[signed(D) for _ in range(params.out_depth)] for _ in range(C)]
    psums = [[signed(W) for _ in range(params.acc_words)] for _ in range(C)]  # the accumulator memory
    for j in range(C):
        prev = (d_mbase, d_ofs, d_nin, d_nb, d_last, d_kfirst, d_klast, d_pofs) if j == 0 else metas[j - 1]
        insts.append(_column(clk, rst, j, accs[j], valids[j], rows[j], loads[j], prev, metas[j], cfg_m, cfg_n,
                             cfg_first, cfg_last, bias_mem, m0_mem, shift_mem, cfg_zp, cfg_qmin, cfg_qmax, psums[j],
                             banks[j], rd_addr, rd_data[j], writes[j], counts[j], ws))
    finish, written = Signal(bool(0)), Signal(bool(0))  # the last result leaves the array; it is written
    last_meta = metas[C - 1][4]
    last_valid, last_row, last_count = valids[C - 1], rows[C - 1], counts[C - 1]
    m_last = _count()

    @always_comb
    def finished_os():
        finish.next = last_valid and last_row == 0 and last_meta

    @always_comb
    def finished_ws():
        finish.next = last_valid and last_count == m_last and last_meta

    # ---- result stream: beat b is bank word b (the words are laid out in stream order) -------------
    streaming, draining, counting = Signal(bool(0)), Signal(bool(0)), Signal(bool(0))
    warm = _count()  # cycles since start, until the first operand reaches the array (`latency`)
    beat, beats = _count(), _count()
    o_last = Signal(bool(0))

    @always_comb
    def stream():
        # the banks' registered read port fetches the beat the coming cycle presents
        if streaming and out_ready and not o_last:
            rd_addr.next = beat + 1
        else:
            rd_addr.next = beat
        out_valid.next = streaming
        o_last.next = beat == beats - 1
        out_last.next = streaming and beat == beats - 1

    load0 = loads[0]
    stream_len = cfg_m if ws else cfg_k  # T, the extent one fold streams

    @always_seq(clk.posedge, reset=rst)
    def control():
        if start and not running:
            running.next = 1
            issuing.next = not ws  # WS: the stream loop starts R cycles after the load loop
            loading.next = ws
            lead.next = 0
            done.next = 0
            streaming.next = 0
            draining.next = 0
            counting.next = 0
            warm.next = 0
            k_last.next = cfg_k - 1
            m_last.next = cfg_m - 1
            if stream_len > R:
                period_last.next = stream_len - 1
            else:
                period_last.next = R - 1
            rt_last.next = cfg_row_tiles - 1
            ct_last.next = cfg_col_tiles - 1
            g_last.next = cfg_groups - 1
            cycles.next = 0
            p.next = 0
            rt.next = 0
            ct.next = 0
            g.next = 0
            a_gbase.next = cfg_a_start
            a_base.next = cfg_a_start
            b_base.next = cfg_b_start
            c_ph.next = 0
            brow.next = 0
            b_rt.next = 0
            b_ct.next = 0
            b_g.next = 0
            d_rt.next = 0
            d_ct.next = 0
            d_g.next = 0
            d_mbase.next = 0
            d_ofs.next = cfg_o_start
            d_pofs.next = 0
            d_nin.next = 0
            d_nb.next = cfg_p_start
            d_gn.next = cfg_p_start
            beats.next = cfg_beats
        elif running:
            if not counting:
                warm.next = warm + 1
                if warm == latency - 1:
                    counting.next = 1  # the first operand reaches the array: its cycles start
            if counting:
                cycles.next = cycles + 1
            if ws and not issuing and loading:
                lead.next = lead + 1
                if lead == R - 1:
                    issuing.next = 1
            if issuing:
                if p == period_last:
                    p.next = 0
                    if rt == rt_last:
                        rt.next = 0
                        if not ws:
                            b_base.next = b_base + cfg_kstride
                        if ct == ct_last:
                            ct.next = 0
                            if g == g_last:
                                issuing.next = 0
                            else:
                                g.next = g + 1
                                a_gbase.next = a_base + cfg_astride
                                a_base.next = a_base + cfg_astride
                        else:
                            ct.next = ct + 1
                            a_base.next = a_gbase
                    else:
                        rt.next = rt + 1
                        a_base.next = a_base + cfg_astride
                else:
                    p.next = p + 1
            if ws and loading:
                if c_ph == period_last:
                    c_ph.next = 0
                    if b_rt == rt_last:
                        b_rt.next = 0
                        brow.next = 0
                        b_base.next = b_base + cfg_kstride
                        if b_ct == ct_last:
                            b_ct.next = 0
                            if b_g == g_last:
                                loading.next = 0
                            else:
                                b_g.next = b_g + 1
                        else:
                            b_ct.next = b_ct + 1
                    else:
                        b_rt.next = b_rt + 1
                        brow.next = brow + R
                else:
                    c_ph.next = c_ph + 1
            if load0:
                if d_rt == rt_last:
                    d_rt.next = 0
                    d_mbase.next = 0
                    d_ofs.next = d_ofs + cfg_ostride
                    d_pofs.next = d_pofs + cfg_m
                    if d_ct == ct_last:
                        d_ct.next = 0
                        d_g.next = d_g + 1
                        d_nin.next = 0
                        d_gn.next = d_gn + cfg_n
                        d_nb.next = d_gn + cfg_n
                    else:
                        d_ct.next = d_ct + 1
                        d_nin.next = d_nin + C
                        d_nb.next = d_nb + C
                else:
                    d_rt.next = d_rt + 1
                    d_mbase.next = d_mbase + R
            if written:
                running.next = 0
                done.next = 1
                draining.next = beats != 0  # a chunk that is not the layer's last streams nothing
                beat.next = 0
        elif draining:  # one cycle for the banks' read port to fetch beat 0 (the last write has landed)
            draining.next = 0
            streaming.next = 1
        elif streaming and out_ready:
            if o_last:
                streaming.next = 0
            else:
                beat.next = beat + 1

    insts += [drain_last, finished_ws if ws else finished_os,
              delay(clk, rst, finish, written, WRITEBACK_STAGES), stream, control,
              pack(rd_data, out_data), pack(writes, obs_write)]
    return insts


@block
def _masked_lane(word, lo: int, ok, q):
    hi = lo + len(q)

    @always_comb
    def comb():
        if ok:
            q.next = word[hi:lo].signed()
        else:
            q.next = 0

    return comb


def engine_ports(params: EngineParams) -> dict:
    """Fresh top-level signals for tile_engine (names become the Verilog port names)."""
    ap = params.array
    ws = {}
    if ap.ws:
        ws = {name: spos() if name in SIGNED_CONFIG_PORTS else _count()
              for name in WS_CONFIG_PORTS + PIXEL_CONFIG_PORTS}
        ws["cfg_in_zp"] = signed(ap.data_bits)
    return ws | dict(
        clk=Signal(bool(0)), rst=ResetSignal(0, active=1, isasync=False),
        ld_valid=Signal(bool(0)), ld_ready=Signal(bool(0)), ld_sel=unsigned(2), ld_addr=_count(),
        ld_data=unsigned(params.load_bits),
        cfg_m=_count(), cfg_k=_count(), cfg_n=_count(), cfg_groups=_count(), cfg_row_tiles=_count(),
        cfg_col_tiles=_count(), cfg_zp=signed(ap.data_bits), cfg_qmin=signed(ap.data_bits),
        cfg_qmax=signed(ap.data_bits), cfg_kstride=_count(), cfg_astride=_count(), cfg_a_start=_count(),
        cfg_b_start=_count(),
        cfg_o_start=_count(), cfg_ostride=_count(), cfg_p_start=_count(), cfg_first=Signal(bool(0)),
        cfg_last=Signal(bool(0)), cfg_beats=_count(),
        start=Signal(bool(0)), busy=Signal(bool(0)), done=Signal(bool(0)), cycles=unsigned(32),
        out_valid=Signal(bool(0)), out_ready=Signal(bool(0)), out_data=unsigned(ap.cols * ap.data_bits),
        out_last=Signal(bool(0)), obs_write=unsigned(ap.cols),
    )

