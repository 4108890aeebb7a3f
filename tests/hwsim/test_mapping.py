"""im2col GEMM shapes and fold plans per dataflow."""
import math

import pytest

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import GEMM_OPS, Gemm, gemm_of, plan


def test_lenet_gemm_shapes_and_macs(lenet):
    gemms = [(n.name, gemm_of(n)) for n in lenet.nodes if n.op in GEMM_OPS]
    assert [(g.m, g.k, g.n) for _, g in gemms] == [(784, 25, 6), (100, 150, 16), (1, 400, 120), (1, 120, 84),
                                                   (1, 84, 10)]
    for node in lenet.nodes:  # seed sanity: the GEMM's MACs are the layer analysis' MACs, times the batch
        if node.op in GEMM_OPS:
            assert gemm_of(node).macs == node.macs and gemm_of(node, batch=3).macs == 3 * node.macs


def test_depthwise_is_per_channel_gemms(tmp_path):
    import numpy as np

    from quant.onnx_import import load_onnx
    from tests.helpers import chain_model
    w = np.ones((8, 1, 3, 3), np.float32)
    g = load_onnx(chain_model(tmp_path / "dw.onnx", (1, 8, 10, 10), [("Conv", {"w": w}, {"group": 8})]))
    gemm = gemm_of(g.nodes[0])
    assert (gemm.m, gemm.k, gemm.n, gemm.groups) == (64, 9, 1, 8) and gemm.macs == g.nodes[0].macs
    p = plan(gemm, AcceleratorConfig(rows=4, cols=4, dataflow=Dataflow.OS))
    assert p.folds == 8 * 16 and p.mapping_efficiency == pytest.approx(1 / 4)  # one of 4 columns used


@pytest.mark.parametrize("df, dims", [(Dataflow.OS, (10, 7, 5)), (Dataflow.WS, (5, 7, 10)), (Dataflow.IS, (5, 10, 7))])
def test_dataflow_dimension_pinning(df, dims):
    p = plan(Gemm(m=10, k=5, n=7), AcceleratorConfig(rows=4, cols=3, dataflow=df))
    assert (p.row_dim, p.col_dim, p.stream) == dims
    assert p.folds == math.ceil(dims[0] / 4) * math.ceil(dims[1] / 3) == len(p.tiles())
    assert 0 < p.mapping_efficiency <= 1
