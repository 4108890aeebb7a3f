"""hwsim's analytical engine against the real SCALE-Sim 3.0 in USER (stall) bandwidth mode.

For each model x DRAM bandwidth, on one array/dataflow (default 128x128 OS with
edge8's 64/64/64 KiB SRAM), runs SCALE-Sim with `InterfaceBandwidth: USER` on
the model's Conv/Dense layers and hwsim's analytical engine (map_graph with
dram_bytes_per_cycle = bandwidth), and prints per GEMM layer: SCALE-Sim and
hwsim cycles (stalls included) and DRAM bytes, with hwsim/SCALE-Sim ratios,
then a summary of totals. int8: one word = one byte.

    python3 -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim 'numpy<2.4'
    python benchmarks/scalesim_stall.py [--array 128x128] [--dataflow os] [--bw 4,16] [--json OUT]
    python benchmarks/scalesim_stall.py --no-scalesim     # the tables from the committed cache

SCALE-Sim runs are cached per (model, array, dataflow, SRAM, bandwidth) in
benchmarks/results/scalesim_stall_cache.json (committed); a run found there is
not repeated (--refresh repeats it). benchmarks/results/scalesim_stall.txt is
the printed output of the default run. hwsim is always recomputed, so the
tables follow the memory model; a layer hwsim refuses (ConfigError, e.g. a
fold that does not fit half an SRAM) is printed with the model's error and '-'.

Why 128x128 by default (not edge8's 8x8, nor 32x32): SCALE-Sim is pure Python
that walks its demand matrices one array cycle at a time, looking every operand
address of that cycle up in its buffer model, and turns each operand matrix
into its prefetch stream element by element. At 8x8, AlexNet and ResNet-18
are ~17M and ~28M array cycles: hours per run. At 32x32 (measured here) AlexNet
at 4 B/cycle had spent 7 minutes and was in its third of eight layers. At
128x128 the per-cycle work is about 4x smaller; the Dense layers still cost
minutes (AlexNet fc6: 37.7M weights, each expanded, streamed and looked up in
Python). Measured SCALE-Sim time per run on this shared 2-core machine (nice
10): LeNet 3.6 s / 2.6 s (4 / 16 B/cycle), AlexNet 919 s and ResNet-18 693 s
at 4 B/cycle; bandwidth barely changes it, so the six default runs take
about 55 minutes, far over the ~10 aimed at. Hence the committed cache and
--no-scalesim, which prints the tables in seconds. The cache committed with
this script lacks AlexNet and ResNet-18 at 16 B/cycle (not run for lack of
time): running the script without --no-scalesim adds them (~25 min).
That is with one speed fix to SCALE-Sim that changes no number (DRIVER below:
its DRAM trace was rebuilt with np.concatenate on every prefetch, quadratic
in a layer's DRAM traffic; reports checked identical on LeNet and on AlexNet
conv1; unfixed, that layer alone took 57 s at 32x32 and 87 s at 128x128 at
4 B/cycle).

What is compared (SCALE-Sim 3.0.0 report columns)
-------------------------------------------------
COMPUTE_REPORT.csv:
  "Total Cycles (incl. prefetch)"  the 'SS cycles' column: int(ofmap DRAM stop
        cycle - min(ifmap, filter DRAM start cycle)) (single_layer_sim.
        calc_report_data), i.e. the first fill of the buffers (issued at negative
        cycles), compute, stalls and the last ofmap drain. hwsim's total_cycles
        (compute + stall, its stall including the prologue) is compared with it.
  "Total Cycles"  the last ofmap demand row's serviced cycle (double_buffered_
        scratchpad.service_memory_requests: max(ofmap_serviced_cycles)): compute
        plus stalls, without the first fill and the final drain. Kept in the JSON.
  "Stall Cycles"  the 'SS stall' column: the summed per-cycle stalls.
DETAILED_ACCESS_REPORT.csv (words):
  "DRAM IFMAP Reads", "DRAM Filter Reads", "DRAM OFMAP Writes"; 'SS DRAM B' is
        their sum. hwsim's DRAM bytes are dram_read_bytes + dram_write_bytes.

How SCALE-Sim 3.0's USER bandwidth mode models memory (from its source)
------------------------------------------------------------------------
Files under site-packages/scalesim/.
* Bandwidths (scale_config.read_conf_file, single_layer_sim.run): with
  [run_presets] InterfaceBandwidth: USER, the ifmap read interface gets
  [layout] IfmapSRAMBankBandwidth words/cycle, the filter read interface
  FilterSRAMBankBandwidth, and the ofmap write interface the first value of
  [architecture_presets] Bandwidth. They are three independent interfaces:
  this script sets all three to the bandwidth, so SCALE-Sim can move up to
  3x the bandwidth per cycle while hwsim shares one bus of that width among
  all transfers. (The bank count must divide the bandwidth, read_buffer.
  set_params asserts it: one bank; banks are unused without custom layouts.)
  Word size is hard-coded to 1 byte. Without Ramulator, DRAM read latency is
  1 cycle (memory/read_port.py, latency = 1) and write latency 0
  (memory/write_port.py); hwsim's edge8 has 10 cycles and 64-byte requests.
* Double buffering (single_layer_sim.run: active_buf_frac = 0.5; memory/
  read_buffer.py, write_buffer.py): each SRAM is split into an active half
  the array reads from and a prefetch (or drain) half.
* What is prefetched (compute/systolic_compute_{os,ws,is}.py,
  create_ifmap_prefetch_mat / create_filter_prefetch_mat): a fixed stream per
  operand, each operand matrix once: the ifmap operand matrix is the im2col
  matrix (addresses of raw ifmap elements, but every window's copy listed
  again, so overlapping windows are fetched again: conv DRAM ifmap reads are
  about M*K, not the raw ifmap), cut per row fold and padded with -1 where the
  array's rows are unused; the filter matrix per col fold likewise; each then
  rolled out along its diagonals. read_buffer.set_fetch_matrix reshapes the
  stream into lines of `bandwidth` words (one line per cycle).
* When it is fetched (read_buffer.prefetch_active_buffer, new_prefetch,
  service_reads): before cycle 0 the active half is filled (its requests
  get negative cycles, so this fill is outside "Total Cycles" but inside
  "Total Cycles (incl. prefetch)"). Then the array's demand matrix is walked
  one cycle at a time; an address not in the active window (hashed_buffer:
  sets of ceil(SRAM words / 100) addresses) triggers new_prefetch: the window
  slides by one half and the next half-buffer of the stream is requested,
  back to back from the end of the previous prefetch (last_prefetch_cycle + 1,
  one line per cycle), whatever the array is doing; the array waits until it
  arrives. Past the end of the stream it wraps to the start: an operand that
  does not fit half its SRAM is streamed again for each pass the demand order
  makes over it: new_prefetch is called until the wanted address is in the
  window, so data needed again after it left the window costs a pass over
  the rest of the stream, wrapping round (OS/WS demand runs col folds
  outer, row folds inner: the ifmap stream is re-read per col fold, and a
  filter col fold larger than half the filter SRAM is re-read through the
  whole filter stream per row fold). Compute never overlaps the first fill.
* What counts as DRAM traffic: read_buffer.num_access adds whole requests,
  lines x bandwidth words, per fill: the -1 padding of unused array rows/cols
  and the unused tail of the last line are counted, and every new_prefetch
  counts a full half buffer (rounded up to lines) even past the end of the
  stream. So a layer whose operand fits its active half reads it once
  (padding included), one that does not reads the stream in half-buffer
  chunks until the last demand hits. A Dense layer in OS has M = 1: its ifmap
  stream is K x rows with rows-1 padding columns, counted as rows*K words.
  Ofmap (write_buffer.service_writes, empty_drain_buf, empty_all_buffers):
  every ofmap SRAM write of the demand matrix is written to DRAM once, when
  the active half fills (the drain moves the drain half at bandwidth words
  per cycle; the array stalls only if the buffer is full while draining) and
  at the end of the layer. There are no DRAM reads of outputs.
* K split and partial sums: OS never splits K (each PE accumulates the full
  K; outputs written once, M*N words). WS and IS map K onto the array rows
  and split it into ceil(K/rows) folds (systolic_compute_ws: row_fold_demand_
  matrices; systolic_compute_is: Sr = K); every K fold writes its whole
  output slice to the ofmap buffer again (create_ofmap_demand_mat loops over
  them), so partial sums go to DRAM once per K fold, as 1-byte words, never
  read back and never kept on chip: there is no accumulator buffer.
* Stalls (double_buffered_scratchpad.service_memory_requests): per demand
  row (array cycle) the stall is max(ifmap, filter, ofmap stall) and the
  whole array waits; the next row starts that much later. In read_buffer.
  service_reads a positive wait is added to the row's offset twice
  ('offset += potential_stall_cycles' and again under 'if > 0') and a negative
  one (data already there) is subtracted. A lone refill is therefore
  counted twice (LeNet conv3, 32x32 OS, 4 B/cycle: one 8,192-cycle refill
  needed ~1,165 cycles into the layer shows 14,054 = 2 x (8,192 - 1,165)
  stall cycles); over many refills the doubled wait puts the array ahead of
  the DRAM stream, the next wait is shorter by as much, and on average a
  DRAM-bound layer comes out at its largest interface's words / bandwidth
  (AlexNet conv1, 32x32 OS, 4 B/cycle: 10,977,280 ifmap words / 4 =
  2,744,320; SCALE-Sim 2,754,464 cycles incl. prefetch).
* Scope: each layer is simulated alone (single_layer_sim), with empty
  buffers at its start; nothing stays on chip or is prefetched across
  layers. No batch, no pooling or other vector ops (not in the topology).
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from scalesim_compare import model_path

from hwsim import scalesim
from hwsim.analytical import map_graph
from hwsim.config import PRESETS, AcceleratorConfig, override
from quant.errors import ConfigError
from quant.ir import Graph, Op
from quant.onnx_import import load_onnx

SCALESIM_VERSION = "3.0.0"
DEFAULT_ARRAY = "128x128"
CACHE = ROOT / "benchmarks" / "results" / "scalesim_stall_cache.json"
# SCALE-Sim's driver (hwsim.scalesim.DRIVER) with one speed fix that changes no number: read_buffer.new_prefetch
# appends each prefetch to its DRAM trace with np.concatenate, copying the whole trace every time (quadratic in
# a layer's DRAM traffic: hours on DRAM-bound layers). Here the pieces are kept in a list and joined once, before
# anything reads the trace (get_trace_matrix, get_external_access_start_stop_cycles, print_trace).
DRIVER = """import sys
import numpy as np
from scalesim.memory import read_buffer as rb

