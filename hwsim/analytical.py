"""The analytical engine: closed-form cycles, traffic and utilization per layer.

GEMM layers (Conv, Dense) run on the array as the tiled schedule hwsim.tiling maps for them (tile
sizes, loop order, K chunks; compute per chunk from hwsim.timing, stalls from the step pipeline);
every other op runs on the vector unit of L lanes, one element-op per lane per cycle:

    vector_cycles = ceil(batch * work / L)
    work: MaxPool/AvgPool  out elements * kh * kw     GlobalAvgPool  in elements
          Add, Activation, Pad  out elements          Softmax  3 * elements (max, exp+sum, divide)
          Flatten  0 (a view)
streamed in chunks through the same pipeline (hwsim.tiling.vector_schedule). Requantization of GEMM
outputs happens on the accumulator's drain path: its pipeline adds hwsim.timing.WRITEBACK_CYCLES to
each GEMM chunk's compute, nothing per value. What stays on chip between
layers: hwsim.memory.plan_residency.

    total_cycles = compute_cycles + stall_cycles
    utilization  = MACs / (R * C * total_cycles)      (GEMM layers; 0 on the vector unit)
    latency_s    = total_cycles / clock
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from hwsim import memory, tiling, timing
from hwsim.config import AcceleratorConfig
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from quant.ir import Graph, Node, Op


@dataclass(frozen=True)
class LayerResult:
    name: str
    op: str
    unit: str  # "array" or "vector"
    m: int = 0
    k: int = 0
    n: int = 0
    groups: int = 1
    folds: int = 0
    macs: int = 0
    compute_cycles: int = 0
    stall_cycles: int = 0
    utilization: float = 0.0
    mapping_efficiency: float = 0.0
    sram_read_bytes: int = 0
    sram_write_bytes: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    footprint_bytes: int = 0  # tiles in use + resident activations, while this layer runs
    tile: tuple[int, int, int] = (0, 0, 0)  # GEMM tile (m, k, n) of the mapping
    order: str = ""  # loop order of the tiles: "mn" (m outer) or "nm"
    steps: int = 0  # pipeline steps (chunks on the array, or vector chunks)
    input_on_chip: bool = False  # read from the activation store, not DRAM
    output_on_chip: bool = False  # kept in the activation store for its consumers
    pool_cycles: int = 0  # vector-unit cycles of a pool fused on this layer's store path
    fused_into: str = ""  # a pool run on this layer's producer's store path: its row costs nothing
    traffic: memory.Traffic = field(default_factory=memory.Traffic, repr=False)

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["traffic"]
        d["total_cycles"] = self.total_cycles
        d["tile"] = {"m": self.tile[0], "k": self.tile[1], "n": self.tile[2]}
        d["sram_bytes"] = {f"{b}_{rw}": getattr(self.traffic, f"{b}_sram_{rw}")
                           for b in memory.Traffic.BUFFERS for rw in ("read", "write")}
        return d


@dataclass(frozen=True)
class MapResult:
    model: str
    config: AcceleratorConfig
    batch: int
    engine: str  # "analytical" or "cycle"
    timing: str  # "hwsim" or "scalesim"
    layers: tuple[LayerResult, ...]

    @property
    def total_cycles(self) -> int:
        return sum(r.total_cycles for r in self.layers)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.layers)

    @property
    def latency_s(self) -> float:
        return self.total_cycles / (self.config.clock_mhz * 1e6)

    @property
    def peak_footprint_bytes(self) -> int:
        return max((r.footprint_bytes for r in self.layers), default=0)

    @property
    def utilization(self) -> float:
        return self.total("macs") / (self.config.pes * self.total_cycles) if self.total_cycles else 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "engine": self.engine, "timing": self.timing, "batch": self.batch,
                "config": self.config.to_dict(), "layers": [r.to_dict() for r in self.layers],
                "total_cycles": self.total_cycles, "total_compute_cycles": self.total("compute_cycles"),
                "total_stall_cycles": self.total("stall_cycles"), "total_macs": self.total("macs"),
                "utilization": self.utilization, "latency_s": self.latency_s,
                "dram_read_bytes": self.total("dram_read_bytes"), "dram_write_bytes": self.total("dram_write_bytes"),
                "peak_footprint_bytes": self.peak_footprint_bytes}



def vector_work(node: Node) -> int:
    """Element-ops per image on the vector unit (one lane does one per cycle):
    MaxPool/AvgPool: one per window element (kernel area per output); GlobalAvgPool: one per input;
    Softmax: three per output (max, exp look-up and sum, divide); Flatten/Reshape: none (a view);
    everything else, one per output value: activations (a clamp in the requantizer or an int8 table
    look-up), Add and Mul (a product/sum and a requantization), Concat (each input requantized to the
    output scale as it is copied), Slice, ChannelShuffle and Resize (a copy through a gather address),
    ZeroInsert (every output written, the inserted zeros included)."""
    out = math.prod(node.out_shape[1:])
    if node.op in (Op.MAXPOOL, Op.AVGPOOL):
        return out * math.prod(node.attrs.kernel)
    if node.op is Op.GLOBAL_AVGPOOL:
        return math.prod(node.in_shape[1:])
    if node.op is Op.SOFTMAX:
        return 3 * out
    if node.op is Op.FLATTEN:
        return 0
    return out


def gemm_layer(node: Node, layer: tiling.Layer, m: tiling.Mapping, compute_cycles: int, stall_cycles: int,
               cfg: AcceleratorConfig, store_bytes: int) -> LayerResult:
    """One array layer's row from its mapping and the cycles an engine found for it."""
    g, t = layer.gemm, m.traffic
    total = compute_cycles + stall_cycles
    return LayerResult(name=node.name, op=node.op.value, unit="array", m=g.m, k=g.k, n=g.n, groups=g.groups,
                       folds=m.folds, macs=g.macs, compute_cycles=compute_cycles, stall_cycles=stall_cycles,
                       utilization=g.macs / (cfg.pes * total) if total else 0.0,
                       mapping_efficiency=plan(g, cfg).mapping_efficiency, sram_read_bytes=t.sram_read,
                       sram_write_bytes=t.sram_write, dram_read_bytes=t.dram_read, dram_write_bytes=t.dram_write,
                       footprint_bytes=t.footprint + store_bytes, tile=(m.m_t, m.k_t, m.n_t), order=m.order,
                       steps=m.steps, input_on_chip=layer.a_on_chip, output_on_chip=layer.out_on_chip,
                       pool_cycles=m.pool_cycles, traffic=t)


