"""MyHDL generators of the PE grids: the output-stationary grid (PE, input skew, column drain) and the
weight-stationary grid (PE, load chain, shadow weights, partial sums flowing down).

The timing is hwsim.cycle's OS model, register for register (its docstring
states it). Per clock edge:

  PE (i, j)  a, b, valid, first, last move on one PE (a right, b down); when
             valid, acc <- (first ? 0 : acc) + a_in * b_in, and when last the
             same sum is also written to the PE's `done` register (double-
             buffered accumulator: the next fold starts while this one drains).
  skew       the controller issues one unskewed vector per cycle; row i passes
             through i registers and column j through j registers, so PE (i, j)
             meets A[i, t] and B[t, j] at cycle start + t + i + j.
  drain      one cycle after the bottom PE of column j saw `last`, all of the
             column's `done` registers load in parallel into its drain chain,
             which shifts one row down per cycle out of the bottom edge (row R-1
             first). `out_valid[j]` marks a live bottom value, `out_row[j]` its row.

Weight stationary (hwsim.cycle's WS model, register for register; rtl.engine issues the schedule):

  load chain  column j's stationary values shift down one PE per cycle (bottom row first), skewed
             by j like B; `cap` (the fold's last value, skewed with it) copies what the chain takes
             at that edge into every PE's shadow register.
  PE (i, j)  x, valid and first move right; the `first` operand of a fold swaps shadow -> active as
             it passes; psum <- psum from above (0 on row 0) + x_in * weight, one PE down per cycle.
  bottom     out_cols[j] is the bottom PE's partial sum, live when out_valid[j]; `takes[j]` strobes
             one cycle before a fold's first sum leaves column j.

Accumulators are `modbv`: they wrap like the hardware; the host refuses layers
whose worst-case sum would not fit (rtl.params.required_acc_bits).
"""
from __future__ import annotations

from myhdl import ConcatSignal, Signal, always_comb, always_seq, block, intbv, modbv

from rtl.params import ArrayParams


def signed(bits: int, value: int = 0) -> Signal:
    return Signal(intbv(value, min=-(1 << (bits - 1)), max=1 << (bits - 1)))


def wrapping(bits: int) -> Signal:
    return Signal(modbv(0, min=-(1 << (bits - 1)), max=1 << (bits - 1)))


def unsigned(bits: int, value: int = 0) -> Signal:
    return Signal(intbv(value)[bits:])


@block
def pe(clk, rst, a_in, b_in, v_in, f_in, l_in, load, drain_in, a_out, b_out, v_out, f_out, l_out, drain_out):
    """One MAC processing element with its drain-chain register."""
    acc = wrapping(len(drain_out))
    done = wrapping(len(drain_out))

    @always_seq(clk.posedge, reset=rst)
    def step():
        a_out.next = a_in
        b_out.next = b_in
        v_out.next = v_in
        f_out.next = f_in
        l_out.next = l_in
        if v_in:
            if f_in:
                acc.next = a_in * b_in
                if l_in:
                    done.next = a_in * b_in
            else:
                acc.next = acc + a_in * b_in
                if l_in:
                    done.next = acc + a_in * b_in
        if load:
            drain_out.next = done
        else:
            drain_out.next = drain_in

    return step


@block
def delay(clk, rst, d, q, stages: int):
    """q = d delayed by `stages` register stages (stages >= 1)."""
    regs = [Signal(d.val) for _ in range(stages - 1)] + [q]
    insts = []
    src = d
    for r in regs:
        insts.append(_register(clk, rst, src, r))
        src = r
    return insts


@block
def _register(clk, rst, d, q):
    @always_seq(clk.posedge, reset=rst)
    def reg():
        q.next = d

    return reg


@block
def _slice_signed(bus, lo: int, q):
    hi = lo + len(q)

    @always_comb
    def comb():
        q.next = bus[hi:lo].signed()

    return comb


@block
def _drain_counter(clk, rst, load, valid, row, rows: int):
    """After a load the bottom value is live for `rows` cycles: row = rows-1 first, then down to 0."""

    @always_seq(clk.posedge, reset=rst)
    def seq():
        if load:
            valid.next = 1
            row.next = rows - 1
        elif valid:
            if row == 0:
                valid.next = 0
            else:
                row.next = row - 1

    return seq