def _flush(self):
    if self.__dict__.get("_chunks"):
        self.trace_matrix = np.concatenate(self._chunks, axis=0)
        del self._chunks

def _new_prefetch(self, _orig=rb.read_buffer.new_prefetch):
    if not self.__dict__.get("_chunks"):
        self._chunks = [self.trace_matrix]
    self.trace_matrix = self._chunks[0][:0]  # no rows: the original's concatenate returns just the new piece
    _orig(self)
    self._chunks.append(self.trace_matrix)
    self.trace_matrix = None  # read only after _flush

def _flushing(name):
    orig = getattr(rb.read_buffer, name)
    def method(self, *args, **kwargs):
        _flush(self)
        return orig(self, *args, **kwargs)
    setattr(rb.read_buffer, name, method)

def _prefetch_active_buffer(self, *args, _orig=rb.read_buffer.prefetch_active_buffer, **kwargs):
    self.__dict__.pop("_chunks", None)
    return _orig(self, *args, **kwargs)

rb.read_buffer.new_prefetch = _new_prefetch
rb.read_buffer.prefetch_active_buffer = _prefetch_active_buffer
for _name in ("get_trace_matrix", "get_external_access_start_stop_cycles", "print_trace"):
    _flushing(_name)
""" + scalesim.DRIVER
# COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv columns read, and the names they get here
COMPUTE_COLS = {"Total Cycles (incl. prefetch)": "cycles_incl_prefetch", "Total Cycles": "cycles",
                "Stall Cycles": "stall_cycles"}
DETAIL_COLS = {"DRAM IFMAP Reads": "dram_ifmap_reads", "DRAM Filter Reads": "dram_filter_reads",
               "DRAM OFMAP Writes": "dram_ofmap_writes"}


def user_bw_inputs(folder: Path, rows: list[scalesim.TopoRow], cfg: AcceleratorConfig,
                   bw: int) -> tuple[Path, ...]:
    """hwsim.scalesim's config/topology/layout files, switched to USER bandwidth of `bw` words/cycle.

    In USER mode SCALE-Sim takes the ifmap and filter DRAM read bandwidths from [layout]
    IfmapSRAMBankBandwidth / FilterSRAMBankBandwidth and the ofmap write bandwidth from
    [architecture_presets] Bandwidth (single_layer_sim.run); all three are set to `bw`. The bank
    count must divide the bandwidth (read_buffer.set_params asserts it): one bank (no custom layout,
    so banks are otherwise unused)."""
    paths = scalesim.write_inputs(folder, rows, cfg)
    text = paths[0].read_text()
    for old, new in (("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER"),
                     ("\nBandwidth: 10\n", f"\nBandwidth: {bw}\n"),
                     ("IfmapSRAMBankBandwidth: 10", f"IfmapSRAMBankBandwidth: {bw}"),
                     ("FilterSRAMBankBandwidth: 10", f"FilterSRAMBankBandwidth: {bw}"),
                     ("IfmapSRAMBankNum: 10", "IfmapSRAMBankNum: 1"),
                     ("FilterSRAMBankNum: 10", "FilterSRAMBankNum: 1")):
        if text.count(old) != 1:
            raise ConfigError(f"hwsim.scalesim's config no longer has exactly one {old.strip()!r}")
        text = text.replace(old, new)
    paths[0].write_text(text)
    return paths


def _read_report(path: Path, cols: dict[str, str]) -> list[dict[str, float]]:
    with path.open() as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        idx = {name: header.index(col) for col, name in cols.items()}
        return [{name: float(line[i]) for name, i in idx.items()} for line in reader if line and line[0].strip()]


def run_scalesim(python: str, graph: Graph, cfg: AcceleratorConfig, bw: int, folder: Path,
                 ops: tuple[Op, ...] = (Op.CONV, Op.DENSE)) -> tuple[dict[str, dict[str, int]], list[str]]:
    """SCALE-Sim in USER bandwidth mode on the graph's GEMM layers: report numbers per IR node, skipped nodes."""
    rows, skipped = scalesim.topology(graph, ops)
    cfg_path, topo_path, layout_path = user_bw_inputs(folder, rows, cfg, bw)
    proc = subprocess.run([python, "-c", DRIVER, str(cfg_path), str(topo_path), str(layout_path),
                           str(folder / "out")], capture_output=True, text=True)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ConfigError(f"SCALE-Sim failed: {last}")
    out = folder / "out" / scalesim.RUN_NAME
    lines = [c | d for c, d in zip(_read_report(out / "COMPUTE_REPORT.csv", COMPUTE_COLS),
                                   _read_report(out / "DETAILED_ACCESS_REPORT.csv", DETAIL_COLS), strict=True)]
    channels = {n.name: n.in_shape[1] for n in graph.nodes if n.op is Op.CONV}
    result, i = {}, 0
    for r in rows:  # a depthwise layer is one SCALE-Sim layer per channel: sum them
        n = channels.get(r.node, 1) if r.depthwise else 1
        result[r.node] = {k: int(sum(line[k] for line in lines[i:i + n])) for k in lines[i]}
        i += n
    if i != len(lines):
        raise ConfigError(f"{out}: {len(lines)} SCALE-Sim layers for {i} expected")
    return result, skipped


