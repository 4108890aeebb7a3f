"""Every IR op, the new CNN ops included (Concat, Mul, Slice, ChannelShuffle, Resize, ZeroInsert,
table activations), maps on both engines: the cycle engine's int8 outputs equal the integer
executor's on every tensor, and its compute and stall cycles equal the analytical engine's per
layer, with the activations on chip and spilled to DRAM."""
import numpy as np
import pytest

from hwsim.analytical import map_graph, vector_work
from hwsim.config import Dataflow, override, preset
from hwsim.cycle import run_cycle
from quant.calibrate import collect_ranges
from quant.int_exec import quantize_input, run_int
from quant.ir import Op
from quant.onnx_import import load_onnx
from quant.quantize import quantize
from tests.quant.conftest import every_op_model


@pytest.fixture(scope="module")
def every_op_q(tmp_path_factory):
    graph = load_onnx(every_op_model(tmp_path_factory.mktemp("m") / "every_op.onnx"))
    return quantize(graph, collect_ranges(graph, np.random.default_rng(4).random((32, 3, 12, 12), dtype=np.float32)))


@pytest.mark.parametrize("df", list(Dataflow), ids=[d.value for d in Dataflow])
@pytest.mark.parametrize("store_kib", [64, 1], ids=["on-chip", "spilled"])
def test_every_op_on_both_engines(every_op_q, df, store_kib):
    assert {n.op for n in every_op_q.nodes} == set(Op)
    cfg = override(preset("edge8"), dataflow=df.value, ofmap_sram_kib=store_kib, ifmap_sram_kib=4,
                   dram_latency_cycles=17)
    x = quantize_input(np.random.default_rng(0).random((2, 3, 12, 12)), every_op_q.input_quant)
    run = run_cycle(every_op_q, x, cfg, batch=2)
    want = run_int(every_op_q, x, intermediate=True)
    for name, tensor in want.items():
        np.testing.assert_array_equal(run.tensors[name], tensor, err_msg=name)
    analytical = map_graph(every_op_q, cfg, batch=2)
    for sim, ana in zip(run.result.layers, analytical.layers, strict=True):
        assert (sim.compute_cycles, sim.stall_cycles) == (ana.compute_cycles, ana.stall_cycles), sim.name
    spilled = [layer.name for layer in analytical.layers if layer.unit == "vector" and layer.dram_read_bytes]
    assert bool(spilled) == (store_kib == 1), spilled


def test_vector_work_counts_one_element_op_per_output(every_op_q):
    """The vector unit's work per op (hwsim.analytical.vector_work): stated there, checked here."""
    by_op = {n.op: n for n in every_op_q.nodes}
    for op in (Op.CONCAT, Op.MUL, Op.SLICE, Op.SHUFFLE, Op.RESIZE, Op.ZERO_INSERT, Op.ACTIVATION):
        node = by_op[op]
        assert vector_work(node) == int(np.prod(node.out_shape[1:])), op
    assert vector_work(by_op[Op.FLATTEN]) == 0
