"""Terminal tables (rich) and JSON documents for the CLI's results."""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hwsim.analytical import MapResult
from hwsim.text import printable
from quant.analysis import Summary, op_label
from quant.pipeline import QuantResult


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def cell(text: object) -> str:
    """printable() with rich markup escaped: '[bold]' in a name is shown, not obeyed."""
    return escape(printable(text))


PLAIN_TABLE_ROWS = 400  # past this many rows rich's layout costs seconds: print plain aligned columns instead


def print_table(console: Console, table: Table) -> None:
    """console.print(table), or for a table of thousands of layers the same columns as plain text (rich
    lays out a 24,000-row table in about 40 s; this takes well under one)."""
    if table.row_count <= PLAIN_TABLE_ROWS:
        console.print(table)
        return
    columns = [[Text.from_markup(str(c.header)).plain, *(Text.from_markup(str(v)).plain for v in c._cells)]
               for c in table.columns]
    widths = [max(map(len, col)) for col in columns]
    lines = [Text.from_markup(str(table.title)).plain] if table.title else []
    for i in range(len(columns[0])):
        lines.append("  ".join(col[i].ljust(w) if c.justify == "left" else col[i].rjust(w)
                               for col, w, c in zip(columns, widths, table.columns, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    console.file.write("\n".join(lines) + "\n")


def make_console() -> Console:
    """stdout console; 200 columns when not a terminal so piped tables do not wrap."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def summary_table(summary: Summary, console: Console | None = None) -> None:
    console = console or make_console()
    t = Table(title=f"{cell(summary.model)}: layer analysis (per image)", title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("output CxHxW", "right"), ("params", "right"),
                      ("MACs", "right"), ("activations", "right"), ("fp32", "right"),
                      ("int8", "right")):
        t.add_column(col, justify=just)
    for r in summary.layers:
        t.add_row(cell(r.name), cell(r.op), "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}",
                  f"{r.activations:,}", _bytes(r.act_bytes_fp32), _bytes(r.act_bytes_int8))
    d = summary.to_dict()
    t.add_section()
    t.add_row("total", "", "", f"{d['total_params']:,}", f"{d['total_macs']:,}", f"{d['total_activations']:,}",
              _bytes(d["total_act_bytes_fp32"]), _bytes(d["total_act_bytes_int8"]))
    print_table(console, t)
    console.print(f"activations: fp32 vs int8 bytes per image (4 B vs 1 B a value; Flatten is a view, counted 0)\n"
                  f"weights (no biases): {d['total_weights']:,}   parameter memory: "
                  f"{_bytes(d['total_param_bytes_fp32'])} fp32 -> {_bytes(d['total_param_bytes_int8'])} int8 "
                  "(int8 weights, int32 biases)", highlight=False)


def quantize_to_dict(result: QuantResult, out: Path, qdq: str | None) -> dict:
    q = result.qgraph
    layers = [{"name": n.name, "op": op_label(n), "scale": n.quant.out.scale, "zero_point": n.quant.out.zero_point,
               "weight_scale_min": None if n.quant.weight_scale is None else float(n.quant.weight_scale.min()),
               "weight_scale_max": None if n.quant.weight_scale is None else float(n.quant.weight_scale.max())}
              for n in q.nodes]
    doc = {"model": q.name, "images": result.images, "float_top1": result.float_top1, "int8_top1": result.int8_top1,
           "drop_pts": None if result.float_top1 is None else 100 * (result.float_top1 - result.int8_top1),
           "float_int8_agreement": result.agreement, "calibration_images": result.calibration_images,
           "input_scale": q.input_quant.scale, "input_zero_point": q.input_quant.zero_point,
           "layers": layers, "out": str(out), "qdq": qdq, "note": result.note or None}
    for o in result.ort:
        doc[f"ort_{o.optimization}"] = {"top1_agreement": o.top1_agreement, "logits_within_1lsb": o.within_1lsb,
                                        "logits_exact": o.exact, "ort_top1": o.ort_top1}
    return doc


def quantize_report(result: QuantResult, out: Path, qdq: str | None, console: Console | None = None) -> None:
    console = console or make_console()
    t = Table(title=f"{cell(result.qgraph.name)}: int8 quantization", title_justify="left")
    for col in ("layer", "op", "out scale", "zero point", "weight scales"):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    q_in = result.qgraph.input_quant
    t.add_row("input", "Quantize", f"{q_in.scale:.6g}", str(q_in.zero_point), "")
    for n in result.qgraph.nodes:
        ws = n.quant.weight_scale
        t.add_row(cell(n.name), cell(op_label(n)), f"{n.quant.out.scale:.6g}", str(n.quant.out.zero_point),
                  "" if ws is None else f"{ws.min():.3g} .. {ws.max():.3g}")
    print_table(console, t)
    if result.float_top1 is not None:
        a = Table(title=f"accuracy on {result.images:,} Fashion-MNIST test images", title_justify="left")
        a.add_column("metric")
        a.add_column("value", justify="right")
        a.add_row("float top-1 (numpy float32)", f"{100 * result.float_top1:.2f} %")
        a.add_row("int8 top-1 (integer-only)", f"{100 * result.int8_top1:.2f} %")
        a.add_row("drop", f"{100 * (result.float_top1 - result.int8_top1):+.2f} pts")
        a.add_row("float/int8 argmax agreement", f"{100 * result.agreement:.2f} %")
        for o in result.ort:
            a.add_row(f"onnxruntime QDQ ({o.optimization}): top-1 agreement", f"{100 * o.top1_agreement:.2f} %")
            a.add_row(f"onnxruntime QDQ ({o.optimization}): logits within ±1 LSB", f"{100 * o.within_1lsb:.2f} %")
        console.print(a)
    if result.note:
        console.print(result.note, style="yellow", highlight=False, markup=False)
    console.print(f"calibrated on {result.calibration_images} images; wrote {printable(out)}"
                  + (f" and {printable(qdq)}" if qdq else ""), highlight=False, markup=False)


MAP_CSV_FIELDS = ("name", "op", "unit", "m", "k", "n", "groups", "tile_m", "tile_k", "tile_n", "order", "steps",
                  "folds", "macs", "compute_cycles", "stall_cycles", "total_cycles", "utilization",
                  "mapping_efficiency", "sram_read_bytes", "sram_write_bytes", "dram_read_bytes", "dram_write_bytes",
                  "footprint_bytes", "input_on_chip", "output_on_chip")


def map_csv(result: MapResult) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MAP_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for layer in result.layers:
        row = layer.to_dict()
        row.update({f"tile_{d}": v for d, v in row.pop("tile").items()})
        writer.writerow(row)
    return buf.getvalue()


def map_table(result: MapResult, console: Console | None = None, note: str = "") -> None:
    console = console or make_console()
    cfg = result.config
    title = (f"{cell(result.model)} on {cfg.array} {cfg.dataflow.value.upper()} array ({cell(cfg.name)}), "
             f"batch {result.batch}, "
             f"{result.engine} engine, {result.timing} timing; latency in µs")
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("layer", "op", "M", "K", "N", "tile MxKxN", "steps", "compute", "stall", "total cyc", "util",
                "SRAM rd", "SRAM wr", "DRAM rd", "DRAM wr", "latency"):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right", no_wrap=True)
    mhz = cfg.clock_mhz
    for r in result.layers:
        gemm = r.unit == "array"
        dims = (f"{r.m:,}", f"{r.k:,}", f"{r.n:,}" + (f"x{r.groups}" if r.groups > 1 else "")) if gemm else ("", "", "")
        tile = f"{r.tile[0]:,}x{r.tile[1]:,}x{r.tile[2]:,} {r.order}" if gemm else \
            ("fused" if r.fused_into else "vector")
        t.add_row(cell(r.name), cell(r.op), *dims, tile, f"{r.steps:,}", f"{r.compute_cycles:,}",
                  f"{r.stall_cycles:,}", f"{r.total_cycles:,}", f"{100 * r.utilization:.1f}%" if gemm else "",
                  *(_kib(getattr(r, f)) for f in ("sram_read_bytes", "sram_write_bytes", "dram_read_bytes",
                                                  "dram_write_bytes")), _micros(r.total_cycles, mhz))
    t.add_section()
    t.add_row("total", "", "", "", "", "", f"{result.total('steps'):,}", f"{result.total('compute_cycles'):,}",
              f"{result.total('stall_cycles'):,}", f"{result.total_cycles:,}", f"{100 * result.utilization:.1f}%",
              *(_kib(result.total(f)) for f in ("sram_read_bytes", "sram_write_bytes", "dram_read_bytes",
                                                "dram_write_bytes")), _micros(result.total_cycles, mhz))
    print_table(console, t)
    peak = result.peak_footprint_bytes
    console.print(f"{result.total('macs'):,} MACs in {result.total_cycles:,} cycles = {1e6 * result.latency_s:,.1f} µs "
                  f"at {mhz:g} MHz ({_per_second(result.latency_s)} inferences/s at batch {result.batch}); "
                  f"array utilization {100 * result.utilization:.1f} %\npeak on-chip footprint {_bytes(peak)} of "
                  f"{_bytes(1024 * cfg.sram_kib_total)} SRAM (ifmap/filter/ofmap/acc {cfg.ifmap_sram_kib}/"
                  f"{cfg.filter_sram_kib}/{cfg.ofmap_sram_kib}/{cfg.acc_sram_kib} KiB); DRAM link "
                  f"{cfg.dram_bytes_per_cycle:g} B/cycle, {cfg.dram_latency_cycles:,}-cycle latency, "
                  f"{cfg.dram_request_bytes:,} B requests\n"
                  f"activations kept on chip: {_on_chip(result)}", highlight=False)
    if note:
        console.print(note, highlight=False, markup=False)


def _on_chip(result: MapResult) -> str:
    kept = [r for r in result.layers if r.output_on_chip and r.op != "Flatten"]
    if not kept:
        return "none (every layer output goes to DRAM and back)"
    if len(kept) == sum(1 for r in result.layers if r.op != "Flatten") - 1:
        return "all but the graph output (no activation goes through DRAM)"
    return f"{len(kept)} of {len(result.layers)} layer outputs (the rest go through DRAM)"


def _per_second(latency_s: float) -> str:
    return f"{1 / latency_s:,.0f}" if latency_s > 0 else "-"  # a graph of views only takes 0 cycles


def _kib(n: int) -> str:
    if n < 1024:
        return f"{n}B"
    return f"{n / 2**20:,.1f}M" if n >= 10 * 2**20 else f"{n / 1024:,.1f}K"


def _micros(cycles: int, mhz: float) -> str:
    return f"{cycles / mhz:,.1f}"


PARETO_ROWS = 20


def sweep_report(result, console: Console | None = None) -> None:
    """The Pareto front as a table, then one line on what ran and where the files are."""
    console = console or make_console()
    objectives = [*result.minimize, *result.maximize]
    if not any(r["status"] == "ok" for r in result.rows):
        reasons = Counter(r["status"] for r in result.rows).most_common(1)
        console.print(f"no feasible point among {len(result.rows):,}; most common reason: {reasons[0][0]}",
                      highlight=False, markup=False)
        return
    t = Table(box=box.SIMPLE_HEAD, title=f"Pareto front: {len(result.front)} of {len(result.rows):,} points "
              f"(minimize {', '.join(result.minimize) or '-'}; maximize {', '.join(result.maximize) or '-'})",
              title_justify="left")
    synth = any(r["luts"] is not None for r in result.front)
    labelled = any(r["int8_top1_pct"] is not None for r in result.front)
    quality = ("int8_top1_pct", "int8 top-1 %") if labelled else ("logits_sqnr_db", "logits SQNR dB")
    cols = ["array", "dataflow", "SRAM KiB", "DRAM B/cyc", "MHz", "bits w/a", "latency µs", "util %",
            "energy µJ", quality[1], *(("LUTs", "Fmax MHz") if synth else ())]
    for c in cols:
        t.add_column(c, justify="left" if c in ("array", "dataflow") else "right")

    def num(v, fmt):
        return "" if v is None else format(v, fmt)
    for r in result.front[:PARETO_ROWS]:
        t.add_row(f"{r['rows']}x{r['cols']}", r["dataflow"], f"{r['ifmap_sram_kib']}/{r['filter_sram_kib']}/"
                  f"{r['ofmap_sram_kib']}/{r['acc_sram_kib']}", f"{r['dram_bytes_per_cycle']:g}", f"{r['clock_mhz']:g}",
                  f"{r['weight_bits']}/{r['act_bits']}", num(r["latency_us"], ",.1f"), num(r["utilization_pct"], ".1f"),
                  num(r["energy_per_image_uj"], ".2f"), num(r[quality[0]], ".2f"),
                  *((num(r["luts"], ","), num(r["fmax_mhz"], ".1f")) if synth else ()))
    print_table(console, t)
    if len(result.front) > PARETO_ROWS:
        console.print(f"... and {len(result.front) - PARETO_ROWS} more in pareto.csv", highlight=False)
    infeasible = sum(1 for r in result.rows if r["status"] != "ok")
    lines = [f"{result.total_points:,} points: {result.evaluated:,} evaluated now on {result.runner} "
             f"({result.points_per_s:,.0f} points/s), {result.resumed:,} resumed from results.csv; "
             f"{infeasible:,} infeasible (see status); objectives {', '.join(objectives)}"]
    if result.dropped_objectives:
        lines.append(f"objectives without values dropped: {', '.join(result.dropped_objectives)}")
    if result.accuracy_note:
        lines.append(result.accuracy_note)
    lines.append("wrote " + ", ".join(str(f) for f in result.files))
    console.print("\n".join(lines), highlight=False, markup=False)