@dataclass(frozen=True)
class VectorOp:
    """A vector-unit layer's bytes and work, before timing."""
    in_bytes: int
    in_dram_bytes: int  # of in_bytes, what is not resident
    out_bytes: int
    out_on_chip: bool
    compute_cycles: int

    def schedule(self, mem: memory.Memory):
        return tiling.vector_schedule(mem, self.in_bytes, self.in_dram_bytes, self.out_bytes, not self.out_on_chip,
                                      self.compute_cycles)


def vector_op(node: Node, graph: Graph, cfg: AcceleratorConfig, batch: int, on_chip: frozenset[str],
              act_bits: int = 8) -> VectorOp:
    ins = [memory.tensor_bytes(graph, t, batch, act_bits) for t in node.inputs]
    in_dram = sum(b for t, b in zip(node.inputs, ins, strict=True) if t not in on_chip)
    return VectorOp(sum(ins), in_dram, memory.tensor_bytes(graph, node.output, batch, act_bits),
                    node.output in on_chip,
                    math.ceil(batch * vector_work(node) / cfg.vector_lanes))


def vector_layer(node: Node, op: VectorOp, mem: memory.Memory, compute_cycles: int, stall_cycles: int,
                 store_bytes: int) -> LayerResult:
    """One vector-unit layer's row; Flatten (a view) moves nothing and takes no time."""
    if node.op is Op.FLATTEN:
        return LayerResult(name=node.name, op=node.op.value, unit="vector", input_on_chip=op.out_on_chip,
                           output_on_chip=op.out_on_chip)
    loads, _, stores = op.schedule(mem)
    chunks = len(loads)
    resident_in = op.in_bytes - op.in_dram_bytes
    staged_out = int(stores.sum())
    t = memory.Traffic(ifmap_sram_write=op.in_dram_bytes, ifmap_sram_read=op.in_dram_bytes,
                       ofmap_sram_read=resident_in, ofmap_sram_write=0 if staged_out else op.out_bytes,
                       acc_sram_write=staged_out, acc_sram_read=staged_out,
                       dram_read=op.in_dram_bytes, dram_write=staged_out,
                       footprint=2 * math.ceil(op.in_dram_bytes / chunks) + 2 * math.ceil(staged_out / chunks))
    return LayerResult(name=node.name, op=node.op.value, unit="vector", compute_cycles=compute_cycles,
                       stall_cycles=stall_cycles, sram_read_bytes=t.sram_read, sram_write_bytes=t.sram_write,
                       dram_read_bytes=t.dram_read, dram_write_bytes=t.dram_write,
                       footprint_bytes=t.footprint + store_bytes, steps=chunks,
                       input_on_chip=op.in_dram_bytes == 0, output_on_chip=op.out_on_chip, traffic=t)


