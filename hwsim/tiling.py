"""The tiler and mapper: every GEMM layer as a loop nest over tiles that fit the SRAM halves, K split
into chunks that accumulate in the accumulator SRAM, and a per-step DMA pipeline. Pure functions;
bytes and cycles throughout. The analytical engine costs a schedule in closed form (`evaluate`,
vectorized); the cycle engine steps the same schedule (`schedule`, a plain loop) on its PE grid and
its own DMA queue.

The machine (DESIGN.md's accelerator): ifmap and filter SRAMs hold int8 operands, the accumulator
SRAM int32 partial sums; each is double-buffered, so a tile must fit half of its buffer while the
DMA fills the other half. The ofmap SRAM is the on-chip activation store: a layer output that fits
there (hwsim.memory.plan_residency) is written there and read by its consumers, never going through
DRAM. Behind them a DRAM link (hwsim.memory.Memory.dma_cycles).

Loop nest of one GEMM (G groups of M x K x N), tile (m_t, k_t, n_t):

    for g in groups:
      for the outer of (m tiles, n tiles):       order "mn" or "nm"
        for the inner of them:
          for k chunk in K:                       k innermost: the output tile's partial sums stay in
            load A(m, k) and B(k, n) unless on chip      the accumulator SRAM until the last chunk,
            run the chunk on the array                   are requantized and stored once (partial
          store the int8 output tile                     sums never go to DRAM)

Every chunk is one GEMM (m, k, n) on the R x C array with its own folds, so it costs
hwsim.timing.compute_cycles of that GEMM (fill and drain included); the array's results add into
the accumulator SRAM.

Hardware im2col: A(m, k) of a conv is the span of raw input rows that the m output pixels'
windows read (halo included), for the chunk's channels (k chunks are whole channels: multiples of
kh * kw); the expanded matrix never exists. The DMA skips rows that no window of the layer reads (a
1x1 stride-2 conv loads every other row), so a row-strided transfer. A Dense layer's A tile is m x k.

Sub-8-bit values are packed: a transfer moves its values' bits rounded up to whole bytes (its DMA
time), and a tensor's DRAM bytes are its values packed contiguously (bits / 8, rounded up once).

What stays on chip (else it is loaded at every visit):
  * A, when the group's whole input (all rows, all channels) fits the ifmap half: each tile then
    loads only the rows no earlier tile loaded (so the input is read exactly once); else, in order
    "mn", an m tile's panel (its rows, all channels) when it fits, across the n loop; an input that
    is already resident in the activation store is not loaded at all.
  * B, when the group's whole filter (+ per-channel parameters) fits the filter half (loaded once);
    else, in order "nm", an n tile's panel across the m loop.

Timing is a pipeline of steps (one per chunk): step i runs chunk i on the array while the DMA loads
chunk i + 1's operands and stores the output tile that finished in step i - 1; a step lasts as long
as the longer of the two. The first load and the last store are exposed:

    total = dma(loads of chunk 0) + sum_i max(compute_i, dma_i) + dma(last store)

where dma_i sums Memory.dma_cycles of each transfer (A tile, B tile, output tile) in step i.

The mapper searches tile sizes (array-aligned powers of two and the full extent, per dimension) and
both orders, keeping the fewest total cycles, then the fewest DRAM bytes, then the fewest steps;
candidates whose compute alone already exceeds the best total are skipped (a bound, not a guess).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import Gemm, gemm_of, plan
from hwsim.memory import CHANNEL_PARAM_BYTES, PSUM_BYTES, Memory, Traffic
from hwsim.timing import compute_cycles
from quant.errors import ConfigError
from quant.ir import Node, Op

MAX_STEPS = 1 << 12  # the mapper skips tilings of more steps when a tiling of fewer fits


def packed(values, bits: int):
    """Bytes of `values` values of `bits` bits packed together (rounded up to whole bytes)."""
    return -(-values * bits // 8)


@dataclass(frozen=True)
class Layer:
    """A GEMM layer with the geometry hardware im2col needs (a Dense layer: one 'row' per M row)."""
    name: str
    gemm: Gemm
    in_h: int = 1
    in_w: int = 1
    channels: int = 1      # input channels per group
    kh: int = 1
    kw: int = 1
    stride: int = 1        # vertical stride
    dilation: int = 1      # vertical dilation
    pad_top: int = 0
    out_w: int = 1         # output pixels per output row (M runs over rows of out_w pixels)
    out_h: int = 1         # output rows per image
    dense: bool = True
    a_on_chip: bool = False    # the input is resident in the activation store: no A loads
    out_on_chip: bool = False  # the output stays in the activation store: no stores to DRAM
    w_bits: int = 8            # stored weight width: values are packed, bytes = ceil(values * bits / 8)
    a_bits: int = 8            # stored activation width (inputs and outputs)
    pool: tuple[int, int] = (1, 1)  # a non-overlapping pool fused on the store path (kh, kw); (1, 1): none

    @classmethod
    def of(cls, node: Node, batch: int = 1, a_on_chip: bool = False, out_on_chip: bool = False, w_bits: int = 8,
           a_bits: int = 8, pool: tuple[int, int] = (1, 1)) -> Layer:
        gemm = gemm_of(node, batch)
        widths = {"a_on_chip": a_on_chip, "out_on_chip": out_on_chip, "w_bits": w_bits, "a_bits": a_bits,
                  "pool": tuple(pool)}
        if node.op is Op.DENSE:
            return cls(node.name, gemm, channels=gemm.k, **widths)
        a = node.attrs
        return cls(node.name, gemm, in_h=node.in_shape[2], in_w=node.in_shape[3],
                   channels=node.in_shape[1] // a.groups, kh=a.kernel[0], kw=a.kernel[1], stride=a.stride[0],
                   dilation=a.dilation[0], pad_top=a.pads[0], out_w=node.out_shape[3], out_h=node.out_shape[2],
                   dense=False, **widths)

    @property
    def window(self) -> int:
        return 1 if self.dense else self.kh * self.kw

    def row_values(self, k: int) -> int:
        """Values of one A 'row' for a chunk of k reduction elements (a conv: one input row of the
        chunk's ceil(k / window) channels)."""
        return k if self.dense else self.in_w * math.ceil(k / self.window)

    def row_bytes(self, k: int) -> int:
        """Bytes of one A 'row' of a chunk of k reduction elements as one transfer (packed)."""
        return packed(self.row_values(k), self.a_bits)

    @functools.cached_property
    def _used(self) -> tuple[np.ndarray, int]:
        """Per image: the running count of input rows some window reads (rows a stride skips, as a
        1x1 stride-2 conv skips every other row, are never loaded), and that count per image."""
        used = np.zeros(self.in_h, bool)
        for j in range(self.kh):
            rows = np.arange(self.out_h) * self.stride - self.pad_top + j * self.dilation
            used[rows[(rows >= 0) & (rows < self.in_h)]] = True
        cum = np.concatenate([[0], np.cumsum(used)]).astype(np.int64)
        cum.flags.writeable = False
        return cum, int(cum[-1])

    def used_rows(self, lo, hi):
        """Input rows some window reads among global rows [lo, hi) (image * in_h + row; Dense: M rows)."""
        lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
        if self.dense:
            return np.maximum(hi - lo, 0)
        cum, per_image = self._used
        at = lambda r: r // self.in_h * per_image + cum[r % self.in_h]  # noqa: E731
        return np.where(hi > lo, at(hi) - at(np.minimum(lo, hi)), 0)

    @functools.cached_property
    def window_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Per output row: the first and last real (not padding) input row its window reads
        (in_h and -1 when it reads only padding)."""
        s, d, reach = self.stride, self.dilation, self.dilation * (self.kh - 1)
        base = np.arange(self.out_h, dtype=np.int64) * s - self.pad_top
        first = base + -(-np.maximum(0, -base) // d) * d
        last = base + (np.minimum(self.in_h - 1, base + reach) - base) // d * d
        real = (first <= np.minimum(self.in_h - 1, base + reach)) & (last >= np.maximum(0, base))
        return np.where(real, first, self.in_h), np.where(real, last, -1)

    def _span(self, oy0: np.ndarray, oy1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input rows [lo, hi) from the first to the last real row that the windows of output rows
        oy0..oy1 of one image read; empty (lo == hi == 0) when they read only padding. Windows
        clear of the padding have monotone rows; the few that touch it are taken one by one."""
        first, last = self.window_rows
        oy0, oy1 = np.broadcast_arrays(np.asarray(oy0, np.int64), np.asarray(oy1, np.int64))
        top = min(self.out_h, -(-self.pad_top // self.stride))  # windows starting in the top padding
        clear_end = max(top, (self.in_h - 1 + self.pad_top - self.dilation * (self.kh - 1)) // self.stride + 1)
        mid_a, mid_b = np.maximum(oy0, top), np.minimum(oy1, clear_end - 1)
        has_mid = mid_a <= mid_b
        lo = np.where(has_mid, first[np.clip(mid_a, 0, self.out_h - 1)], self.in_h)
        hi = np.where(has_mid, last[np.clip(mid_b, 0, self.out_h - 1)], -1)
        for oy in [*range(top), *range(clear_end, self.out_h)]:
            inside = (oy0 <= oy) & (oy <= oy1)
            lo = np.where(inside, np.minimum(lo, first[oy]), lo)
            hi = np.where(inside, np.maximum(hi, last[oy]), hi)
        empty = lo > hi
        return np.where(empty, 0, lo), np.where(empty, 0, hi + 1)

    def tile_rows(self, m0: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, ...]:
        """For m tiles starting at output pixel m0 with m pixels: the A rows they read (all images;
        the used rows of each image's span), and in global rows (image * in_h + row; Dense: the M
        rows) the first image's span
        [first_lo, first_hi) and the last image's span [last_lo, end)."""
        m0, m = np.asarray(m0, np.int64), np.asarray(m, np.int64)
        if self.dense:
            return m, m0, m0 + m, m0, m0 + m
        r0, r1 = m0 // self.out_w, (m0 + m - 1) // self.out_w
        img0, img1 = r0 // self.out_h, r1 // self.out_h
        oy0, oy1 = r0 % self.out_h, r1 % self.out_h
        same = img0 == img1
        lo0, hi0 = self._span(oy0, np.where(same, oy1, self.out_h - 1))
        lo1, hi1 = self._span(np.where(same, oy0, 0), oy1)
        middle = np.maximum(img1 - img0 - 1, 0) * self._used[1]
        count0, count1 = self.used_rows(lo0, hi0), self.used_rows(lo1, hi1)
        rows = np.where(same, count0, count0 + middle + count1)
        return (rows, img0 * self.in_h + lo0, img0 * self.in_h + hi0, img1 * self.in_h + np.where(same, lo0, lo1),
                img1 * self.in_h + hi1)

    def m_tiles(self, m_t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per m tile of size m_t: its pixel count, the A rows it reads, and the rows no earlier m
        tile read (tiles run in increasing m; the 'new rows' sum to the layer's input rows)."""
        m_t = min(m_t, self.gemm.m)
        memo = self._memo
        if m_t not in memo:
            arrays = self._m_tiles(m_t)
            for a in arrays:
                a.flags.writeable = False
            memo[m_t] = (*arrays, int(arrays[1].max()), int(arrays[1].sum()))
        return memo[m_t][:3]

    def max_rows(self, m_t: int) -> int:
        """The most A rows one m tile of size m_t reads."""
        self.m_tiles(m_t)
        return self._memo[min(m_t, self.gemm.m)][3]

    def sum_rows(self, m_t: int) -> int:
        """The A rows all m tiles of size m_t read (halo rows once per tile)."""
        self.m_tiles(m_t)
        return self._memo[min(m_t, self.gemm.m)][4]

    @functools.cached_property
    def _memo(self) -> dict:
        return {}

    def _m_tiles(self, m_t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m0 = np.arange(0, self.gemm.m, m_t, dtype=np.int64)
        m = np.minimum(m_t, self.gemm.m - m0)
        rows, first_lo, first_hi, last_lo, end = self.tile_rows(m0, m)
        # when each tile's first span starts at or after the last span of the tile before, and ends move
        # forward, the rows of that span below the earlier end were all read by the tile before
        if np.all(first_lo[1:] >= last_lo[:-1]) and np.all(np.diff(end) >= 0):
            before = np.concatenate([[0], np.maximum.accumulate(end)[:-1]])  # rows [0, before) already read
            overlap = self.used_rows(first_lo, np.minimum(before, first_hi))
            return m, rows, rows - overlap
        return m, rows, self._new_rows_by_sets(m0, m)

    def _new_rows_by_sets(self, m0: np.ndarray, m: np.ndarray) -> np.ndarray:
        """New rows per tile, counted with sets (for paddings and dilations that move spans back)."""
        seen: set[int] = set()
        new = np.zeros(len(m0), np.int64)
        for i, (start, size) in enumerate(zip(m0.tolist(), m.tolist(), strict=True)):
            rows = self.rows_read(start, size)
            new[i] = len(rows - seen)
            seen |= rows
        return new

    def rows_read(self, m0: int, m: int) -> set[int]:
        """The global A rows (image * in_h + input row; Dense: M rows) that m tile m0..m0+m reads."""
        if self.dense:
            return set(range(m0, m0 + m))
        r0, r1 = m0 // self.out_w, (m0 + m - 1) // self.out_w
        rows: set[int] = set()
        cum = self._used[0]
        for img in range(r0 // self.out_h, r1 // self.out_h + 1):
            a = max(r0, img * self.out_h) - img * self.out_h
            b = min(r1, img * self.out_h + self.out_h - 1) - img * self.out_h
            lo, hi = (int(v) for v in self._span(np.int64(a), np.int64(b)))
            rows.update(img * self.in_h + r for r in range(lo, hi) if cum[r + 1] > cum[r])
        return rows

    @functools.cached_property
    def a_total_values(self) -> int:
        """One group's whole A: every input row some window reads, once, all channels."""
        rows = self.gemm.m if self.dense else self.gemm.m // (self.out_h * self.out_w) * self._used[1]
        return rows * self.row_values(self.gemm.k)

    @property
    def a_total_bytes(self) -> int:
        return packed(self.a_total_values, self.a_bits)

    def b_bytes(self, k: int, n: int, first: bool) -> int:
        """Filter bytes of one B chunk; the per-channel parameters come with the first k chunk."""
        return packed(k * n, self.w_bits) + (CHANNEL_PARAM_BYTES * n if first else 0)

    def out_values(self, m, n):
        """Values of an m x n output tile as stored (pooled when a pool is fused)."""
        return m // (self.pool[0] * self.pool[1]) * n

    @property
    def pooled(self) -> bool:
        return self.pool != (1, 1)

    @property
    def band(self) -> int:
        """Output pixels of one band of pooling windows (pool rows x the output width): the m tiles of a
        fused layer hold whole bands."""
        return self.pool[0] * self.out_w

    def out_bytes(self, m, n):
        """Bytes of an m x n output tile as one transfer (packed activations; pooled when fused)."""
        return packed(self.out_values(m, n), self.a_bits)

    def pool_cycles(self, m, n, lanes: int):
        """Vector-unit cycles to pool an m x n output tile (each value enters one window once)."""
        return -(-(m * n) // lanes) if self.pooled else 0 * m


@dataclass(frozen=True)
class Mapping:
    """One layer's chosen schedule and its cost."""
    layer: str
    m_t: int
    k_t: int
    n_t: int
    order: str                 # "mn" (m tiles outer) or "nm"
    steps: int                 # pipeline steps (groups x m tiles x n tiles x k chunks)
    folds: int                 # array folds over all steps
    compute_cycles: int
    total_cycles: int
    traffic: Traffic
    pool_cycles: int = 0       # vector-unit cycles of a fused pool, overlapped with the pipeline

    @property
    def stall_cycles(self) -> int:
        return self.total_cycles - self.compute_cycles

    @property
    def dram_bytes(self) -> int:
        return self.traffic.dram


def compulsory_dram_bytes(layer: Layer) -> int:
    """Weights (+ channel parameters) and the raw input read once, the output written once; an
    input or output resident in the activation store costs none."""
    g = layer.gemm
    a = 0 if layer.a_on_chip else packed(g.groups * layer.a_total_values, layer.a_bits)
    out = 0 if layer.out_on_chip else packed(g.groups * layer.out_values(g.m, g.n), layer.a_bits)
    return a + packed(g.groups * g.k * g.n, layer.w_bits) + g.groups * CHANNEL_PARAM_BYTES * g.n + out


def _extents(extent: int, tile: int) -> np.ndarray:
    return np.minimum(tile, extent - np.arange(0, extent, tile, dtype=np.int64))


def array_reads(df: Dataflow, rows: int, cols: int, m, k, n):
    """SRAM bytes the array reads for one chunk GEMM (m, k, n): (A, B). Each fold reads its tiles:
    OS A once per column fold and B once per row fold; WS A once per column fold, B once;
    IS A once, B once per column fold."""
    if df is Dataflow.OS:
        return -(-n // cols) * m * k, -(-m // rows) * k * n
    if df is Dataflow.WS:
        return -(-n // cols) * m * k, k * n
    return k * m, -(-m // cols) * n * k


def fits(layer: Layer, mem: Memory, m_t: int, k_t: int, n_t: int) -> str | None:
    """None when the tiling's tiles fit their halves, else a buffer that overflows (the cheap checks
    first: the ifmap check needs the rows of every m tile)."""
    g = layer.gemm
    if min(m_t, g.m) * min(n_t, g.n) * PSUM_BYTES > mem.acc_half:
        return "accumulator"
    if layer.b_bytes(min(k_t, g.k), min(n_t, g.n), True) > mem.filter_half:
        return "filter"
    if not layer.a_on_chip and layer.a_total_bytes > mem.ifmap_half:
        if layer.max_rows(m_t) * layer.row_bytes(min(k_t, g.k)) > mem.ifmap_half:
            return "ifmap"
    return None


def _residency(layer: Layer, mem: Memory, m_t: int, n_t: int, order: str) -> tuple[str, str]:
    """How A and B stay on chip: A 'chip' (resident input), 'all', 'panel' or 'none'; B 'all',
    'panel' or 'none' (see the module doc)."""
    g = layer.gemm
    if layer.a_on_chip:
        a = "chip"
    elif layer.a_total_bytes <= mem.ifmap_half:
        a = "all"
    elif order == "mn" and layer.max_rows(m_t) * layer.row_bytes(g.k) <= mem.ifmap_half:
        a = "panel"
    else:
        a = "none"
    if layer.b_bytes(g.k, g.n, True) <= mem.filter_half:
        b = "all"
    elif order == "nm" and layer.b_bytes(g.k, min(n_t, g.n), True) <= mem.filter_half:
        b = "panel"
    else:
        b = "none"
    return a, b


def _folds(p) -> int:
    return p.folds


def evaluate(layer: Layer, cfg: AcceleratorConfig, mem: Memory, m_t: int, k_t: int, n_t: int,
             order: str, total_only: bool = False) -> Mapping | int | None:
    """The cost of one tiling (only its total cycles with `total_only`), or None when its tiles do
    not fit their halves. Vectorized over the pipeline's steps (one group's steps in loop order,
    repeated for every group)."""
    if fits(layer, mem, m_t, k_t, n_t) is not None:
        return None
    g = layer.gemm
    m_t, k_t, n_t = min(m_t, g.m), min(k_t, g.k), min(n_t, g.n)
    ms, rows, new_rows = layer.m_tiles(m_t)
    ks, ns = _extents(g.k, k_t), _extents(g.n, n_t)
    a_mode, b_mode = _residency(layer, mem, m_t, n_t, order)
    mi, ni, ki = (np.arange(len(x)) for x in (ms, ns, ks))
    if order == "mn":  # axes (m tiles, n tiles, k chunks)
        m_ax, n_ax = (slice(None), None, None), (None, slice(None), None)
    else:              # axes (n tiles, m tiles, k chunks)
        m_ax, n_ax = (None, slice(None), None), (slice(None), None, None)
    k_ax = (None, None, slice(None))
    m, n, k = ms[m_ax], ns[n_ax], ks[k_ax]
    first_n, first_m, k_first = ni[n_ax] == 0, mi[m_ax] == 0, ki[k_ax] == 0
    k_last = ki[k_ax] == len(ks) - 1
    # values moved per transfer; a transfer moves its values packed, rounded up to whole bytes
    row_values = np.array([layer.row_values(int(x)) for x in ks])[k_ax]
    a_vals = {"chip": 0 * rows[m_ax] * row_values, "all": np.where(first_n, new_rows[m_ax] * row_values, 0),
              "panel": np.where(first_n, rows[m_ax] * row_values, 0), "none": rows[m_ax] * row_values}[a_mode]
    b_vals = k * n * (first_m if b_mode in ("all", "panel") else 1)
    b_params = CHANNEL_PARAM_BYTES * n * k_first * (first_m if b_mode in ("all", "panel") else 1)
    out_vals = np.where(k_last, layer.out_values(m, n), 0) * (not layer.out_on_chip)
    a, stores = packed(a_vals, layer.a_bits), packed(out_vals, layer.a_bits)
    b = packed(b_vals, layer.w_bits) + b_params
    computes = _chunk_table(cfg, m, k, n, compute_cycles)
    pools = np.where(k_last, layer.pool_cycles(m, n, cfg.vector_lanes), 0)
    shape = np.broadcast_shapes(a.shape, b.shape, computes.shape, stores.shape, pools.shape)
    flat = [np.broadcast_to(x, shape).ravel() for x in (a, b, computes, stores, pools)]
    total = pipeline_cycles(mem, *flat[:4], repeat=g.groups, pools=flat[4] if layer.pooled else None)
    if total_only:
        return total
    a, b, computes, stores, pools = flat
    folds = _chunk_table(cfg, m, k, n, _folds)

    a_read, b_read = array_reads(cfg.dataflow, cfg.rows, cfg.cols, m, k, n)
    per_group = lambda x: g.groups * int(np.broadcast_to(x, shape).sum())  # noqa: E731
    psums = per_group(m * n * PSUM_BYTES)
    outputs = packed(g.groups * layer.out_values(g.m, g.n), layer.a_bits)
    a_read_total, b_read_total = packed(per_group(a_read), layer.a_bits), packed(per_group(b_read), layer.w_bits)
    # DRAM bytes of a tensor: its values packed contiguously (tile boundaries need not fall on bytes)
    a_dram = packed(per_group(a_vals), layer.a_bits)
    b_dram = packed(per_group(b_vals), layer.w_bits) + per_group(b_params)
    out_dram = packed(per_group(out_vals), layer.a_bits)
    a_use = {"chip": 0, "all": layer.a_total_bytes, "panel": int(rows.max()) * layer.row_bytes(g.k),
             "none": int(rows.max()) * layer.row_bytes(k_t)}[a_mode]
    b_use = {"all": layer.b_bytes(g.k, g.n, True), "panel": layer.b_bytes(g.k, n_t, True),
             "none": layer.b_bytes(k_t, n_t, True)}[b_mode]
    traffic = Traffic(
        ifmap_sram_read=0 if layer.a_on_chip else a_read_total, ifmap_sram_write=a_dram,
        filter_sram_read=b_read_total, filter_sram_write=b_dram,
        # every chunk but a tile's first adds to (reads) its partial sums; the last read feeds the requantizer
        acc_sram_write=psums, acc_sram_read=psums - per_group(np.where(k_first, m * n * PSUM_BYTES, 0))
        + PSUM_BYTES * g.groups * g.m * g.n,
        ofmap_sram_read=a_read_total if layer.a_on_chip else 0,
        ofmap_sram_write=outputs if layer.out_on_chip else 0,
        dram_read=a_dram + b_dram, dram_write=out_dram,
        footprint=2 * min(a_use, mem.ifmap_half) + 2 * min(b_use, mem.filter_half) + 2 * m_t * n_t * PSUM_BYTES)
    return Mapping(layer.name, m_t, k_t, n_t, order, g.groups * computes.size, per_group(folds),
                   g.groups * int(computes.sum()), total, traffic, g.groups * int(pools.sum()))


def pipeline_cycles(mem: Memory, a: np.ndarray, b: np.ndarray, computes: np.ndarray, stores: np.ndarray,
                    repeat: int = 1, pools: np.ndarray | None = None) -> int:
    """The step pipeline in closed form: step i computes while the DMA moves chunk i+1's A and B
    tiles and the output tile stored after step i-1; the first loads and the last store exposed.
    `repeat`: the steps run that many times back to back (the groups of a grouped conv). `pools`
    (a fused pool; repeat 1): the vector unit pools each stored tile while the DMA streams it out,
    so a step also lasts at least the pooling of the tile it stores."""
    dma = mem.dma_array
    loads, st = dma(a) + dma(b), dma(stores)
    if repeat == 1:
        during = np.concatenate([loads[1:], [0]]) + np.concatenate([[0], st[:-1]])
        last = int(st[-1])
        if pools is not None:
            during = np.maximum(during, np.concatenate([[0], pools[:-1]]))
            last = max(last, int(pools[-1]))
        return int(loads[0] + np.maximum(computes, during).sum() + last)
    nxt, prv = np.roll(loads, -1), np.roll(st, 1)  # a repeated run: next/previous wrap around
    c0, c1 = int(computes[0]), int(computes[-1])
    total = int(loads[0]) + repeat * int(np.maximum(computes, nxt + prv).sum()) + int(st[-1])
    total += max(c0, int(nxt[0])) - max(c0, int(nxt[0] + prv[0]))      # the very first step: no store before
    total += max(c1, int(prv[-1])) - max(c1, int(nxt[-1] + prv[-1]))  # the very last: no load after
    return total


@functools.lru_cache(maxsize=65536)
def _chunk_cost(cfg: AcceleratorConfig, m: int, k: int, n: int, what) -> int:
    return what(plan(Gemm(m, k, n), cfg))


def _chunk_table(cfg: AcceleratorConfig, m: np.ndarray, k: np.ndarray, n: np.ndarray, what) -> np.ndarray:
    """what(plan of chunk GEMM (m, k, n)) over broadcast extent arrays; each dimension has at most
    two distinct extents (the tile and the remainder), so a handful of plans."""
    def index(x):
        vals = np.unique(x) if x.size > 2 else np.array(sorted(set(x.ravel().tolist())))
        return vals, np.searchsorted(vals, x)
    (mv, mi), (kv, ki), (nv, ni) = index(m), index(k), index(n)
    table = np.array([[[_chunk_cost(cfg, int(a), int(b), int(c), what) for c in nv] for b in kv] for a in mv],
                     dtype=np.int64)
    return table[mi, ki, ni]


def _candidates(extent: int, align: int) -> list[int]:
    """Array-aligned powers of two below the extent, and the extent itself."""
    sizes = {extent}
    size = max(1, align)
    while size < extent:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


def smallest_tile(layer: Layer) -> tuple[int, int, int]:
    return (layer.band if layer.pooled else 1), layer.window, 1


def _compute_bound(layer: Layer, cfg: AcceleratorConfig, m_t: int, k_t: int, n_t: int) -> int:
    """Sum of the chunks' compute cycles (a lower bound on the tiling's total), from tile counts."""
    g = layer.gemm
    total = 0
    for (mm, cm), (kk, ck), (nn, cn) in product(*(_counts(e, t) for e, t in ((g.m, m_t), (g.k, k_t), (g.n, n_t)))):
        total += cm * ck * cn * _chunk_cost(cfg, mm, kk, nn, compute_cycles)
    return g.groups * total


def _exposed_cycles(layer: Layer, mem: Memory, m_t: int, k_t: int, n_t: int) -> int:
    """DMA cycles of the first step's loads and of the last output tile's store (both orders)."""
    g = layer.gemm
    k, n = min(k_t, g.k), min(n_t, g.n)
    a0 = 0 if layer.a_on_chip else int(layer.m_tiles(m_t)[1][0]) * layer.row_bytes(k)
    last_m, last_n = g.m - (math.ceil(g.m / m_t) - 1) * m_t, g.n - (math.ceil(g.n / n_t) - 1) * n_t
    store = 0 if layer.out_on_chip else layer.out_bytes(last_m, last_n)
    return mem.dma_cycles(a0) + mem.dma_cycles(layer.b_bytes(k, n, True)) + mem.dma_cycles(store)


def _last_compute_exposed(layer: Layer, cfg: AcceleratorConfig, mem: Memory, m_t: int, k_t: int, n_t: int) -> int:
    """The last step has no load to hide: its compute shows beyond the DMA, less at most one store."""
    g = layer.gemm
    last = [e - (math.ceil(e / t) - 1) * t for e, t in ((g.m, m_t), (g.k, k_t), (g.n, n_t))]
    store = 0 if layer.out_on_chip else mem.dma_cycles(layer.out_bytes(min(m_t, g.m), min(n_t, g.n)))
    return max(0, _chunk_cost(cfg, *last, compute_cycles) - store)


def _dma_floor(layer: Layer, mem: Memory, m_t: int, k_t: int, n_t: int) -> int:
    """A lower bound on the DMA cycles of any order: every B chunk and every output tile is its own
    transfer at least once, and every input row crosses at least once."""
    g = layer.gemm
    k_first = min(k_t, g.k)
    b = 0
    for nn, cn in _counts(g.n, n_t):
        b += cn * mem.dma_cycles(layer.b_bytes(k_first, nn, True))
        for kk, ck in _counts(g.k, k_t):
            b += cn * (ck - (kk == k_first)) * mem.dma_cycles(layer.b_bytes(kk, nn, False))
    stores = 0 if layer.out_on_chip else sum(cm * cn * mem.dma_cycles(layer.out_bytes(mm, nn))
                                             for mm, cm in _counts(g.m, m_t) for nn, cn in _counts(g.n, n_t))
    a = 0 if layer.a_on_chip else math.floor(g.groups * layer.a_total_bytes / mem.bw)
    return g.groups * (b + stores) + a


def dram_bytes_of(layer: Layer, mem: Memory, m_t: int, k_t: int, n_t: int, order: str) -> int:
    """The DRAM bytes of a tiling in closed form (evaluate's sums, from tile counts)."""
    g = layer.gemm
    m_t, n_t = min(m_t, g.m), min(n_t, g.n)
    a_mode, b_mode = _residency(layer, mem, m_t, n_t, order)
    rows = layer.sum_rows(m_t)
    a = {"chip": 0, "all": layer.a_total_values, "panel": rows * layer.row_values(g.k),
         "none": math.ceil(g.n / n_t) * rows * layer.row_values(g.k)}[a_mode]
    b_loads = 1 if b_mode != "none" else math.ceil(g.m / m_t)
    out = 0 if layer.out_on_chip else sum(c * layer.out_values(mm, g.n) for mm, c in _counts(g.m, m_t))
    return (packed(g.groups * a, layer.a_bits) + packed(g.groups * b_loads * g.k * g.n, layer.w_bits)
            + g.groups * b_loads * CHANNEL_PARAM_BYTES * g.n + packed(g.groups * out, layer.a_bits))


def _counts(extent: int, tile: int) -> list[tuple[int, int]]:
    tile = min(tile, extent)
    full, rest = divmod(extent, tile)
    return [(tile, full)] + ([(rest, 1)] if rest else [])


def candidate_tiles(layer: Layer, cfg: AcceleratorConfig, aligned: bool = True) -> list[tuple[int, int, int]]:
    """The mapper's search space, (m_t, n_t, k_t): per dimension the powers of two aligned to the
    array side it maps to (OS rows <- M, cols <- N; WS/IS cols <- N or M; all powers of two when
    not `aligned`) and the full extent; k in whole channels (multiples of kh * kw) up to all of K."""
    g = layer.gemm
    m_align = {Dataflow.OS: cfg.rows, Dataflow.WS: 1, Dataflow.IS: cfg.cols}[cfg.dataflow] if aligned else 1
    k_cands = sorted({min(g.k, c * layer.window) for c in _candidates(math.ceil(g.k / layer.window), 1)})
    m_cands = _candidates(g.m, m_align) if not layer.pooled else \
        sorted({min(g.m, b * layer.band) for b in _candidates(g.m // layer.band, 1)})  # whole pooling bands
    return list(product(m_cands, _candidates(g.n, cfg.cols if aligned else 1), k_cands))


def map_layer(layer: Layer, cfg: AcceleratorConfig, mem: Memory) -> Mapping:
    """The best tiling: fewest total cycles, then fewest DRAM bytes, then fewest steps. Refuses (one
    line naming the buffer and the shortfall) only when the smallest tile cannot fit."""
    g = layer.gemm
    m0, k0, n0 = smallest_tile(layer)
    first, last = layer.window_rows
    one_pixel_rows = 1 if layer.dense else int(np.max(last - first + 1, initial=0))
    small_a = 0 if layer.a_on_chip or layer.a_total_bytes <= mem.ifmap_half else one_pixel_rows * layer.row_bytes(k0)
    for what, need, have in (("ifmap", small_a, mem.ifmap_half),
                             ("filter", layer.b_bytes(k0, n0, True), mem.filter_half),
                             ("accumulator", m0 * n0 * PSUM_BYTES, mem.acc_half)):
        if need > have:
            raise ConfigError(f"layer {layer.name!r}: its smallest tile needs {need:,} B of {what} SRAM, "
                              f"{need - have:,} B more than half the buffer ({have:,} B)")
    fitting = []
    for aligned in (True, False):  # tiles smaller than the array only when no aligned tile fits
        for m_t, n_t, k_t in candidate_tiles(layer, cfg, aligned) if not fitting else ():
            if fits(layer, mem, m_t, k_t, n_t) is None:
                steps = g.groups * math.ceil(g.m / m_t) * math.ceil(g.n / n_t) * math.ceil(g.k / k_t)
                fitting.append((steps, m_t, n_t, k_t))
    if not fitting:  # the smallest tile fits (checked above) but is not a candidate: take it
        fitting = [(g.groups * g.m * g.n * math.ceil(g.k / k0), m0, n0, k0)]
    cap = max(MAX_STEPS, min(f[0] for f in fitting))
    # Branch and bound: candidates in order of a cheap lower bound (all compute plus the exposed first
    # load and last store); a candidate is evaluated only if its full bound (also: all DMA, and the
    # last step's exposed compute) does not exceed the best total found.
    ranked = sorted((_compute_bound(layer, cfg, m_t, k_t, n_t) + _exposed_cycles(layer, mem, m_t, k_t, n_t),
                     steps, m_t, n_t, k_t) for steps, m_t, n_t, k_t in fitting if steps <= cap)
    best = None
    for cheap, steps, m_t, n_t, k_t in ranked:
        if best is not None and cheap > best[0]:
            break  # every later candidate computes longer than the best takes in all
        dma = _dma_floor(layer, mem, m_t, k_t, n_t) + _last_compute_exposed(layer, cfg, mem, m_t, k_t, n_t)
        if best is not None and dma > best[0]:
            continue
        for order in ("mn", "nm"):
            nbytes = dram_bytes_of(layer, mem, m_t, k_t, n_t, order)
            if best is not None and math.ceil(nbytes / mem.bw) > best[0]:
                continue
            key = (evaluate(layer, cfg, mem, m_t, k_t, n_t, order, total_only=True), nbytes, steps, order)
            if best is None or key < best[0:4]:
                best = (*key, m_t, n_t, k_t)
    best = evaluate(layer, cfg, mem, best[4], best[6], best[5], best[3])
    return best


@dataclass(frozen=True)
class Step:
    """One step of a GEMM schedule: a chunk (group g, rows m0..m0+m of M, k0.., n0..) and the DRAM
    bytes of its A and B tiles and of the output tile it finishes (0 when not the last chunk)."""
    g: int
    m0: int
    m: int
    k0: int
    k: int
    n0: int
    n: int
    a_bytes: int
    b_bytes: int
    store_bytes: int


def schedule(layer: Layer, mem: Memory, mapping: Mapping) -> list[Step]:
    """The mapping's steps in execution order, written as the plain loop nest (the cycle engine runs
    it; tests hold evaluate's vectorized sums equal to it)."""
    g = layer.gemm
    m_t, k_t, n_t = mapping.m_t, mapping.k_t, mapping.n_t
    a_mode, b_mode = _residency(layer, mem, m_t, n_t, mapping.order)
    m_starts, n_starts, k_starts = range(0, g.m, m_t), range(0, g.n, n_t), range(0, g.k, k_t)
    steps = []
    for grp in range(g.groups):
        a_rows_on_chip: set[int] = set()  # "all": the group's input rows loaded so far
        a_done: set = set()      # (m tile, k chunk) pairs whose A is on chip
        b_done: set = set()      # (k chunk, n tile) pairs whose B is on chip
        pairs = [(m0, n0) for m0 in m_starts for n0 in n_starts] if mapping.order == "mn" else \
            [(m0, n0) for n0 in n_starts for m0 in m_starts]
        last_m = None
        for m0, n0 in pairs:
            m, n = min(m_t, g.m - m0), min(n_t, g.n - n0)
            rows = layer.rows_read(m0, m)
            if a_mode == "panel" and last_m != m0:
                a_done = set()  # a new m tile's panel replaces the last one's
            last_m = m0
            new_rows = rows - a_rows_on_chip
            for k0 in k_starts:
                k = min(k_t, g.k - k0)
                row_bytes = layer.row_bytes(k)
                if a_mode == "chip" or (a_mode in ("all", "panel") and (m0, k0) in a_done):
                    a = 0
                elif a_mode == "all":  # rows an earlier m tile read (all channels) are still there
                    a = len(new_rows) * row_bytes
                else:
                    a = len(rows) * row_bytes
                if a_mode in ("all", "panel"):
                    a_done.add((m0, k0))
                b = layer.b_bytes(k, n, k0 == 0)
                if b_mode in ("all", "panel") and (k0, n0) in b_done:
                    b = 0
                if b_mode in ("all", "panel"):
                    b_done.add((k0, n0))
                last = k0 + k == g.k
                store = layer.out_bytes(m, n) if last and not layer.out_on_chip else 0
                steps.append(Step(grp, m0, m, k0, k, n0, n, a, b, store))
            if a_mode == "all":
                a_rows_on_chip |= rows
    return steps


def _parts(total: int, chunks: int) -> np.ndarray:
    """total split into `chunks` near-equal integer parts (summing to total)."""
    i = np.arange(chunks + 1, dtype=np.int64)
    return np.diff(total * i // chunks)


def vector_chunks(mem: Memory, in_bytes: int, out_bytes: int) -> int:
    """Vector ops stream their inputs through the ifmap halves and their results through the
    accumulator halves (as a GEMM's output tiles): this many near-equal chunks fit both."""
    return max(1, math.ceil(in_bytes / mem.ifmap_half), math.ceil(out_bytes / mem.acc_half))


def vector_schedule(mem: Memory, in_bytes: int, in_dram_bytes: int, out_bytes: int, out_dram: bool,
                    compute: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A vector op's steps: per chunk the input bytes loaded from DRAM, the compute cycles and the
    output bytes stored to DRAM (inputs and outputs resident in the activation store move none)."""
    chunks = vector_chunks(mem, in_bytes, out_bytes)
    return _parts(in_dram_bytes, chunks), _parts(compute, chunks), _parts(out_bytes if out_dram else 0, chunks)
