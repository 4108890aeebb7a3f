"""Evaluating design points: pure functions of (graph, point, shared tables) -> one results row.
These are what the process pool and Dask workers run, so they take and return plain,
picklable values and import nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.analytical import map_graph
from hwsim.energy import inference_energy
from hwsim.mapping import GEMM_OPS, gemm_of
from hwsim.sweep.space import Point
from quant.errors import ConfigError
from quant.ir import Graph

POINT_COLUMNS = ("point", "rows", "cols", "pes", "dataflow", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib",
                 "acc_sram_kib", "sram_kib_total", "dram_bytes_per_cycle", "dram_latency_cycles", "dram_request_bytes",
                 "clock_mhz", "acc_bits", "vector_lanes", "weight_bits", "act_bits", "batch")
RESULT_COLUMNS = ("status", "total_cycles", "compute_cycles", "stall_cycles", "latency_us",
                  "throughput_images_per_s", "utilization_pct", "peak_footprint_bytes", "dram_bytes",
                  "energy_per_image_uj", "int8_top1_pct", "float_top1_pct", "logits_sqnr_db", "luts", "ffs",
                  "dsps", "fmax_mhz", "latency_at_fmax_us")
COLUMNS = POINT_COLUMNS + RESULT_COLUMNS


def bits_key(weight_bits: int, act_bits: int) -> str:
    return f"w{weight_bits}a{act_bits}"


def synth_key(rows: int, cols: int, acc_bits: int, data_bits: int) -> str:
    return f"{rows}x{cols}-d{data_bits}-acc{acc_bits}"


def data_bits(point: Point) -> int:
    return max(point.weight_bits, point.act_bits)


@dataclass(frozen=True)
class Tables:
    """What every point looks up rather than recomputes: quality per bit width, cost per array."""
    accuracy: dict[str, float | None] = field(default_factory=dict)  # bits_key -> int8 top-1 (%), None: no labels
    float_top1: float | None = None
    sqnr: dict[str, float] = field(default_factory=dict)  # bits_key -> SQNR (dB) of the logits vs float
    synth: dict[str, dict] = field(default_factory=dict)  # synth_key -> {luts, ffs, dsps, fmax_mhz}


def required_acc_bits(graph: Graph, weight_bits: int, act_bits: int) -> tuple[int, str]:
    """Signed accumulator bits for the largest K of the model (worst-case operands), and that layer."""
    need, where = 0, ""
    for node in graph.nodes:
        if node.op in GEMM_OPS:
            k = gemm_of(node).k
            bits = (k << (weight_bits + act_bits - 2)).bit_length() + 1
            if bits > need:
                need, where = bits, node.name
    return need, where


def evaluate_point(graph: Graph, point: Point, tables: Tables) -> dict:
    row: dict = {"point": point.key, **point.names()}
    row.update(dict.fromkeys(RESULT_COLUMNS))
    cfg = point.config
    need, layer = required_acc_bits(graph, point.weight_bits, point.act_bits)
    if cfg.acc_bits < need:
        row["status"] = f"infeasible: acc_bits {cfg.acc_bits} < {need} needed by {layer}"
        return row
    try:
        result = map_graph(graph, cfg, batch=point.batch, weight_bits=point.weight_bits, act_bits=point.act_bits)
    except ConfigError as err:
        row["status"] = f"infeasible: {err}"
        return row
    energy = inference_energy(result, bits=data_bits(point))
    row.update(status="ok", total_cycles=result.total_cycles, compute_cycles=result.total("compute_cycles"),
               stall_cycles=result.total("stall_cycles"), latency_us=1e6 * result.latency_s,
               throughput_images_per_s=point.batch / result.latency_s, utilization_pct=100 * result.utilization,
               peak_footprint_bytes=result.peak_footprint_bytes,
               dram_bytes=result.total("dram_read_bytes") + result.total("dram_write_bytes"),
               energy_per_image_uj=energy.total_pj / 1e6 / point.batch,
               int8_top1_pct=tables.accuracy.get(bits_key(point.weight_bits, point.act_bits)),
               float_top1_pct=tables.float_top1,
               logits_sqnr_db=tables.sqnr.get(bits_key(point.weight_bits, point.act_bits)))
    cost = tables.synth.get(synth_key(cfg.rows, cfg.cols, cfg.acc_bits, data_bits(point)))
    if cost:
        row.update(luts=cost["luts"], ffs=cost["ffs"], dsps=cost["dsps"], fmax_mhz=cost["fmax_mhz"])
        if cost["fmax_mhz"]:
            row["latency_at_fmax_us"] = result.total_cycles / cost["fmax_mhz"]
    return row


def evaluate_chunk(graph: Graph, chunk: list[Point], tables: Tables) -> list[dict]:
    return [evaluate_point(graph, p, tables) for p in chunk]


def measure_quality(graph: Graph, ranges: dict, x: np.ndarray, labels: np.ndarray | None, float_logits: np.ndarray,
                    weight_bits: int, act_bits: int) -> tuple[float | None, float]:
    """The graph quantized at these bit widths, run by the integer executor: top-1 (%) when labels are
    given, and the SQNR (dB) of its dequantized logits against the float logits (any model)."""
    from quant.evaluate import logits_tensor, predict_int, sqnr_db, top1
    from quant.quantize import QuantConfig, quantize
    qgraph = quantize(graph, ranges, QuantConfig(weight_bits=weight_bits, act_bits=act_bits))
    q_logits = predict_int(qgraph, x)
    out = qgraph.producer(logits_tensor(qgraph)).quant.out
    err = (q_logits.astype(np.float64) - out.zero_point) * out.scale - float_logits
    sqnr = sqnr_db(float(np.sum(float_logits.astype(np.float64) ** 2)), float(np.sum(err * err)))
    return (None if labels is None else 100.0 * top1(q_logits, labels)), min(sqnr, 999.0)  # 999: exact logits