def run_key(model: str, cfg: AcceleratorConfig, bw: int) -> str:
    return (f"{model} {cfg.array} {cfg.dataflow.value} sram={cfg.ifmap_sram_kib}/{cfg.filter_sram_kib}/"
            f"{cfg.ofmap_sram_kib}KiB bw={bw}")


def load_cache(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"scalesim": SCALESIM_VERSION, "mode": "USER", "runs": {}}


def save_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def dram_words(row: dict[str, int]) -> int:
    return row["dram_ifmap_reads"] + row["dram_filter_reads"] + row["dram_ofmap_writes"]


def _ratio(ours: float | None, theirs: float) -> str:
    return f"{ours / theirs:7.2f}" if ours is not None and theirs else f"{'-':>7}"


def _num(value: int | None, width: int = 11) -> str:
    return f"{value:{width},}" if value is not None else f"{'-':>{width}}"


def compare(model: str, graph: Graph, cfg: AcceleratorConfig, bw: int, run: dict) -> dict:
    """Print one model x bandwidth table; return its numbers."""
    try:
        hw = {r.name: r for r in map_graph(graph, cfg).layers if r.unit == "array"}
        error = None
    except ConfigError as e:
        hw, error = {}, str(e)
    print(f"\n== {model}  {cfg.array} {cfg.dataflow.value.upper()}  SRAM {cfg.ifmap_sram_kib}/{cfg.filter_sram_kib}/"
          f"{cfg.ofmap_sram_kib} KiB  DRAM {bw} B/cycle  (SCALE-Sim {run['seconds']:.1f} s)")
    print(f"{'layer':24} {'SS cycles':>11} {'SS stall':>11} {'hw cycles':>11} {'hw stall':>11} {'hw/SS':>7} "
          f"{'SS DRAM B':>11} {'hw DRAM B':>11} {'hw/SS':>7}")
    layers = []
    order = [n.name for n in graph.nodes if n.name in run["layers"]]  # the cache's JSON keys are sorted
    for name in order:
        ss = run["layers"][name]
        row = {"layer": name, "scalesim": ss, "scalesim_dram_bytes": dram_words(ss)}
        r = hw.get(name)
        if r is not None:
            row["hwsim"] = {"total_cycles": r.total_cycles, "compute_cycles": r.compute_cycles,
                            "stall_cycles": r.stall_cycles, "dram_read_bytes": r.dram_read_bytes,
                            "dram_write_bytes": r.dram_write_bytes}
        h = row.get("hwsim", {})
        cyc, stall = h.get("total_cycles"), h.get("stall_cycles")
        dram = h["dram_read_bytes"] + h["dram_write_bytes"] if h else None
        print(f"{name[-24:]:24} {_num(ss['cycles_incl_prefetch'])} {_num(ss['stall_cycles'])} {_num(cyc)} "
              f"{_num(stall)} {_ratio(cyc, ss['cycles_incl_prefetch'])} {_num(row['scalesim_dram_bytes'])} "
              f"{_num(dram)} {_ratio(dram, row['scalesim_dram_bytes'])}")
        layers.append(row)
    if error:
        print(f"   hwsim: ConfigError: {error}")
    if run["skipped"]:
        print(f"   not expressible in SCALE-Sim, left out: {', '.join(run['skipped'])}")
    total = {"scalesim_cycles": sum(r["scalesim"]["cycles_incl_prefetch"] for r in layers),
             "scalesim_stall_cycles": sum(r["scalesim"]["stall_cycles"] for r in layers),
             "scalesim_dram_bytes": sum(r["scalesim_dram_bytes"] for r in layers)}
    if not error:
        total |= {"hwsim_cycles": sum(r["hwsim"]["total_cycles"] for r in layers),
                  "hwsim_stall_cycles": sum(r["hwsim"]["stall_cycles"] for r in layers),
                  "hwsim_dram_bytes": sum(r["hwsim"]["dram_read_bytes"] + r["hwsim"]["dram_write_bytes"]
                                          for r in layers)}
    return {"model": model, "array": cfg.array, "dataflow": cfg.dataflow.value, "bw": bw,
            "sram_kib": [cfg.ifmap_sram_kib, cfg.filter_sram_kib, cfg.ofmap_sram_kib],
            "scalesim_seconds": run["seconds"], "hwsim_error": error, "layers": layers, "total": total}


