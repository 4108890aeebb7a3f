"""SCALE-Sim files: topology rows (padded ifmap, depthwise split), config, report parsing; and
`--timing scalesim` against the real SCALE-Sim 3.0 runs kept in tests/golden/scalesim_*.json,
with every layer's GEMM derived here from the model itself."""
import json
import math
import warnings

import numpy as np
import pytest

from hwsim import scalesim
from hwsim.config import AcceleratorConfig, Dataflow, parse_array
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from hwsim.timing import scalesim_compute_cycles
from quant.ir import Op
from quant.onnx_import import load_onnx
from tests.conftest import ROOT
from tests.helpers import chain_model

GOLDEN = sorted((ROOT / "tests" / "golden").glob("scalesim_*.json"))
GOLDEN_LAYERS = [row for path in GOLDEN for row in json.loads(path.read_text())["layers"]]
# benchmarks/scalesim_compare.py exports zoo models with torch's legacy exporter (opset 13): the
# golden layer names are that exporter's node names
ZOO_EXPORTER = "legacy"


def test_lenet_topology_gives_scalesim_the_padded_ifmap(lenet):
    rows, skipped = scalesim.topology(lenet)
    assert not skipped and len(rows) == 5
    assert (rows[0].ifmap_h, rows[0].filter_h, rows[0].channels, rows[0].filters, rows[0].stride) == (32, 5, 1, 6, 1)
    assert (rows[3].ifmap_h, rows[3].channels, rows[3].filters) == (1, 120, 84)  # Dense as a 1x1 conv
    assert len(scalesim.topology(lenet, ops=(lenet.nodes[0].op,))[0]) == 3


def test_files_and_depthwise_report(tmp_path):
    w = np.ones((4, 1, 3, 3), np.float32)
    g = load_onnx(chain_model(tmp_path / "dw.onnx", (1, 4, 6, 6), [("Conv", {"w": w}, {"group": 4, "pads": [1] * 4})]))
    rows, _ = scalesim.topology(g)
    assert rows[0].depthwise and rows[0].name.startswith("DP") and rows[0].ifmap_h == 8 and rows[0].channels == 1
    cfg_path, topo_path, layout_path = scalesim.write_inputs(tmp_path / "ss", rows,
                                                             AcceleratorConfig(rows=16, cols=4, dataflow=Dataflow.IS))
    assert layout_path.read_text().count("\n") == 2  # header + one row per topology row
    text = cfg_path.read_text()
    assert "ArrayHeight: 16" in text and "Dataflow: is" in text and "InterfaceBandwidth: CALC" in text
    assert topo_path.read_text().splitlines()[1].startswith("DPconv0, 8, 8, 3, 3, 1, 1, 1")
    report = tmp_path / "COMPUTE_REPORT.csv"
    report.write_text("LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles,\n"
                      + "".join(f"{i}, 999, {100 + i}, 0,\n" for i in range(4)))
    assert scalesim.read_compute_report(report, rows, {"conv0": 4}) == {"conv0": 100 + 101 + 102 + 103}


def test_rows_dropped_by_floor_division_are_cropped(tmp_path):
    """7x7/2 on 10x10 padded by 3: ONNX floors to 5 outputs and never reads the last row; SCALE-Sim
    rounds up, so it is given the 15 rows the windows read, not the 16 padded ones."""
    w = np.ones((2, 1, 7, 7), np.float32)
    g = load_onnx(chain_model(tmp_path / "c.onnx", (1, 1, 10, 10),
                              [("Conv", {"w": w}, {"strides": [2, 2], "pads": [3] * 4})]))
    row = scalesim.topology(g)[0][0]
    assert g.nodes[0].out_shape[2:] == (5, 5) and (row.ifmap_h, row.ifmap_w) == (15, 15)
    assert -(-(row.ifmap_h - 7 + 2) // 2) == 5  # SCALE-Sim's ceil((H - R + S) / S)


@pytest.fixture(scope="module", params=sorted({row["model"] for row in GOLDEN_LAYERS}))
def golden_model(request, lenet, tmp_path_factory):
    """(name, graph) of every model the golden data covers: the shipped LeNet, zoo models exported
    once per session by models/zoo.py (the ONNX file is removed once imported: AlexNet's is 250 MB)."""
    name = request.param
    if name == "lenet":
        return name, lenet
    from models.zoo import build
    path = build(name, tmp_path_factory.mktemp(f"scalesim-{name}"), exporter=ZOO_EXPORTER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ResNet's stride-2 1x1 skip convs drop a row by ONNX floor semantics
        graph = load_onnx(path)
    path.unlink()
    return name, graph


def _scalesim_gemm(row: scalesim.TopoRow) -> tuple[int, int, int]:
    """The GEMM SCALE-Sim itself computes from a topology row: ofmap = ceil((H - R + S) / S)."""
    oh = math.ceil((row.ifmap_h - row.filter_h + row.stride) / row.stride)
    ow = math.ceil((row.ifmap_w - row.filter_w + row.stride) / row.stride)
    return oh * ow, row.filter_h * row.filter_w * row.channels, row.filters


def test_scalesim_timing_matches_real_scalesim_on_the_models_own_layers(golden_model):
    """For every layer SCALE-Sim was run on: hwsim's GEMM of the model's node (not the golden file's
    numbers) equals what SCALE-Sim computes from the topology hwsim writes for it and the dimensions
    recorded beside SCALE-Sim's output, and `--timing scalesim` on that GEMM gives SCALE-Sim's
    cycles. A change in hwsim's shape derivation (import, im2col dimensions, topology) fails here."""
    name, graph = golden_model
    rows = [row for row in GOLDEN_LAYERS if row["model"] == name]
    nodes = {n.name: n for n in graph.nodes}
    topo, skipped = scalesim.topology(graph)
    topo = {t.node: t for t in topo}
    convs = {n.name for n in graph.nodes if n.op is Op.CONV}
    assert not skipped and convs
    for run in {(row["array"], row["dataflow"]) for row in rows}:
        layers = {row["layer"] for row in rows if (row["array"], row["dataflow"]) == run}
        assert convs <= layers, (run, sorted(convs - layers))  # every conv of the model was compared
        assert all(layer in nodes and nodes[layer].op in GEMM_OPS for layer in layers), run
    for row in rows:
        node = nodes[row["layer"]]
        gemm = gemm_of(node)
        assert _scalesim_gemm(topo[node.name]) == (gemm.m, gemm.k, gemm.n), row
        assert (gemm.m, gemm.k, gemm.n, gemm.groups) == (row["m"], row["k"], row["n"], row["groups"]), row
        r, c = parse_array(row["array"])
        p = plan(gemm, AcceleratorConfig(rows=r, cols=c, dataflow=Dataflow(row["dataflow"])))
        assert scalesim_compute_cycles(p) == row["scalesim_cycles"], row
