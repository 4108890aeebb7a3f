"""The tiler and mapper (issue 14, first step): every GEMM layer as a loop nest over tiles that fit
the SRAM halves, K split into chunks that accumulate in place, and a per-tile DMA pipeline.

Not yet used by `hwsim map`, the cycle engine or the RTL: this module is the schedule they will
share. Pure functions; bytes and cycles throughout.

The machine (DESIGN.md's accelerator): ifmap and filter SRAMs hold int8 operands, an accumulator
SRAM holds int32 partial sums; each is double-buffered, so a tile's operands must fit half of their
buffer while the DMA fills the other half. Behind them a DRAM of `bw` bytes/cycle; every request of
up to `request_bytes` pays `latency` cycles (requests are not overlapped: a simple DMA engine).

Loop nest of one GEMM (G groups of M x K x N), tile (m_t, k_t, n_t):

    for g in groups:
      for the outer of (m tiles, n tiles):       order "mn" or "nm"
        for the inner of them:
          for k chunk in K:                       k innermost: an output tile's partial sums
            load A(m, k) and B(k, n) unless resident;   stay in the accumulator SRAM until the
            compute the chunk                           last chunk, are requantized and stored once
          store the int8 output tile              (partial sums never go to DRAM)

Hardware im2col: A(m, k) of a conv is the raw input rows the m_t output pixels' windows read (halo
included) for the k chunk's channels (k chunks are whole channels: multiples of kh * kw); the
expanded matrix never exists. Residency: with order "mn" the A panel of an m tile (all of K) stays
in the ifmap half across the n loop when it fits (else it is re-read per n tile), and all of B stays
when it fits (else B is re-read per m tile); "nm" is the mirror image.

Compute per chunk (hwsim's fold formula, hwsim.timing.compute_cycles): WS/IS run each chunk as its
own GEMM (m_t, k_t, n_t); OS keeps the output tile in the PE accumulators and streams its K chunks
back to back, so an OS tile costs compute_cycles(m_t, K, n_t), split over its chunks by k_t.

Timing is a per-chunk pipeline: the DMA loads chunk i+1 (and stores any output tile finished
before it) while chunk i computes; the first load and the last store are exposed:

    total = dma(first load) + sum_i max(compute_i, dma_i+1) + dma(last store)

The mapper searches tile sizes (array-aligned powers of two and the full extent, per dimension) and
both orders exhaustively, keeping the fewest total cycles, then the fewest DRAM bytes (tilings of
more than MAX_STEPS steps are skipped when one of fewer fits). Not modelled yet: line-buffer reuse of
the input rows that neighbouring m tiles share (each m tile loads its own rows, halo included), so a
small-m tiling that wins on cycles by a shorter exposed first load can read the input more than once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import Gemm, gemm_of, plan
from hwsim.timing import compute_cycles
from quant.errors import ConfigError
from quant.ir import Node, Op

PSUM_BYTES = 4
CHANNEL_PARAM_BYTES = 8  # int32 bias + int32 requant multiplier (shift packed alongside)
MAX_STEPS = 1 << 14      # the mapper skips tilings of more pipeline steps when a tiling of fewer fits


@dataclass(frozen=True)
class Memory:
    """Bytes of one half of each double-buffered SRAM, and the DRAM link."""
    ifmap_half: int
    filter_half: int
    acc_half: int
    bw: float = 4.0            # DRAM bytes per cycle
    latency: int = 0           # cycles per DRAM request
    request_bytes: int = 64    # bytes per DRAM request

    @classmethod
    def of(cls, cfg: AcceleratorConfig, acc_kib: int | None = None, latency: int = 0,
           request_bytes: int = 64) -> Memory:
        """The config's buffers; the accumulator SRAM is the ofmap buffer until its own key exists."""
        acc = (acc_kib if acc_kib is not None else cfg.ofmap_sram_kib) * 1024
        return cls(cfg.sram_bytes("ifmap") // 2, cfg.sram_bytes("filter") // 2, acc // 2,
                   cfg.dram_bytes_per_cycle, latency, request_bytes)

    def dma_array(self, nbytes: np.ndarray) -> np.ndarray:
        """dma_cycles of every element."""
        nbytes = np.asarray(nbytes, dtype=np.int64)
        cycles = np.ceil(nbytes / self.bw).astype(np.int64) + self.latency * -(-nbytes // self.request_bytes)
        return np.where(nbytes > 0, cycles, 0)

    def dma_cycles(self, nbytes: int) -> int:
        return int(self.dma_array(np.array([nbytes]))[0])


@dataclass(frozen=True)
class Layer:
    """A GEMM layer with the geometry hardware im2col needs (a Dense layer is a 1x1 'conv')."""
    name: str
    gemm: Gemm
    in_h: int = 1
    in_w: int = 1
    channels: int = 1      # input channels per group
    kh: int = 1
    kw: int = 1
    stride: int = 1        # vertical stride
    dilation: int = 1      # vertical dilation
    out_w: int = 1         # output pixels per output row (M runs over rows of out_w pixels)
    out_h: int = 1         # output rows per image
    dense: bool = True

    @classmethod
    def of(cls, node: Node, batch: int = 1) -> Layer:
        gemm = gemm_of(node, batch)
        if node.op is Op.DENSE:
            return cls(node.name, gemm, channels=gemm.k)
        a = node.attrs
        return cls(node.name, gemm, in_h=node.in_shape[2], in_w=node.in_shape[3],
                   channels=node.in_shape[1] // a.groups, kh=a.kernel[0], kw=a.kernel[1], stride=a.stride[0],
                   dilation=a.dilation[0], out_w=node.out_shape[3], out_h=node.out_shape[2], dense=False)

    @property
    def window(self) -> int:
        return self.kh * self.kw

    def a_bytes(self, m_t: int, k_t: int) -> int:
        """ifmap bytes of one A chunk: m_t x k_t for Dense, the raw input rows for a conv."""
        if self.dense:
            return m_t * k_t
        images = max(1, self.gemm.m // (self.out_w * self.out_h))
        out_rows = min(math.ceil(m_t / self.out_w) + (1 if m_t % self.out_w else 0), images * self.out_h)
        if out_rows <= self.out_h:
            in_rows = min(self.in_h, (out_rows - 1) * self.stride + self.dilation * (self.kh - 1) + 1)
        else:  # the tile spans images: whole input images (a conservative bound)
            in_rows = min(images, math.ceil(out_rows / self.out_h) + 1) * self.in_h
        return in_rows * self.in_w * math.ceil(k_t / self.window)

    def b_bytes(self, k_t: int, n_t: int, first: bool) -> int:
        """filter bytes of one B chunk; the per-channel parameters come with the first k chunk."""
        return k_t * n_t + (CHANNEL_PARAM_BYTES * n_t if first else 0)


@dataclass(frozen=True)
class Mapping:
    """One layer's chosen schedule and its cost."""
    layer: str
    m_t: int
    k_t: int
    n_t: int
    order: str                 # "mn" (m tiles outer) or "nm"
    chunks: int                # pipeline steps (groups x m tiles x n tiles x k chunks)
    compute_cycles: int
    total_cycles: int
    dram_read_bytes: int
    dram_write_bytes: int
    footprint_bytes: int       # peak bytes of the three halves in use

    @property
    def stall_cycles(self) -> int:
        return self.total_cycles - self.compute_cycles

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes

    def to_dict(self) -> dict:
        return {"layer": self.layer, "tile": {"m": self.m_t, "k": self.k_t, "n": self.n_t}, "order": self.order,
                "chunks": self.chunks, "compute_cycles": self.compute_cycles, "stall_cycles": self.stall_cycles,
                "total_cycles": self.total_cycles, "dram_read_bytes": self.dram_read_bytes,
                "dram_write_bytes": self.dram_write_bytes, "footprint_bytes": self.footprint_bytes}


def compulsory_dram_bytes(layer: Layer) -> int:
    """Weights (+ channel parameters) and the raw input read once, the output written once."""
    g = layer.gemm
    a = g.groups * layer.a_bytes(g.m, g.k)
    return a + g.groups * layer.b_bytes(g.k, g.n, True) + g.groups * g.m * g.n


def _table(fn, *axes: np.ndarray) -> np.ndarray:
    """fn over broadcast integer arrays, called once per distinct combination (tiles come in at most
    two sizes per dimension: the full tile and the remainder)."""
    uniques, inverses = zip(*(np.unique(a, return_inverse=True) for a in axes), strict=True)
    values = np.empty(tuple(len(u) for u in uniques), dtype=np.int64)
    for idx in np.ndindex(values.shape):
        values[idx] = fn(*(int(u[i]) for u, i in zip(uniques, idx, strict=True)))
    return values[tuple(inv.reshape(a.shape) for inv, a in zip(inverses, axes, strict=True))]


def evaluate(layer: Layer, cfg: AcceleratorConfig, mem: Memory, m_t: int, k_t: int, n_t: int,
             order: str) -> Mapping | None:
    """The cost of one tiling, or None when its tiles do not fit their halves. Vectorized over the
    pipeline's steps (one group's steps in loop order, repeated for every group)."""
    g = layer.gemm
    if (layer.a_bytes(m_t, k_t) > mem.ifmap_half or layer.b_bytes(k_t, n_t, True) > mem.filter_half
            or m_t * n_t * PSUM_BYTES > mem.acc_half):
        return None
    ms, ks, ns = (np.array([min(t, e - s) for s in range(0, e, t)], dtype=np.int64)
                  for e, t in ((g.m, m_t), (g.k, k_t), (g.n, n_t)))
    a_panel = layer.a_bytes(m_t, g.k)
    b_all = layer.b_bytes(g.k, g.n, True)
    if order == "mn":  # axes (m tiles, n tiles, k chunks)
        a_resident, b_resident = a_panel <= mem.ifmap_half, b_all <= mem.filter_half
        m, n = ms[:, None, None], ns[None, :, None]
        first_a = np.arange(len(ns))[None, :, None] == 0
        first_b = np.arange(len(ms))[:, None, None] == 0
    else:              # axes (n tiles, m tiles, k chunks)
        a_resident = layer.a_bytes(g.m, g.k) <= mem.ifmap_half
        b_resident = layer.b_bytes(g.k, n_t, True) <= mem.filter_half
        m, n = ms[None, :, None], ns[:, None, None]
        first_a = np.arange(len(ns))[:, None, None] == 0
        first_b = np.arange(len(ms))[None, :, None] == 0
    k = ks[None, None, :]
    k_first = np.arange(len(ks))[None, None, :] == 0
    k_last = np.arange(len(ks))[None, None, :] == len(ks) - 1
    shape = np.broadcast_shapes(m.shape, n.shape, k.shape)
    a = np.broadcast_to(_table(layer.a_bytes, m, k), shape)
    b = k * n + CHANNEL_PARAM_BYTES * n * k_first
    loads = np.where(a_resident & ~first_a, 0, a) + np.where(b_resident & ~first_b, 0, b)
    if cfg.dataflow is Dataflow.OS:  # the tile streams K through the PE accumulators; chunks share it
        tile = _table(lambda mm, nn: compute_cycles(plan(Gemm(mm, g.k, nn), cfg, Dataflow.OS)), m, n)
        cum = np.concatenate([[0], np.cumsum(ks)])
        computes = tile * cum[None, None, 1:] // g.k - tile * cum[None, None, :-1] // g.k
    else:
        computes = _table(lambda mm, kk, nn: compute_cycles(plan(Gemm(mm, kk, nn), cfg)), m, k, n)
    stores = m * n * k_last
    loads, computes, stores = (np.tile(np.broadcast_to(x, shape).ravel(), g.groups) for x in (loads, computes, stores))
    dma = mem.dma_array
    dma_next = np.concatenate([dma(loads[1:]), [0]]) + np.concatenate([[0], dma(stores[:-1])])
    total = int(dma(loads[:1])[0] + np.maximum(computes, dma_next).sum() + dma(stores[-1:])[0])
    footprint = (min(a_panel if a_resident and order == "mn" else layer.a_bytes(m_t, k_t), mem.ifmap_half) * 2
                 + min(b_all if b_resident and order == "mn" else layer.b_bytes(k_t, n_t, True), mem.filter_half) * 2
                 + m_t * n_t * PSUM_BYTES * 2)
    return Mapping(layer.name, m_t, k_t, n_t, order, int(computes.size), int(computes.sum()), total,
                   int(loads.sum()), g.groups * g.m * g.n, footprint)


def _candidates(extent: int, align: int) -> list[int]:
    """Array-aligned powers of two up to the extent, and the extent itself."""
    sizes = {extent}
    size = max(1, align)
    while size < extent:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


def smallest_tile(layer: Layer) -> tuple[int, int, int]:
    return 1, (1 if layer.dense else layer.window), 1


def map_layer(layer: Layer, cfg: AcceleratorConfig, mem: Memory) -> Mapping:
    """The best tiling: fewest total cycles, then fewest DRAM bytes, then the largest tiles.
    Refuses (one line naming the buffer and the shortfall) only when the smallest tile cannot fit."""
    g = layer.gemm
    m0, k0, n0 = smallest_tile(layer)
    for what, need, have in (("ifmap", layer.a_bytes(m0, k0), mem.ifmap_half),
                             ("filter", layer.b_bytes(k0, n0, True), mem.filter_half),
                             ("accumulator", m0 * n0 * PSUM_BYTES, mem.acc_half)):
        if need > have:
            raise ConfigError(f"layer {layer.name!r}: its smallest tile needs {need:,} B of {what} SRAM, "
                              f"{need - have:,} B more than half the buffer ({have:,} B)")
    m_align = {Dataflow.OS: cfg.rows, Dataflow.WS: 1, Dataflow.IS: cfg.cols}[cfg.dataflow]  # M's array side
    k_step = 1 if layer.dense else layer.window
    k_cands = sorted({min(g.k, c * k_step) for c in _candidates(math.ceil(g.k / k_step), 1)})
    fitting = []
    for m_t, n_t, k_t in product(_candidates(g.m, m_align), _candidates(g.n, cfg.cols), k_cands):
        if (layer.a_bytes(m_t, k_t) <= mem.ifmap_half and layer.b_bytes(k_t, n_t, True) <= mem.filter_half
                and m_t * n_t * PSUM_BYTES <= mem.acc_half):
            steps = g.groups * math.ceil(g.m / m_t) * math.ceil(g.n / n_t) * math.ceil(g.k / k_t)
            fitting.append((steps, m_t, n_t, k_t))
    if not fitting:  # the smallest tile fits (checked above) but is not a candidate: take it
        fitting = [(0, m0, n0, k0)]
    # Tiles that take more than MAX_STEPS pipeline steps are not searched when fewer-step ones exist:
    # they only add per-tile overhead (and evaluating them costs time and memory).
    cap = max(MAX_STEPS, min(f[0] for f in fitting))
    best: Mapping | None = None
    for steps, m_t, n_t, k_t in fitting:
        if steps > cap:
            continue
        for order in ("mn", "nm"):
            found = evaluate(layer, cfg, mem, m_t, k_t, n_t, order)
            key = (found.total_cycles, found.dram_bytes, -(m_t * n_t * k_t))
            if best is None or key < (best.total_cycles, best.dram_bytes, -(best.m_t * best.n_t * best.k_t)):
                best = found
    return best


def map_network(nodes: list[Node], cfg: AcceleratorConfig, mem: Memory, batch: int = 1) -> list[Mapping]:
    """Every GEMM layer's best mapping."""
    return [map_layer(Layer.of(n, batch), cfg, mem) for n in nodes if n.op in (Op.CONV, Op.DENSE)]
