"""Talk to SCALE-Sim 3.0 (installed separately): write its config, topology and
layout files for a graph's GEMM layers, run it, read its COMPUTE_REPORT.csv.

SCALE-Sim takes no padding (we give it the padded ifmap, cropped to the rows the
windows read: it rounds output sizes up where ONNX floors), square strides, no
dilation and no groups except depthwise (a layer whose name contains "DP" is
split into per-channel layers, whose rows we sum). Dense layers are written as
1x1 convolutions on a 1x1 ifmap. Layers it cannot express are left out and
named in `skipped`.

Install it beside hwsim, not into hwsim's environment (3.0.0 needs numpy < 2.4):
    python3 -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim 'numpy<2.4'
"""
from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hwsim.config import AcceleratorConfig
from quant.errors import ConfigError
from quant.ir import Graph, Node, Op

RUN_NAME = "hwsim"
DRIVER = """import sys
from scalesim.scale_sim import scalesim
s = scalesim(save_disk_space=True, verbose=False, config=sys.argv[1], topology=sys.argv[2], layout=sys.argv[3])
s.run_scale(top_path=sys.argv[4])
"""


@dataclass(frozen=True)
class TopoRow:
    node: str  # the IR node
    name: str  # SCALE-Sim layer name ("DP..." for depthwise)
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int
    depthwise: bool = False


def topology(graph: Graph, ops: tuple[Op, ...] = (Op.CONV, Op.DENSE)) -> tuple[list[TopoRow], list[str]]:
    """SCALE-Sim conv rows for the graph's layers of `ops`, and the names of those it cannot express."""
    rows, skipped = [], []
    for node in graph.nodes:
        if node.op not in ops:
            continue
        row = _row(node)
        if row is None:
            skipped.append(node.name)
        elif row is not None:
            rows.append(row)
    return rows, skipped


def _row(node: Node) -> TopoRow | None:
    if node.op is Op.DENSE:
        return TopoRow(node.name, f"L{node.name}", 1, 1, 1, 1, node.in_shape[1], node.out_shape[1], 1)
    if node.op is not Op.CONV:
        return None
    a = node.attrs
    c_in = node.in_shape[1]
    depthwise = a.groups > 1 and a.groups == c_in == node.out_shape[1]
    if a.dilation != (1, 1) or a.stride[0] != a.stride[1] or (a.groups > 1 and not depthwise):
        return None
    # the ifmap the windows really read: padded, minus rows/cols a floor-division output drops
    # (SCALE-Sim rounds its output size up, so it would otherwise compute one row too many)
    oh, ow = node.out_shape[2:]
    h_eff, w_eff = (oh - 1) * a.stride[0] + a.kernel[0], (ow - 1) * a.stride[1] + a.kernel[1]
    return TopoRow(node.name, ("DP" if depthwise else "L") + node.name, h_eff, w_eff, *a.kernel,
                   1 if depthwise else c_in, 1 if depthwise else node.out_shape[1], a.stride[0], depthwise)


def write_inputs(folder: Path, rows: list[TopoRow], cfg: AcceleratorConfig) -> tuple[Path, Path, Path]:
    """config (CALC bandwidth, no custom layout), topology and layout CSVs."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg_path, topo_path, layout_path = folder / "hwsim.cfg", folder / "topology.csv", folder / "layout.csv"
    cfg_path.write_text(f"""[general]
run_name = {RUN_NAME}

[architecture_presets]
ArrayHeight: {cfg.rows}
ArrayWidth: {cfg.cols}
IfmapSramSzkB: {cfg.ifmap_sram_kib}
FilterSramSzkB: {cfg.filter_sram_kib}
OfmapSramSzkB: {cfg.ofmap_sram_kib}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {cfg.dataflow.value}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
""")
    head = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    topo_path.write_text(head + "".join(
        f"{r.name}, {r.ifmap_h}, {r.ifmap_w}, {r.filter_h}, {r.filter_w}, {r.channels}, {r.filters}, {r.stride},\n"
        for r in rows))
    # the layout file is parsed but unused with custom layouts off; one row per topology row
    layout_path.write_text("Layer name," + ",".join(f" f{i}" for i in range(17)) + ",\n" + "".join(
        f"{r.name}," + ",".join(" 1" for _ in range(17)) + ",\n" for r in rows))
    return cfg_path, topo_path, layout_path


def read_compute_report(path: Path, rows: list[TopoRow], channels: dict[str, int]) -> dict[str, int]:
    """'Total Cycles' per IR node (depthwise layers summed over their channel rows)."""
    with path.open() as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        col = header.index("Total Cycles")
        cycles = [int(float(line[col])) for line in reader if line and line[0].strip()]
    out, i = {}, 0
    for r in rows:
        n = channels.get(r.node, 1) if r.depthwise else 1
        out[r.node] = sum(cycles[i:i + n])
        i += n
    if i != len(cycles):
        raise ConfigError(f"{path}: {len(cycles)} SCALE-Sim layers for {i} expected")
    return out


def run(python: str | Path, graph: Graph, cfg: AcceleratorConfig, folder: Path,
        ops: tuple[Op, ...] = (Op.CONV, Op.DENSE)) -> tuple[dict[str, int], list[str]]:
    """Run SCALE-Sim (its own interpreter `python`) on the graph's `ops` layers: cycles per node, skipped nodes."""
    rows, skipped = topology(graph, ops)
    cfg_path, topo_path, layout_path = write_inputs(folder, rows, cfg)
    proc = subprocess.run([str(python), "-c", DRIVER, str(cfg_path), str(topo_path), str(layout_path),
                           str(folder / "out")], capture_output=True, text=True)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ConfigError(f"SCALE-Sim failed: {last}")
    channels = {n.name: n.in_shape[1] for n in graph.nodes if n.op is Op.CONV}
    return read_compute_report(folder / "out" / RUN_NAME / "COMPUTE_REPORT.csv", rows, channels), skipped
