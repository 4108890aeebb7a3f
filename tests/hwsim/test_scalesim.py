"""SCALE-Sim files: topology rows (padded ifmap, depthwise split), config, report parsing."""
import numpy as np

from hwsim import scalesim
from hwsim.config import AcceleratorConfig, Dataflow
from quant.onnx_import import load_onnx
from tests.helpers import chain_model


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