@dataclass(frozen=True)
class NetworkPlan:
    """What the compiler decides for a whole graph before any layer is timed: the memory, the pools
    fused on a conv's store path, what stays on chip, and every GEMM layer's tiler input."""
    mem: memory.Memory
    fused: dict[str, Node]  # conv name -> its fused pool
    residency: memory.Residency
    layers: dict[str, tiling.Layer]  # GEMM node name -> its tiler layer

    @property
    def fused_into(self) -> dict[str, str]:
        return {pool.name: conv for conv, pool in self.fused.items()}


def plan_network(graph: Graph, cfg: AcceleratorConfig, batch: int = 1, weight_bits: int = 8,
                 act_bits: int = 8) -> NetworkPlan:
    """One plan for both engines. A pool is fused (cfg.fuse_pool) only where hwsim.memory allows it
    and a tile of one band of pooling windows fits the buffers."""
    mem = memory.Memory.of(cfg)
    fused = {}
    if cfg.fuse_pool:
        for conv, pool in memory.fusable_pools(graph).items():
            node = next(n for n in graph.nodes if n.name == conv)
            layer = tiling.Layer.of(node, batch, w_bits=weight_bits, a_bits=act_bits, pool=pool.attrs.kernel)
            if tiling.fits(layer, mem, *tiling.smallest_tile(layer)) is None:
                fused[conv] = pool
    res = memory.plan_residency(graph, batch, mem.store_bytes, act_bits, fused)
    layers = {}
    for node in graph.nodes:
        if node.op in GEMM_OPS:
            pool = fused.get(node.name)
            out = pool.output if pool else node.output
            layers[node.name] = tiling.Layer.of(node, batch, node.inputs[0] in res.on_chip, out in res.on_chip,
                                                weight_bits, act_bits, pool.attrs.kernel if pool else (1, 1))
    return NetworkPlan(mem, fused, res, layers)


def fused_layer(node: Node, conv: str) -> LayerResult:
    """The row of a pool that runs on `conv`'s store path: its cycles and bytes are in conv's row."""
    return LayerResult(name=node.name, op=node.op.value, unit="vector", fused_into=conv, input_on_chip=True,
                       output_on_chip=True)


def map_graph(graph: Graph, cfg: AcceleratorConfig, batch: int = 1, timing_model: str = "hwsim",
              weight_bits: int = 8, act_bits: int = 8) -> MapResult:
    """Map every layer of `graph` (float or quantized: only shapes matter) onto `cfg`, weights and
    activations stored packed at `weight_bits`/`act_bits` bits. With timing "scalesim" an array
    layer's compute cycles are SCALE-Sim 3.0's for the whole untiled layer and it has no stalls
    (SCALE-Sim's CALC mode); its bytes are still the mapped schedule's."""
    net = plan_network(graph, cfg, batch, weight_bits, act_bits)
    mem, res, fused_into = net.mem, net.residency, net.fused_into
    layers = []
    for i, node in enumerate(graph.nodes):
        if node.name in fused_into:
            layers.append(fused_layer(node, fused_into[node.name]))
        elif node.op in GEMM_OPS:
            layer = net.layers[node.name]
            m = tiling.map_layer(layer, cfg, mem)
            if timing_model == "hwsim":
                compute, stall = m.compute_cycles, m.stall_cycles
            else:
                compute, stall = timing.TIMINGS[timing_model](plan(gemm_of(node, batch), cfg)), 0
            layers.append(gemm_layer(node, layer, m, compute, stall, cfg, res.store_bytes[i]))
        else:
            op = vector_op(node, graph, cfg, batch, res.on_chip, act_bits)
            loads, computes, stores = op.schedule(mem)
            total = tiling.pipeline_cycles(mem, loads, 0 * loads, computes, stores) if node.op is not Op.FLATTEN else 0
            layers.append(vector_layer(node, op, mem, op.compute_cycles, total - op.compute_cycles,
                                       res.store_bytes[i]))
    return MapResult(model=graph.name, config=cfg, batch=batch, engine="analytical", timing=timing_model,
                     layers=tuple(layers))
