"""SRAM and DRAM traffic of one layer: pure functions, bytes throughout.

The three on-chip buffers (ifmap, filter, ofmap) are each double-buffered: one
half holds the working set the array reads while the other half fills from
DRAM. int8 operands are 1 byte; partial sums are int32 (4 bytes).

Per GEMM layer (G groups of M x K x N, fold plan with Fr row folds and Fc col
folds, tiles of the array size):

  fold working set   OS: A tile min(R,M)*K (ifmap), B tile K*min(C,N) (filter)
                     WS: B tile min(R,K)*min(C,N) (filter), A stream M*min(R,K) (ifmap)
                     IS: A tile min(R,K)*min(C,M) (ifmap), B stream N*min(R,K) (filter)
                     An ifmap tile never exceeds the raw ifmap of its group (im2col is
                     generated from SRAM by the address generator). A tile larger than
                     half its buffer is an error: the layer cannot run one fold.
  DRAM reads         raw ifmap and weights (+8 B per output channel: int32 bias and
                     int32 requant multiplier/shift) once if the whole tensor fits in
                     half its buffer; otherwise the operand the dataflow streams is
                     re-read once per col fold (OS picks the cheaper loop order).
                     WS/IS with Fr > 1 keep int32 partial sums in the ofmap buffer;
                     when 4*M*N does not fit in its half they spill to DRAM
                     (written and read back once per extra row fold).
  DRAM writes        the int8 output once (requantized on the way out), plus spills.
  SRAM reads         every fold reads its tiles: OS A: G*Fc*M*K, B: G*Fr*K*N;
                     WS A: G*Fc*M*K, B: G*K*N; IS A: G*K*M, B: G*Fc*N*K;
                     ofmap: the bytes written back to DRAM, plus partial-sum re-reads.
  SRAM writes        DRAM fills of ifmap and filter, plus outputs (int8, or int32
                     partials 4*G*M*N*Fr when Fr > 1 in WS/IS).
  stall cycles       the first fold's tiles must arrive before compute starts
                     (prologue); afterwards DRAM overlaps compute. So
                     stall = max(prologue, ceil(dram_bytes / bw) - compute_cycles).

Vector-unit layers read their inputs from DRAM and write their output back;
stall = max(0, ceil(dram_bytes / bw) - vector_cycles). Flatten is a view: free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import FoldPlan
from quant.errors import ConfigError

CHANNEL_PARAM_BYTES = 8  # int32 bias + int32 requant multiplier (shift packed alongside)
PSUM_BYTES = 4


@dataclass(frozen=True)
class Traffic:
    """Bytes moved by one layer, per buffer, and its on-chip footprint."""
    ifmap_sram_read: int = 0
    filter_sram_read: int = 0
    ofmap_sram_read: int = 0
    ifmap_sram_write: int = 0
    filter_sram_write: int = 0
    ofmap_sram_write: int = 0
    dram_read: int = 0
    dram_write: int = 0
    footprint: int = 0  # peak bytes resident on chip
    prologue: int = 0  # bytes that must arrive before the first fold can start

    @property
    def sram_read(self) -> int:
        return self.ifmap_sram_read + self.filter_sram_read + self.ofmap_sram_read

    @property
    def sram_write(self) -> int:
        return self.ifmap_sram_write + self.filter_sram_write + self.ofmap_sram_write

    @property
    def dram(self) -> int:
        return self.dram_read + self.dram_write


def _fits(nbytes: int, cfg: AcceleratorConfig, buffer: str) -> bool:
    return nbytes <= cfg.sram_bytes(buffer) // 2


def _require(layer: str, buffer: str, nbytes: int, what: str, cfg: AcceleratorConfig) -> None:
    if not _fits(nbytes, cfg, buffer):
        half = cfg.sram_bytes(buffer) // 2
        raise ConfigError(f"layer {layer!r} cannot fit one {cfg.dataflow.value.upper()} fold: {what} needs "
                          f"{nbytes:,} B of {buffer} SRAM but only {half:,} B is usable "
                          f"({getattr(cfg, buffer + '_sram_kib')} KiB double-buffered); enlarge --sram or the "
                          "array, or pick another dataflow")


def gemm_traffic(layer: str, p: FoldPlan, ifmap_bytes: int, weight_bytes: int, ofmap_bytes: int,
                 cfg: AcceleratorConfig) -> Traffic:
    g, (m, k, n) = p.gemm.groups, (p.gemm.m, p.gemm.k, p.gemm.n)
    fr, fc, r, c = p.row_folds, p.col_folds, p.rows, p.cols
    group_ifmap = math.ceil(ifmap_bytes / g)
    filter_bytes = weight_bytes + CHANNEL_PARAM_BYTES * g * n
    if p.dataflow is Dataflow.OS:
        a_tile, b_tile = min(min(r, m) * k, group_ifmap), k * min(c, n)
        a_what, b_what = f"{min(r, m)} output pixels x K={k} im2col bytes", f"K={k} x {min(c, n)} filters"
        a_reads, b_reads = g * fc * m * k, g * fr * k * n
    elif p.dataflow is Dataflow.WS:
        a_tile, b_tile = min(m * min(r, k), group_ifmap), min(r, k) * min(c, n)
        a_what, b_what = f"M={m} x {min(r, k)} streamed im2col bytes", f"{min(r, k)} x {min(c, n)} stationary weights"
        a_reads, b_reads = g * fc * m * k, g * k * n
    else:
        a_tile, b_tile = min(min(r, k) * min(c, m), group_ifmap), n * min(r, k)
        a_what, b_what = f"{min(r, k)} x {min(c, m)} stationary inputs", f"N={n} x {min(r, k)} streamed weights"
        a_reads, b_reads = g * k * m, g * fc * n * k
    _require(layer, "ifmap", a_tile, a_what, cfg)
    _require(layer, "filter", b_tile, b_what, cfg)

    a_fits, b_fits = _fits(ifmap_bytes, cfg, "ifmap"), _fits(filter_bytes, cfg, "filter")
    if p.dataflow is Dataflow.OS:
        # n-outer re-reads the ifmap per col fold; m-outer re-reads the filters per row fold
        n_outer = ifmap_bytes * (1 if a_fits else fc) + filter_bytes
        m_outer = ifmap_bytes + filter_bytes * (1 if b_fits else fr)
        a_dram, b_dram = (ifmap_bytes * (1 if a_fits else fc), filter_bytes) if n_outer <= m_outer else \
            (ifmap_bytes, filter_bytes * (1 if b_fits else fr))
    elif p.dataflow is Dataflow.WS:
        a_dram, b_dram = ifmap_bytes * (1 if a_fits else fc), filter_bytes
    else:
        a_dram, b_dram = ifmap_bytes, filter_bytes * (1 if b_fits else fc)

    outputs = g * m * n
    partials = p.dataflow is not Dataflow.OS and fr > 1
    spill = 0
    if partials:
        psum_bytes = PSUM_BYTES * m * n
        if not _fits(psum_bytes, cfg, "ofmap"):
            spill = 2 * PSUM_BYTES * outputs * (fr - 1)
        o_write = PSUM_BYTES * outputs * fr
        o_read = PSUM_BYTES * outputs * fr  # fr - 1 accumulate re-reads + the final read into requant
        o_resident = min(psum_bytes, cfg.sram_bytes("ofmap") // 2)
    else:
        o_write = o_read = ofmap_bytes
        o_resident = 2 * min(r * c, ofmap_bytes)
    a_resident = ifmap_bytes if a_fits else 2 * a_tile
    b_resident = filter_bytes if b_fits else 2 * b_tile
    return Traffic(ifmap_sram_read=a_reads, filter_sram_read=b_reads, ofmap_sram_read=o_read,
                   ifmap_sram_write=a_dram, filter_sram_write=b_dram, ofmap_sram_write=o_write,
                   dram_read=a_dram + b_dram + spill // 2, dram_write=ofmap_bytes + spill // 2,
                   footprint=a_resident + b_resident + o_resident, prologue=a_tile + b_tile)


def vector_traffic(in_bytes: int, out_bytes: int) -> Traffic:
    return Traffic(ifmap_sram_read=in_bytes, ifmap_sram_write=in_bytes, ofmap_sram_write=out_bytes,
                   ofmap_sram_read=out_bytes, dram_read=in_bytes, dram_write=out_bytes,
                   footprint=in_bytes + out_bytes)


def dram_cycles(nbytes: int, cfg: AcceleratorConfig) -> int:
    return math.ceil(nbytes / cfg.dram_bytes_per_cycle)


def gemm_stall_cycles(t: Traffic, compute: int, cfg: AcceleratorConfig) -> int:
    return max(dram_cycles(t.prologue, cfg), dram_cycles(t.dram, cfg) - compute)


def vector_stall_cycles(t: Traffic, compute: int, cfg: AcceleratorConfig) -> int:
    return max(0, dram_cycles(t.dram, cfg) - compute)
