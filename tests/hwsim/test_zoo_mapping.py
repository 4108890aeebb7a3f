"""Every layer of the standard CNN zoo (models/zoo.py) maps onto edge8 at 8x8, 16x16 and 32x8 in OS,
WS and IS: no refusal, tiles that fit, a footprint inside the SRAM, and DRAM traffic that is never
below the compulsory minimum and equals it when the SRAM holds the layer's working set."""
from __future__ import annotations

import warnings

import pytest

from hwsim.analytical import map_graph
from hwsim.config import Dataflow, override, preset
from hwsim.mapping import GEMM_OPS
from hwsim.memory import Memory, plan_residency
from hwsim.tiling import Layer, compulsory_dram_bytes
from quant.onnx_import import load_onnx

MODELS = ["resnet18", "resnet50", "vgg16", "alexnet", "mobilenet_v1"]
ARRAYS = [(8, 8), (16, 16), (32, 8)]


@pytest.fixture(scope="module", params=MODELS)
def zoo_graph(request, tmp_path_factory):
    from models.zoo import build
    path = build(request.param, tmp_path_factory.mktemp(f"map-{request.param}"), exporter="legacy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ResNet's stride-2 1x1 skip convs drop a row by ONNX floor semantics
        graph = load_onnx(path)
    path.unlink()
    return graph


def test_every_layer_maps_on_every_array_and_dataflow(zoo_graph):
    for (rows, cols), df in ((a, d) for a in ARRAYS for d in Dataflow):
        cfg = override(preset("edge8"), rows=rows, cols=cols, dataflow=df.value)
        result = map_graph(zoo_graph, cfg)  # raises ConfigError on a refusal
        assert result.peak_footprint_bytes <= 1024 * cfg.sram_kib_total, (rows, cols, df)
        mem = Memory.of(cfg)
        res = plan_residency(zoo_graph, 1, mem.store_bytes)
        gemms = [n for n in zoo_graph.nodes if n.op in GEMM_OPS]
        rows_of = {r.name: r for r in result.layers}
        for node in gemms:
            layer = Layer.of(node, 1, node.inputs[0] in res.on_chip, node.output in res.on_chip)
            got = rows_of[node.name]
            dram = got.dram_read_bytes + got.dram_write_bytes
            assert dram >= compulsory_dram_bytes(layer), (node.name, rows, cols, df)
            holds = ((layer.a_on_chip or layer.a_total_bytes <= mem.ifmap_half)
                     and layer.b_bytes(layer.gemm.k, layer.gemm.n, True) <= mem.filter_half)
            if holds:
                assert dram == compulsory_dram_bytes(layer), (node.name, rows, cols, df)
            # partial sums never leave the chip: a layer writes its int8 output once, or nothing if resident
            assert got.dram_write_bytes == (0 if layer.out_on_chip else layer.gemm.groups * layer.gemm.m * layer.gemm.n)
