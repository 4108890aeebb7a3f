"""The memory system: SRAM buffers, the DRAM link, per-layer traffic and what stays on chip.
Pure functions and frozen dataclasses; bytes and cycles throughout.

Buffers (each double-buffered where it holds tiles: one half is read while the DMA fills the other):
  ifmap   int8 A tiles (raw input rows for hardware im2col)      half = ifmap_sram_kib / 2
  filter  int8 B tiles + per-channel int32 bias and multiplier   half = filter_sram_kib / 2
  acc     int32 partial sums of the output tile being reduced    half = acc_sram_kib / 2
  ofmap   the activation store: layer outputs kept on chip for their consumers (whole buffer)

DRAM link: one transfer of N bytes takes

    dma_cycles(N) = latency + c,   c = the fewest cycles with c * bw >= ceil(N / S) * S

(S = request bytes: a transfer moves whole requests; its requests are pipelined, so the latency is
paid once per transfer; transfers run one after another). N = 0 costs nothing.

Residency (plan_residency): walking the graph in order, a layer output stays in the activation store
when it fits beside every resident tensor that is live over its own lifetime (from its producer to
its last consumer); the graph input and output always cross DRAM. Flatten is a view: its output is
its input. Whatever does not fit goes to DRAM and comes back.

Fused pooling (config fuse_pool, fusable_pools): a non-overlapping MaxPool/AveragePool right after a
conv runs on the vector unit as the conv's output tiles leave the accumulator; the conv stores the
pooled tile, and its unpooled output is never stored anywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.config import AcceleratorConfig
from quant.ir import Graph, Node, Op

CHANNEL_PARAM_BYTES = 8  # int32 bias + int32 requant multiplier (shift packed alongside)
PSUM_BYTES = 4


@dataclass(frozen=True)
class Memory:
    """Bytes of one half of each double-buffered SRAM, the activation store, and the DRAM link."""
    ifmap_half: int
    filter_half: int
    acc_half: int
    store_bytes: int           # the ofmap SRAM: activations kept on chip
    bw: float = 4.0            # DRAM bytes per cycle
    latency: int = 0           # cycles per transfer before its first data
    request_bytes: int = 64    # transfers move whole requests

    @classmethod
    def of(cls, cfg: AcceleratorConfig) -> Memory:
        return cls(cfg.sram_bytes("ifmap") // 2, cfg.sram_bytes("filter") // 2, cfg.sram_bytes("acc") // 2,
                   cfg.sram_bytes("ofmap"), cfg.dram_bytes_per_cycle, cfg.dram_latency_cycles, cfg.dram_request_bytes)

    def dma_array(self, nbytes) -> np.ndarray:
        """dma_cycles of every element (see the module doc)."""
        nbytes = np.asarray(nbytes, dtype=np.int64)
        moved = -(-nbytes // self.request_bytes) * self.request_bytes
        c = np.ceil(moved / self.bw).astype(np.int64)
        c = np.where((c - 1) * self.bw >= moved, c - 1, c)  # the float division may round either way
        c = np.where(c * self.bw < moved, c + 1, c)
        return np.where(nbytes > 0, self.latency + c, 0)

    def dma_cycles(self, nbytes: int) -> int:
        """dma_array of one transfer, in plain Python (the same float operations, so the same result)."""
        if nbytes <= 0:
            return 0
        moved = -(-nbytes // self.request_bytes) * self.request_bytes
        c = math.ceil(moved / self.bw)
        if (c - 1) * self.bw >= moved:
            c -= 1
        if c * self.bw < moved:
            c += 1
        return self.latency + c


@dataclass(frozen=True)
class Traffic:
    """Bytes moved by one layer, per buffer, and its on-chip footprint."""
    ifmap_sram_read: int = 0
    filter_sram_read: int = 0
    acc_sram_read: int = 0
    ofmap_sram_read: int = 0
    ifmap_sram_write: int = 0
    filter_sram_write: int = 0
    acc_sram_write: int = 0
    ofmap_sram_write: int = 0
    dram_read: int = 0
    dram_write: int = 0
    footprint: int = 0  # peak bytes of tiles in use (the resident activations are counted by the caller)

    BUFFERS = ("ifmap", "filter", "acc", "ofmap")

    @property
    def sram_read(self) -> int:
        return sum(getattr(self, f"{b}_sram_read") for b in self.BUFFERS)

    @property
    def sram_write(self) -> int:
        return sum(getattr(self, f"{b}_sram_write") for b in self.BUFFERS)

    @property
    def dram(self) -> int:
        return self.dram_read + self.dram_write


@dataclass(frozen=True)
class Residency:
    """Which tensors stay in the activation store, and the store's bytes in use at each node."""
    on_chip: frozenset[str]
    store_bytes: tuple[int, ...]  # per node of graph.nodes: resident bytes live while it runs


def tensor_bytes(graph: Graph, tensor: str, batch: int, bits: int = 8) -> int:
    """Bytes of an activation tensor of `bits`-bit values, packed."""
    return -(-batch * math.prod(graph.shape_of(tensor)[1:]) * bits // 8)


def fusable_pools(graph: Graph) -> dict[str, Node]:
    """Conv name -> the pool that can run on its store path: a MaxPool/AveragePool that is the conv's
    only consumer, with non-overlapping windows (stride = kernel, no padding, no ceil_mode) that
    tile the conv's output exactly; the conv ungrouped and not the graph output."""
    out = {}
    for node in graph.nodes:
        if node.op is not Op.CONV or node.attrs.groups != 1 or node.output == graph.output:
            continue
        users = graph.consumers(node.output)
        if len(users) != 1 or users[0].op not in (Op.MAXPOOL, Op.AVGPOOL):
            continue
        a, (oh, ow) = users[0].attrs, node.out_shape[2:]
        if (tuple(a.kernel) == tuple(a.stride) and not any(a.pads) and not a.ceil_mode
                and oh % a.kernel[0] == 0 and ow % a.kernel[1] == 0):
            out[node.name] = users[0]
    return out


def plan_residency(graph: Graph, batch: int, store_bytes: int, bits: int = 8,
                   fused: dict[str, Node] | None = None) -> Residency:
    """Greedy in graph order: an output stays on chip when it fits beside the resident tensors live
    over its lifetime (see the module doc). `fused` (conv name -> pool): the conv's own output is
    never stored, and the pool's output is written by the conv."""
    nodes = graph.nodes
    fused = fused or {}
    unstored = {n.output for n in nodes if n.name in fused}
    start = {fused[n.name].output: i for i, n in enumerate(nodes) if n.name in fused}
    alias = {}  # Flatten output -> the tensor it views
    for n in nodes:
        if n.op is Op.FLATTEN:
            alias[n.output] = alias.get(n.inputs[0], n.inputs[0])
    must_cross = {graph.output, alias.get(graph.output, graph.output)}
    last_use = {}
    for i, n in enumerate(nodes):
        for t in n.inputs:
            last_use[alias.get(t, t)] = i
    live = [0] * len(nodes)
    on_chip = set()
    for i, n in enumerate(nodes):
        t = n.output
        if t in alias or t in must_cross or t not in last_use or t in unstored:
            continue
        first, end = start.get(t, i), last_use[t]
        size = tensor_bytes(graph, t, batch, bits)
        if all(live[j] + size <= store_bytes for j in range(first, end + 1)):
            on_chip.add(t)
            for j in range(first, end + 1):
                live[j] += size
    on_chip |= {a for a, src in alias.items() if src in on_chip}
    return Residency(frozenset(on_chip), tuple(live))
