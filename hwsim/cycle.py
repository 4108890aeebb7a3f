"""The cycle-accurate engine: a register-level model of the R x C PE grid.

Every simulated cycle, operands advance one PE (right along rows, down along
columns), each PE multiply-accumulates, and results leave the bottom edge;
numpy vectorizes each cycle over the PE grid and over `replicas` (identical
arrays running different images in lockstep). Nothing here uses the closed
form of hwsim.timing: the cycle count is the cycle the last result is seen at
the bottom edge, plus one, plus the writeback pipeline it then passes before its
SRAM write (WRITEBACK_CYCLES register stages, a fixed delay line: the requantizer
of rtl.requant). Tests hold it equal to the formula.

The controller (which operand enters which edge at which cycle) is the fold
schedule of hwsim.mapping: folds issue every P = fold_period(plan) = max(T, R)
cycles, the shortest period at which consecutive folds neither collide on the
edges (T) nor overrun a column's one-value-per-cycle drain or load chain (R);
tests/hwsim/test_cycle.py shortens it by one and watches the results go wrong.

Memory: the controller's edge streams and the bottom-edge record grow with the
layer's cycles, so a GEMM costs about gemm_sim_bytes(plan, replicas). Replicas
(independent arrays) are simulated in chunks that fit CYCLE_MEMORY_LIMIT_BYTES
(identical results: replicas never interact); a single array run that would
not fit (a large `batch` makes M, and so the run, long) is refused up front by
check_cycle_memory, naming the layer and the bytes it would need.

  OS  PE (i, j) accumulates A[i, t] * B[t, j]; an operand tagged `first`
      restarts the accumulator, one tagged `last` copies it into the PE's
      second (done) register. One cycle after the bottom PE of column j
      finishes, the column's done registers load in parallel into a drain
      chain that shifts one row down per cycle out of the bottom edge.
  WS/IS  a stationary tile S is shifted down a per-column load chain (R
      cycles, bottom row first) and captured into shadow registers; the
      first streamed operand of a fold swaps shadow -> active as it passes
      each PE. Streamed X[t, i] moves right, partial sums move down:
      out[t, j] = sum_i X[t, i] * S[i, j] leaves the bottom PE's register.
      WS: S = weight tile, X = im2col rows.  IS: S = im2col tile (transposed),
      X = weight rows. Partial sums of K folds add up in the ofmap buffer.

Requantization runs on the drain path with quant's fixed-point code, so a
layer's int8 output is bit-identical to quant.int_exec.run_int. Accumulator
overflow (the layer's final int sums against `acc_bits`) raises
OverflowDetected naming the layer and channel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.analytical import MapResult, NetworkPlan, fused_layer, gemm_layer, plan_network, vector_layer, vector_op
from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import GEMM_OPS, FoldPlan, Gemm, gemm_of, plan
from hwsim.memory import Memory
from hwsim.tiling import Layer, Mapping, Step, map_layer, schedule
from hwsim.timing import WRITEBACK_CYCLES
from quant.errors import ConfigError, IRError
from quant.fixedpoint import IntType
from quant.int_exec import INT_KERNELS, apply_requant, check_accumulator
from quant.ir import Graph, Node, Op
from quant.kernels import im2col

EMPTY = -1
CYCLE_MEMORY_LIMIT_BYTES = 2 << 30  # what one chunk of simulated arrays may hold at its peak


def fold_period(p: FoldPlan) -> int:
    """Cycles between the issue of consecutive folds: P = max(T, R), the minimum for correct results
    (hwsim.timing derives it; shorter, fold f + 1's operands overwrite fold f's on the edges when
    T > R, or a column's drain/load chain still holds fold f's values when R > T)."""
    return max(p.stream, p.rows)


def _horizon(p: FoldPlan) -> int:
    """Cycles of controller streams the simulation builds (see _simulate_os/_simulate_stationary)."""
    extra = 0 if p.dataflow is Dataflow.OS else p.rows  # WS/IS preload the first stationary tile
    return extra + (p.folds - 1) * fold_period(p) + p.stream + p.rows + p.cols


def gemm_sim_bytes(p: FoldPlan, replicas: int) -> int:
    """An upper estimate of the bytes one GEMM layer holds at its peak in run_cycle for `replicas`
    arrays: int64 operands (+ their int8 im2col copies), the controller's edge streams, the PE
    registers, every result recorded at the bottom edge, and the output. Linear in replicas."""
    g, R, C = p.gemm, p.rows, p.cols
    horizon = _horizon(p)
    results = p.folds * R * C if p.dataflow is Dataflow.OS else p.folds * p.stream * C
    per_replica = (g.groups * g.m * g.k * 10  # im2col (int8), its regrouped copy, the int64 operand
                   + horizon * (R + C) * 8  # operand edge streams
                   + 12 * R * C * 8  # registers and one cycle's temporaries
                   + results * 8 * 3  # recorded values: the list, its concatenation, the kept ones
                   + g.groups * g.m * g.n * 8 * 3)  # output, its accumulator layout, + bias
    shared = (g.groups * g.k * g.n * 8  # the int64 weights
              + horizon * (R * 10 + C)  # tags and flags travelling with the operands
              + horizon * 4 * 128  # the bottom-edge record: up to four small arrays per cycle
              + results * 8 * 20  # tags, columns, cycles of each result and their decoding
              + g.groups * g.m * g.n * 8  # the cycle each output left the array
              + 16 * R * C)
    return 2 * (shared + replicas * per_replica)  # x2: numpy temporaries and allocator slack


@dataclass(frozen=True)
class LayerSchedule:
    """What the compiler hands the cycle engine for one GEMM layer: the tiled schedule."""
    node: Node
    layer: Layer
    mapping: Mapping
    steps: tuple[Step, ...]
    cfg: AcceleratorConfig

    def sim_bytes(self, replicas: int) -> int:
        """The bytes this layer holds at its peak for `replicas` arrays: the layer's operands and
        accumulators (int8 im2col, int64 A and output) plus the largest chunk's simulation."""
        g = self.layer.gemm
        operands = replicas * g.groups * g.m * (g.k * 9 + g.n * 8 * 2)
        chunks = {(s.m, s.k, s.n) for s in self.steps}
        return operands + max(gemm_sim_bytes(plan(Gemm(*c), self.cfg), replicas) for c in chunks)