@block
def systolic_array(clk, rst, a_rows, b_cols, in_valid, in_first, in_last, out_cols, out_valid, out_row,
                   params: ArrayParams, loads=None):
    """The grid with skew and drain. a_rows/b_cols: lists of signed data signals (unskewed);
    out_cols: list of signed acc signals (the bottom of each drain chain); out_valid/out_row: per column.
    `loads`, when given, is filled with each column's drain-load strobe (for the engine's bookkeeping)."""
    R, C, D, W = params.rows, params.cols, params.data_bits, params.acc_bits
    insts = []
    # skewed row inputs: row i delayed by i cycles (A and the row's flags)
    a_edge, v_edge, f_edge, l_edge = [a_rows[0]], [in_valid], [in_first], [in_last]
    for i in range(1, R):
        a_edge.append(signed(D))
        v_edge.append(Signal(bool(0)))
        f_edge.append(Signal(bool(0)))
        l_edge.append(Signal(bool(0)))
        insts.append(delay(clk, rst, a_rows[i], a_edge[i], i))
        insts.append(delay(clk, rst, in_valid, v_edge[i], i))
        insts.append(delay(clk, rst, in_first, f_edge[i], i))
        insts.append(delay(clk, rst, in_last, l_edge[i], i))
    b_edge = [b_cols[0]]
    for j in range(1, C):
        b_edge.append(signed(D))
        insts.append(delay(clk, rst, b_cols[j], b_edge[j], j))

    # PE grid: a/v/f/l run right (index [i][j+1] is PE (i, j)'s output), b and drain run down
    a = [[a_edge[i]] + [signed(D) for _ in range(C)] for i in range(R)]
    v = [[v_edge[i]] + [Signal(bool(0)) for _ in range(C)] for i in range(R)]
    f = [[f_edge[i]] + [Signal(bool(0)) for _ in range(C)] for i in range(R)]
    last = [[l_edge[i]] + [Signal(bool(0)) for _ in range(C)] for i in range(R)]
    b = [[b_edge[j]] + [signed(D) for _ in range(R)] for j in range(C)]
    zero = signed(W)
    drain = [[zero] + [signed(W) for _ in range(R - 1)] + [out_cols[j]] for j in range(C)]
    # column j loads its done registers one cycle after its bottom PE saw `last`: that PE's registered l_out
    load = [last[R - 1][j + 1] for j in range(C)]
    if loads is not None:
        loads.extend(load)
    for i in range(R):
        for j in range(C):
            insts.append(pe(clk, rst, a[i][j], b[j][i], v[i][j], f[i][j], last[i][j], load[j], drain[j][i],
                            a[i][j + 1], b[j][i + 1], v[i][j + 1], f[i][j + 1], last[i][j + 1], drain[j][i + 1]))
    for j in range(C):
        insts.append(_drain_counter(clk, rst, load[j], out_valid[j], out_row[j], R))
    return insts


@block
def array_top(clk, rst, a_vec, b_vec, in_valid, in_first, in_last, out_vec, out_valid, out_rows,
              params: ArrayParams):
    """Flat-port wrapper of systolic_array or ws_array (top-level ports cannot be lists):
    a_vec = R lanes of D bits (lane i = row i), b_vec = C lanes, out_vec = C lanes of W bits,
    out_valid = C bits, out_rows = C lanes of row-index bits (WS: in_last is the load chain's `cap`,
    out_rows the C `takes` strobes)."""
    R, C, D, W = params.rows, params.cols, params.data_bits, params.acc_bits
    rb = len(out_rows) // C
    a_rows = [signed(D) for _ in range(R)]
    b_cols = [signed(D) for _ in range(C)]
    outs = [signed(W) for _ in range(C)]
    valids = [Signal(bool(0)) for _ in range(C)]
    rows = [Signal(bool(0)) if params.ws else unsigned(rb) for _ in range(C)]
    insts = [_slice_signed(a_vec, i * D, a_rows[i]) for i in range(R)]
    insts += [_slice_signed(b_vec, j * D, b_cols[j]) for j in range(C)]
    if params.ws:
        insts.append(ws_array(clk, rst, a_rows, b_cols, in_valid, in_first, in_last, outs, valids, rows, params))
    else:
        insts.append(systolic_array(clk, rst, a_rows, b_cols, in_valid, in_first, in_last, outs, valids, rows,
                                    params))
    insts.append(pack(outs, out_vec))
    insts.append(pack(valids, out_valid))
    insts.append(pack(rows, out_rows))
    return insts