def print_summary(results: list[dict]) -> None:
    print("\n== summary (GEMM layers; SS cycles = SCALE-Sim 'Total Cycles (incl. prefetch)', "
          "SS DRAM = ifmap + filter reads + ofmap writes, 1-byte words)")
    print(f"{'model':9} {'array':8} {'df':3} {'B/cyc':>5} {'layers':>6} {'SS cycles':>12} {'hw cycles':>12} "
          f"{'hw/SS':>7} {'SS DRAM B':>12} {'hw DRAM B':>12} {'hw/SS':>7} {'SS s':>7}  hwsim")
    for res in results:
        t = res["total"]
        hw_c, hw_d = t.get("hwsim_cycles"), t.get("hwsim_dram_bytes")
        print(f"{res['model']:9} {res['array']:8} {res['dataflow']:3} {res['bw']:5} {len(res['layers']):6} "
              f"{_num(t['scalesim_cycles'], 12)} {_num(hw_c, 12)} {_ratio(hw_c, t['scalesim_cycles'])} "
              f"{_num(t['scalesim_dram_bytes'], 12)} {_num(hw_d, 12)} {_ratio(hw_d, t['scalesim_dram_bytes'])} "
              f"{res['scalesim_seconds']:7.1f}  {'ConfigError' if res['hwsim_error'] else 'ok'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scalesim", default=str(ROOT / ".venv-scalesim" / "bin" / "python"),
                   help="python of the environment where scalesim is installed")
    p.add_argument("--models", default="lenet,alexnet,resnet18")
    p.add_argument("--array", default=DEFAULT_ARRAY, help=f"ROWSxCOLS (default {DEFAULT_ARRAY}: see the docstring)")
    p.add_argument("--dataflow", default="os", choices=("os", "ws", "is"))
    p.add_argument("--sram", help="ifmap,filter,ofmap KiB (default: edge8's 64,64,64)")
    p.add_argument("--bw", default="4,16", help="DRAM bandwidths in bytes (= int8 words) per cycle")
    p.add_argument("--zoo-dir", default=str(Path(tempfile.gettempdir()) / "hwsim-zoo"))
    p.add_argument("--cache", default=str(CACHE), help="SCALE-Sim results per (model, array, dataflow, sram, bw)")
    p.add_argument("--no-scalesim", action="store_true", help="never run SCALE-Sim: print from the cache only")
    p.add_argument("--refresh", action="store_true", help="rerun SCALE-Sim even where the cache has the run")
    p.add_argument("--json", help="write every number to this JSON file")
    args = p.parse_args(argv)
    cache_path = Path(args.cache)
    cache = load_cache(cache_path)
    if not args.no_scalesim and not Path(args.scalesim).exists():
        sys.exit(f"no SCALE-Sim interpreter at {args.scalesim}: see this script's docstring, or use --no-scalesim")
    bws = [int(b) for b in args.bw.split(",")]
    results, missing = [], []
    for model in args.models.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the importer's ShapeWarnings on floor-dropped rows
            graph = load_onnx(model_path(model, Path(args.zoo_dir)))
        for bw in bws:
            cfg = override(PRESETS["edge8"], array=args.array, dataflow=args.dataflow, sram=args.sram,
                           dram_bytes_per_cycle=bw)
            key = run_key(model, cfg, bw)
            if key not in cache["runs"] or args.refresh:
                if args.no_scalesim:
                    missing.append(key)
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    layers, skipped = run_scalesim(args.scalesim, graph, cfg, bw, Path(tmp))
                    seconds = round(time.perf_counter() - t0, 1)
                cache["runs"][key] = {"model": model, "array": cfg.array, "dataflow": cfg.dataflow.value,
                                      "sram_kib": [cfg.ifmap_sram_kib, cfg.filter_sram_kib, cfg.ofmap_sram_kib],
                                      "bw_words_per_cycle": bw, "seconds": seconds, "skipped": skipped,
                                      "layers": layers}
                save_cache(cache_path, cache)
            results.append(compare(model, graph, cfg, bw, cache["runs"][key]))
            sys.stdout.flush()
    if results:
        print_summary(results)
    for key in missing:
        print(f"not in {cache_path.name} (run without --no-scalesim): {key}")
    if args.json:
        Path(args.json).write_text(json.dumps({"scalesim": SCALESIM_VERSION, "mode": "USER", "runs": results},
                                              indent=1) + "\n")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