def compile_schedules(graph: Graph, cfg: AcceleratorConfig, batch: int,
                      net: NetworkPlan | None = None) -> list[LayerSchedule]:
    """Every GEMM layer's schedule: the network plan (fused pools, residency), the mapper's tiling
    and its steps (shapes only)."""
    net = net or plan_network(graph, cfg, batch)
    out = []
    for node in graph.nodes:
        if node.op in GEMM_OPS:
            layer = net.layers[node.name]
            mapping = map_layer(layer, cfg, net.mem)
            out.append(LayerSchedule(node, layer, mapping, tuple(schedule(layer, net.mem, mapping)), cfg))
    return out


def check_cycle_memory(graph: Graph, cfg: AcceleratorConfig, batch: int = 1,
                       limit_bytes: int | None = None) -> None:
    """Refuse, before anything runs, a graph whose array run of `batch` images would not fit the
    cycle engine's memory limit (one replica; more replicas run in chunks). Shapes only, so a float
    graph answers for its quantized form."""
    limit = CYCLE_MEMORY_LIMIT_BYTES if limit_bytes is None else limit_bytes
    for sched in compile_schedules(graph, cfg, batch):
        need = sched.sim_bytes(1)
        if need > limit:
            raise ConfigError(f"the cycle engine would need about {_gib(need)} for layer {sched.node.name!r} at "
                              f"batch {batch} (M = {sched.layer.gemm.m:,}), over its {_gib(limit)} limit: use a "
                              "smaller --batch or array, or --engine analytical (the same cycle counts, in closed "
                              "form)")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _replica_chunk(sched: LayerSchedule, replicas: int, limit: int) -> int:
    """How many replicas to simulate at once within `limit` (at least 1; check_cycle_memory refuses
    layers where one replica alone does not fit)."""
    base = sched.sim_bytes(0)
    per = sched.sim_bytes(1) - base
    return max(1, min(replicas, (limit - base) // per))


@dataclass(frozen=True)
class GemmRun:
    out: np.ndarray  # (replicas, groups, M, N) int64
    cycles: int  # cycles until the last result was written: it left the array, then the writeback stages
    results: int  # results that left the bottom edge
    macs: int  # useful multiply-accumulates performed
    out_cycle: np.ndarray  # (G, M, N): the cycle each output (its last partial sum) left the array


def _shift_right(reg: np.ndarray, edge: np.ndarray) -> None:
    """reg[..., i, j] <- reg[..., i, j-1]; column 0 <- edge (in place)."""
    reg[..., 1:] = reg[..., :-1]
    reg[..., 0] = edge


def _shift_down(reg: np.ndarray, edge: np.ndarray) -> None:
    reg[..., 1:, :] = reg[..., :-1, :]
    reg[..., 0, :] = edge


class _BottomEdge:
    """What leaves the bottom row of the array: values, tags and columns per cycle, and the last cycle seen."""

    def __init__(self) -> None:
        self.vals, self.tags, self.cols, self.cycles, self.last_cycle = [], [], [], [], -1

    def observe(self, values: np.ndarray, tags: np.ndarray, t: int) -> int:
        """Record this cycle's valid bottom registers; return how many results left."""
        cols = np.flatnonzero(tags >= 0)
        if cols.size:
            self.vals.append(values[:, cols])
            self.tags.append(tags[cols])
            self.cols.append(cols)
            self.cycles.append(np.full(cols.size, t))
            self.last_cycle = t
        return cols.size

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate(self.vals, axis=1), np.concatenate(self.tags), np.concatenate(self.cols),
                np.concatenate(self.cycles))


def simulate_gemm(a: np.ndarray, b: np.ndarray, fold_plan: FoldPlan) -> GemmRun:
    """a (replicas, G, M, K), b (G, K, N) or (replicas, G, K, N): integer operands."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if b.ndim == 3:
        b = np.broadcast_to(b, (a.shape[0], *b.shape))
    g = fold_plan.gemm
    if a.shape[1:] != (g.groups, g.m, g.k) or b.shape[1:] != (g.groups, g.k, g.n):
        raise IRError(f"GEMM operands {a.shape[1:]} @ {b.shape[1:]} do not match the plan {g}")
    if fold_plan.dataflow is Dataflow.OS:
        return _simulate_os(a, b, fold_plan)
    return _simulate_stationary(a, b, fold_plan)


def _simulate_os(a: np.ndarray, b: np.ndarray, p: FoldPlan) -> GemmRun:
    reps, R, C, T = a.shape[0], p.rows, p.cols, p.stream
    tiles = p.tiles()
    period = fold_period(p)
    horizon = _horizon(p)  # last operand enters well before this
    # controller: skewed edge streams. Row i gets A_f[i, t] at cycle f*P + t + i, column j gets B_f[t, j] at f*P + t + j
    a_edge = np.zeros((horizon, reps, R), np.int64)
    b_edge = np.zeros((horizon, reps, C), np.int64)
    tag_edge = np.full((horizon, R), EMPTY, np.int64)  # fold id travelling with A
    first_edge = np.zeros((horizon, R), bool)
    last_edge = np.zeros((horizon, R), bool)
    t_idx = np.arange(T)
    for f, (grp, r0, rs, c0, cs) in enumerate(tiles):
        start = f * period
        cyc = start + t_idx[:, None] + np.arange(rs)[None, :]  # (T, rs)
        a_edge[cyc, :, np.arange(rs)[None, :]] = a[:, grp, r0:r0 + rs, :].transpose(2, 1, 0)
        # every row carries the fold's tags (rows past rs multiply zeros), so every PE hands in a result
        cyc_all = start + t_idx[:, None] + np.arange(R)[None, :]
        tag_edge[cyc_all, np.arange(R)[None, :]] = f
        first_edge[cyc_all[0], np.arange(R)] = True
        last_edge[cyc_all[-1], np.arange(R)] = True
        cyc_b = start + t_idx[:, None] + np.arange(cs)[None, :]
        b_edge[cyc_b, :, np.arange(cs)[None, :]] = b[:, grp, :, c0:c0 + cs].transpose(1, 2, 0)

    a_reg = np.zeros((reps, R, C), np.int64)
    b_reg = np.zeros((reps, R, C), np.int64)
    tag = np.full((R, C), EMPTY, np.int64)
    first = np.zeros((R, C), bool)
    last = np.zeros((R, C), bool)
    acc = np.zeros((reps, R, C), np.int64)
    done = np.zeros((reps, R, C), np.int64)
    done_tag = np.full((R, C), EMPTY, np.int64)
    drain = np.zeros((reps, R, C), np.int64)
    drain_tag = np.full((R, C), EMPTY, np.int64)  # fold * R + row of the value in the drain chain
    bottom_last = np.zeros(C, bool)
    rows = np.arange(R)[:, None]
    edge = _BottomEdge()
    t, pending = 0, len(tiles) * R * C
    while pending > 0:
        pending -= edge.observe(drain[:, R - 1], drain_tag[R - 1], t)  # the bottom of each drain chain
        live = t < horizon
        _shift_right(a_reg, a_edge[t] if live else 0)
        _shift_down(b_reg, b_edge[t] if live else 0)
        _shift_right(tag, tag_edge[t] if live else EMPTY)
        _shift_right(first, first_edge[t] if live else False)
        _shift_right(last, last_edge[t] if live else False)
        valid = tag >= 0
        acc = np.where(valid, np.where(first, 0, acc) + a_reg * b_reg, acc)
        # drain chain: columns whose bottom PE finished last cycle load their done registers, others shift
        load = bottom_last
        _shift_down(drain, 0)
        _shift_down(drain_tag, EMPTY)
        if load.any():
            drain[:, :, load] = done[:, :, load]
            drain_tag[:, load] = np.where(done_tag[:, load] >= 0, done_tag[:, load] * R + rows, EMPTY)
        done = np.where(last, acc, done)
        done_tag = np.where(last, tag, done_tag)
        bottom_last = last[R - 1].copy()
        t += 1
        if t > horizon + 2 * R + C + 2:
            raise RuntimeError("OS array did not drain: controller and array disagree")

    out = np.zeros((reps, p.gemm.groups, p.gemm.m, p.gemm.n), np.int64)
    out_cycle = np.zeros((p.gemm.groups, p.gemm.m, p.gemm.n), np.int64)
    vals, tags, cols, cycles = edge.arrays()
    tile_arr = np.array(tiles)
    f, i = tags // R, tags % R
    grp, r0, rs, c0, cs = tile_arr[f].T
    keep = (i < rs) & (cols < cs)
    idx = (grp[keep], r0[keep] + i[keep], c0[keep] + cols[keep])
    out[(slice(None), *idx)] = vals[:, keep]
    out_cycle[idx] = cycles[keep]
    return GemmRun(out=out, cycles=edge.last_cycle + 1 + WRITEBACK_CYCLES, results=int(keep.sum()), macs=p.gemm.macs,
                   out_cycle=out_cycle)


def _simulate_stationary(a: np.ndarray, b: np.ndarray, p: FoldPlan) -> GemmRun:
    reps, R, C, T = a.shape[0], p.rows, p.cols, p.stream
    tiles = p.tiles()
    period = fold_period(p)
    ws = p.dataflow is Dataflow.WS
    horizon = _horizon(p)
    load_edge = np.zeros((horizon, reps, C), np.int64)  # stationary values entering the top load chain
    capture = np.zeros((horizon, C), bool)  # column captures its load chain into the shadow registers
    x_edge = np.zeros((horizon, reps, R), np.int64)
    tag_edge = np.full((horizon, R), EMPTY, np.int64)  # fold * T + t travelling with X
    first_edge = np.zeros((horizon, R), bool)
    t_idx = np.arange(T)
    for f, (grp, r0, rs, c0, cs) in enumerate(tiles):
        start = R + f * period
        if ws:  # S[i, j] = B[r0+i, c0+j]; X[t, i] = A[t, r0+i]
            s_tile = b[:, grp, r0:r0 + rs, c0:c0 + cs]
            x = a[:, grp, :, r0:r0 + rs]
        else:  # S[i, j] = A[c0+j, r0+i]; X[t, i] = B[r0+i, t]
            s_tile = a[:, grp, c0:c0 + cs, r0:r0 + rs].transpose(0, 2, 1)
            x = b[:, grp, r0:r0 + rs, :].transpose(0, 2, 1)
        s_full = np.zeros((reps, R, cs), np.int64)
        s_full[:, :rs] = s_tile
        # column j: row R-1-c enters the top at cycle start - R + j + c; captured at the end of start + j - 1
        c_idx = np.arange(R)
        cyc = start - R + np.arange(cs)[None, :] + c_idx[:, None]  # (R, cs)
        load_edge[cyc, :, np.arange(cs)[None, :]] = s_full[:, R - 1 - c_idx, :].transpose(1, 2, 0)
        capture[start + np.arange(cs) - 1, np.arange(cs)] = True
        cyc_x = start + t_idx[:, None] + np.arange(rs)[None, :]  # row i gets X[t, i] at start + t + i
        x_edge[cyc_x, :, np.arange(rs)[None, :]] = x.transpose(1, 2, 0)
        # every row carries the tag, even rows past rs (zeros), so the fold's psums flow
        cyc_all = start + t_idx[:, None] + np.arange(R)[None, :]
        tag_edge[cyc_all, np.arange(R)[None, :]] = f * T + t_idx[:, None]
        first_edge[cyc_all[0], np.arange(R)] = True

    load = np.zeros((reps, R, C), np.int64)
    shadow = np.zeros((reps, R, C), np.int64)
    active = np.zeros((reps, R, C), np.int64)
    x_reg = np.zeros((reps, R, C), np.int64)
    tag = np.full((R, C), EMPTY, np.int64)
    first = np.zeros((R, C), bool)
    psum = np.zeros((reps, R, C), np.int64)
    psum_tag = np.full((R, C), EMPTY, np.int64)
    edge = _BottomEdge()
    t, pending = 0, len(tiles) * T * C
    while pending > 0:
        pending -= edge.observe(psum[:, R - 1], psum_tag[R - 1], t)
        live = t < horizon
        _shift_right(x_reg, x_edge[t] if live else 0)
        _shift_right(tag, tag_edge[t] if live else EMPTY)
        _shift_right(first, first_edge[t] if live else False)
        active = np.where(first, shadow, active)
        above = np.empty_like(psum)
        above[:, 0] = 0
        above[:, 1:] = psum[:, :-1]
        above_tag = np.empty_like(psum_tag)
        above_tag[0] = tag[0]
        above_tag[1:] = psum_tag[:-1]
        psum = above + x_reg * active
        psum_tag = np.where(tag >= 0, above_tag, EMPTY)
        _shift_down(load, load_edge[t] if live else 0)
        if live and capture[t].any():
            shadow[:, :, capture[t]] = load[:, :, capture[t]]
        t += 1
        if t > horizon + R + C + 2:
            raise RuntimeError("stationary array did not drain: controller and array disagree")

    g = p.gemm
    out = np.zeros((reps, g.groups, g.m, g.n), np.int64)
    out_cycle = np.zeros((g.groups, g.m, g.n), np.int64)
    vals, tags, cols, cycles = edge.arrays()
    tile_arr = np.array(tiles)
    f, ti = tags // T, tags % T
    grp, r0, rs, c0, cs = tile_arr[f].T
    keep = cols < cs
    if ws:  # out[t = m, j] -> C[m, c0 + j]
        idx = (grp[keep], ti[keep], c0[keep] + cols[keep])
    else:  # out[t = n, j] -> C[c0 + j, n]
        idx = (grp[keep], c0[keep] + cols[keep], ti[keep])
    for r in range(reps):  # partial sums of the K folds accumulate in the ofmap buffer
        np.add.at(out[r], idx, vals[r, keep])
    np.maximum.at(out_cycle, idx, cycles[keep])
    return GemmRun(out=out, cycles=edge.last_cycle + 1 + WRITEBACK_CYCLES, results=int(keep.sum()), macs=g.macs,
                   out_cycle=out_cycle)


# ---- layers on the array ---------------------------------------------------------------------------

def gemm_operands(node: Node, x: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray, Gemm]:
    """int8 input (images, ...) -> A (replicas, G, M, K), B (G, K, N) of the layer; images = replicas * batch."""
    q = node.quant
    gemm = gemm_of(node, batch)
    reps = x.shape[0] // batch
    if node.op is Op.CONV:
        cols = im2col(x, node.attrs, q.in_zero_points[0])  # (images, G, P, Kg), padding = input zero point
        p = cols.shape[2]
        a = cols.reshape(reps, batch, gemm.groups, p, gemm.k).transpose(0, 2, 1, 3, 4)
        a = a.reshape(reps, gemm.groups, batch * p, gemm.k)
    else:
        a = x.reshape(reps, 1, batch, gemm.k)
    w = q.weight.reshape(gemm.groups, gemm.n, gemm.k).transpose(0, 2, 1)
    return a, w, gemm


def gemm_result(node: Node, out: np.ndarray, batch: int) -> np.ndarray:
    """(replicas, G, M, N) -> the layer's (images, C_out, ...) accumulator layout."""
    reps, groups, _, n = out.shape
    if node.op is Op.DENSE:
        return out.reshape(reps * batch, n)
    oh, ow = node.out_shape[2:]
    acc = out.reshape(reps, groups, batch, oh * ow, n).transpose(0, 2, 1, 4, 3)
    return acc.reshape(reps * batch, groups * n, oh, ow)


class DmaQueue:
    """The DMA engine stepped one cycle at a time (hwsim.memory's link, modelled independently of its
    closed form): transfers run one after another; each waits `latency` cycles for its first data,
    then moves `bw` bytes per cycle until its whole requests have arrived."""

    def __init__(self, mem: Memory) -> None:
        self.mem = mem
        self.queue: list[int] = []
        self.wait = 0
        self.moved_cycles = 0
        self.need = 0

    def push(self, nbytes: int) -> None:
        if nbytes > 0:
            self.queue.append(nbytes)

    @property
    def busy(self) -> bool:
        return bool(self.queue) or self.need > 0

    def tick(self) -> None:
        if self.need == 0:
            if not self.queue:
                return
            nbytes = self.queue.pop(0)
            req = self.mem.request_bytes
            self.need, self.wait, self.moved_cycles = -(-nbytes // req) * req, self.mem.latency, 0
        if self.wait:
            self.wait -= 1
            return
        self.moved_cycles += 1
        if self.moved_cycles * self.mem.bw >= self.need:
            self.need = 0


def step_pipeline(mem: Memory, loads: list[tuple[int, ...]], computes: list[int], stores: list[int],
                  pools: list[int] | None = None) -> int:
    """Cycles of a schedule run by the sequencer, stepped cycle by cycle: before step 0 the DMA loads
    chunk 0's operands; step i starts chunk i on the array (busy computes[i] cycles) and gives the
    DMA chunk i+1's loads and the output tile stored after step i-1, which the vector unit pools
    meanwhile when a pool is fused (busy pools[i-1] cycles); a step ends when the array, the DMA and
    the vector unit are all idle; after the last step the last output tile is pooled and stored."""
    dma, clock = DmaQueue(mem), 0
    pools = pools or [0] * len(stores)

    def drain(array_cycles: int, vector_cycles: int) -> int:
        elapsed = 0
        while dma.busy or elapsed < array_cycles or elapsed < vector_cycles:
            dma.tick()
            elapsed += 1
        return elapsed

    for nbytes in loads[0]:
        dma.push(nbytes)
    clock += drain(0, 0)
    for i, compute in enumerate(computes):
        for nbytes in (loads[i + 1] if i + 1 < len(loads) else ()):
            dma.push(nbytes)
        dma.push(stores[i - 1] if i else 0)
        clock += drain(compute, pools[i - 1] if i else 0)
    dma.push(stores[-1] if stores else 0)
    return clock + drain(0, pools[-1] if pools else 0)


@dataclass(frozen=True)
class CycleRun:
    result: MapResult
    output: np.ndarray  # the graph output, int8
    tensors: dict[str, np.ndarray]  # every int8 tensor
    simulated_cycles: int  # array cycles actually stepped (all GEMM layers)
    acc_type: IntType  # the accumulator the run was checked against


def run_cycle(qgraph: Graph, x_q: np.ndarray, cfg: AcceleratorConfig, batch: int = 1) -> CycleRun:
    """Run a quantized graph with every Conv/Dense on the simulated PE grid, chunk by chunk as the
    mapper tiled it, with the DMA queue stepping every tile's loads and stores.

    x_q holds replicas * batch int8 images; each group of `batch` images is one
    array run (they share M), and replicas run in lockstep on identical arrays."""
    if not qgraph.is_quantized:
        raise IRError(f"graph {qgraph.name!r} is not quantized; the cycle engine executes int8 models")
    x_q = np.asarray(x_q)
    if batch < 1 or x_q.shape[0] % batch:
        raise ConfigError(f"{x_q.shape[0]} images do not split into runs of batch {batch}")
    net = plan_network(qgraph, cfg, batch)  # the compiler's plan, shared with the analytical engine
    schedules = {s.node.name: s for s in compile_schedules(qgraph, cfg, batch, net)}
    limit = CYCLE_MEMORY_LIMIT_BYTES
    for sched in schedules.values():
        if sched.sim_bytes(1) > limit:
            check_cycle_memory(qgraph, cfg, batch, limit)  # raises, naming the layer
    acc_type = IntType(cfg.acc_bits)
    mem, res, fused_into = net.mem, net.residency, net.fused_into
    tensors = {qgraph.input_name: x_q}
    layers, stepped = [], 0
    for i, node in enumerate(qgraph.nodes):
        inputs = [tensors[t] for t in node.inputs]
        if node.name in fused_into:  # pooled on the conv's store path: the same integer kernel, no time
            tensors[node.output] = INT_KERNELS[node.op].run(node, inputs, acc_type)
            layers.append(fused_layer(node, fused_into[node.name]))
        elif node.op in GEMM_OPS:
            sched = schedules[node.name]
            acc, computes = _gemm_on_array(sched, inputs[0], cfg, batch)
            check_accumulator(node, acc, acc_type)
            tensors[node.output] = apply_requant(acc, node.quant.requant).astype(np.int8)
            steps = sched.steps
            k = sched.layer.gemm.k  # a fused pool works on each output tile after its last k chunk
            pools = [-(-(s.m * s.n) // cfg.vector_lanes) if sched.layer.pooled and s.k0 + s.k == k else 0
                     for s in steps]
            total = step_pipeline(mem, [(s.a_bytes, s.b_bytes) for s in steps], computes,
                                  [s.store_bytes for s in steps], pools)
            layers.append(gemm_layer(node, sched.layer, sched.mapping, sum(computes), total - sum(computes), cfg,
                                     res.store_bytes[i]))
            stepped += sum(computes)
        else:
            tensors[node.output] = INT_KERNELS[node.op].run(node, inputs, acc_type)
            op = vector_op(node, qgraph, cfg, batch, res.on_chip)
            total = 0
            if node.op is not Op.FLATTEN:
                loads, computes, stores = op.schedule(mem)
                total = step_pipeline(mem, [(int(b),) for b in loads], [int(c) for c in computes],
                                      [int(b) for b in stores])
            layers.append(vector_layer(node, op, mem, op.compute_cycles, total - op.compute_cycles,
                                       res.store_bytes[i]))
    result = MapResult(model=qgraph.name, config=cfg, batch=batch, engine="cycle", timing="hwsim",
                       layers=tuple(layers))
    return CycleRun(result=result, output=tensors[qgraph.output], tensors=tensors, simulated_cycles=stepped,
                    acc_type=acc_type)


def _gemm_on_array(sched: LayerSchedule, x: np.ndarray, cfg: AcceleratorConfig, batch: int
                   ) -> tuple[np.ndarray, list[int]]:
    """One GEMM layer on the simulated array, one chunk of its schedule at a time, partial sums
    adding up in the accumulator SRAM: the accumulators (bias added) of all images and each step's
    array cycles. Replicas go through in chunks that fit the memory limit; every chunk steps the
    same schedule, so the cycles are one run's."""
    node, g = sched.node, sched.layer.gemm
    replicas = x.shape[0] // batch
    chunk = _replica_chunk(sched, replicas, CYCLE_MEMORY_LIMIT_BYTES)
    accs, runs = [], []
    for r0 in range(0, replicas, chunk):
        a, w, _ = gemm_operands(node, x[r0 * batch:(r0 + chunk) * batch], batch)
        out = np.zeros((a.shape[0], g.groups, g.m, g.n), np.int64)
        cycles = []
        for s in sched.steps:
            run = simulate_gemm(a[:, s.g:s.g + 1, s.m0:s.m0 + s.m, s.k0:s.k0 + s.k],
                                w[None, s.g:s.g + 1, s.k0:s.k0 + s.k, s.n0:s.n0 + s.n], plan(Gemm(s.m, s.k, s.n), cfg))
            out[:, s.g, s.m0:s.m0 + s.m, s.n0:s.n0 + s.n] += run.out[:, 0]
            cycles.append(run.cycles)
        del a
        accs.append(gemm_result(node, out, batch))
        runs.append(cycles)
    if any(c != runs[0] for c in runs):
        raise RuntimeError(f"node {node.name!r}: replica chunks took different cycles")
    acc = accs[0] if len(accs) == 1 else np.concatenate(accs)
    return acc + _bias_shape(node), runs[0]


def _bias_shape(node: Node) -> np.ndarray:
    bias = node.quant.acc_bias.astype(np.int64)
    return bias if node.op is Op.DENSE else bias.reshape(1, -1, 1, 1)