@block
def pack(lanes, bus):
    """bus = lanes[-1] ... lanes[0] (lane 0 in the low bits)."""
    if len(lanes) == 1:
        src = lanes[0]

        @always_comb
        def one():
            bus.next = src[len(src):]

        return one
    cat = ConcatSignal(*reversed(lanes))

    @always_comb
    def comb():
        bus.next = cat

    return comb


@block
def ws_pe(clk, rst, x_in, v_in, f_in, s_in, cap, p_in, x_out, v_out, f_out, s_out, p_out):
    """One weight-stationary PE: load-chain and shadow register, active weight, partial-sum register.
    p_in None: the top row (no partial sum from above)."""
    shadow = Signal(s_in.val)
    active = Signal(s_in.val)

    @always_seq(clk.posedge, reset=rst)
    def regs():
        x_out.next = x_in
        v_out.next = v_in
        f_out.next = f_in
        s_out.next = s_in
        if cap:
            shadow.next = s_in
        if f_in:
            active.next = shadow

    @always_seq(clk.posedge, reset=rst)
    def mac():
        if f_in:
            p_out.next = p_in + x_in * shadow
        else:
            p_out.next = p_in + x_in * active

    @always_seq(clk.posedge, reset=rst)
    def mac_top():  # an unsigned zero from above would make Verilog's sum unsigned
        if f_in:
            p_out.next = x_in * shadow
        else:
            p_out.next = x_in * active

    return regs, (mac_top if p_in is None else mac)


@block
def ws_array(clk, rst, x_rows, s_cols, in_valid, in_first, in_cap, out_cols, out_valid, takes, params: ArrayParams):
    """The weight-stationary grid. x_rows: R signed lanes (unskewed; row i = reduction index i of the
    fold), s_cols: C signed lanes of the load chain (unskewed), in_cap: the fold's last load value;
    out_cols: C partial sums at the bottom, out_valid/takes: per column (see the module doc)."""
    R, C, D, W = params.rows, params.cols, params.data_bits, params.acc_bits
    insts = []
    x_edge, v_edge, f_edge = [x_rows[0]], [in_valid], [in_first]
    for i in range(1, R):
        x_edge.append(signed(D))
        v_edge.append(Signal(bool(0)))
        f_edge.append(Signal(bool(0)))
        insts += [delay(clk, rst, x_rows[i], x_edge[i], i), delay(clk, rst, in_valid, v_edge[i], i),
                  delay(clk, rst, in_first, f_edge[i], i)]
    s_edge, c_edge = [s_cols[0]], [in_cap]
    for j in range(1, C):
        s_edge.append(signed(D))
        c_edge.append(Signal(bool(0)))
        insts += [delay(clk, rst, s_cols[j], s_edge[j], j), delay(clk, rst, in_cap, c_edge[j], j)]
    x = [[x_edge[i]] + [signed(D) for _ in range(C)] for i in range(R)]
    v = [[v_edge[i]] + [Signal(bool(0)) for _ in range(C)] for i in range(R)]
    f = [[f_edge[i]] + [Signal(bool(0)) for _ in range(C)] for i in range(R)]
    s = [[s_edge[j]] + [signed(D) for _ in range(R)] for j in range(C)]
    psum = [[None] + [wrapping(W) for _ in range(R - 1)] + [out_cols[j]] for j in range(C)]
    for i in range(R):
        for j in range(C):
            insts.append(ws_pe(clk, rst, x[i][j], v[i][j], f[i][j], s[j][i], c_edge[j], psum[j][i], x[i][j + 1],
                               v[i][j + 1], f[i][j + 1], s[j][i + 1], psum[j][i + 1]))
    for j in range(C):
        insts.append(_valid_out(v[R - 1][j + 1], f[R - 1][j], out_valid[j], takes[j]))
    return insts


@block
def _valid_out(v_reg, f_in, valid, take):
    """A bottom sum is live when the bottom PE's registered valid is; a fold's first sum is one cycle behind
    its `first` flag entering the bottom PE."""

    @always_comb
    def comb():
        valid.next = v_reg
        take.next = f_in

    return comb


def row_bits(rows: int) -> int:
    return max(1, (rows - 1).bit_length())
