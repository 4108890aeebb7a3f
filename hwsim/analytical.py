"""The analytical engine: closed-form cycles, traffic and utilization per layer.

GEMM layers (Conv, Dense) run on the array (hwsim.timing for cycles,
hwsim.memory for bytes and stalls); every other op runs on the vector unit of
L lanes, one element-op per lane per cycle:

    vector_cycles = ceil(batch * work / L)
    work: MaxPool/AvgPool  out elements * kh * kw     GlobalAvgPool  in elements
          Add, Activation, Pad  out elements          Softmax  3 * elements (max, exp+sum, divide)
          Flatten  0 (a view)
Requantization of GEMM outputs happens in the drain path and costs no cycles.

    total_cycles = compute_cycles + stall_cycles
    utilization  = MACs / (R * C * total_cycles)      (GEMM layers; 0 on the vector unit)
    latency_s    = total_cycles / clock
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from hwsim import memory, timing
from hwsim.config import AcceleratorConfig
from hwsim.mapping import GEMM_OPS, FoldPlan, gemm_of, plan
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
    footprint_bytes: int = 0
    traffic: memory.Traffic = field(default_factory=memory.Traffic, repr=False)

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["traffic"]
        d["total_cycles"] = self.total_cycles
        d["sram_bytes"] = {f"{b}_{rw}": getattr(self.traffic, f"{b}_sram_{rw}")
                           for b in ("ifmap", "filter", "ofmap") for rw in ("read", "write")}
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


def _bytes_of(shape: tuple[int, ...], batch: int) -> int:
    return batch * math.prod(shape[1:])


def vector_work(node: Node) -> int:
    """Element-ops per image on the vector unit."""
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


def gemm_layer(node: Node, fold_plan: FoldPlan, compute_cycles: int, cfg: AcceleratorConfig, batch: int,
               with_stalls: bool = True) -> LayerResult:
    t = memory.gemm_traffic(node.name, fold_plan, _bytes_of(node.in_shape, batch), node.weights_count,
                            _bytes_of(node.out_shape, batch), cfg)
    stall = memory.gemm_stall_cycles(t, compute_cycles, cfg) if with_stalls else 0
    g = fold_plan.gemm
    return LayerResult(name=node.name, op=node.op.value, unit="array", m=g.m, k=g.k, n=g.n, groups=g.groups,
                       folds=fold_plan.folds, macs=g.macs, compute_cycles=compute_cycles, stall_cycles=stall,
                       utilization=g.macs / (cfg.pes * (compute_cycles + stall)),
                       mapping_efficiency=fold_plan.mapping_efficiency, sram_read_bytes=t.sram_read,
                       sram_write_bytes=t.sram_write, dram_read_bytes=t.dram_read, dram_write_bytes=t.dram_write,
                       footprint_bytes=t.footprint, traffic=t)


def vector_layer(node: Node, graph: Graph, cfg: AcceleratorConfig, batch: int) -> LayerResult:
    if node.op is Op.FLATTEN:
        return LayerResult(name=node.name, op=node.op.value, unit="vector")
    in_bytes = sum(_bytes_of(graph.shape_of(t), batch) for t in node.inputs)
    t = memory.vector_traffic(in_bytes, _bytes_of(node.out_shape, batch))
    cycles = math.ceil(batch * vector_work(node) / cfg.vector_lanes)
    return LayerResult(name=node.name, op=node.op.value, unit="vector", compute_cycles=cycles,
                       stall_cycles=memory.vector_stall_cycles(t, cycles, cfg), sram_read_bytes=t.sram_read,
                       sram_write_bytes=t.sram_write, dram_read_bytes=t.dram_read, dram_write_bytes=t.dram_write,
                       footprint_bytes=t.footprint, traffic=t)


def map_graph(graph: Graph, cfg: AcceleratorConfig, batch: int = 1, timing_model: str = "hwsim") -> MapResult:
    """Map every layer of `graph` (float or quantized: only shapes matter) onto `cfg`."""
    cycles_of = timing.TIMINGS[timing_model]
    layers = []
    for node in graph.nodes:
        if node.op in GEMM_OPS:
            p = plan(gemm_of(node, batch), cfg)
            layers.append(gemm_layer(node, p, cycles_of(p), cfg, batch, with_stalls=timing_model == "hwsim"))
        else:
            layers.append(vector_layer(node, graph, cfg, batch))
    return MapResult(model=graph.name, config=cfg, batch=batch, engine="analytical", timing=timing_model,
                     layers=tuple(layers))
