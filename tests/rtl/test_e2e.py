"""End to end: every Conv/Dense GEMM of 10 Fashion-MNIST test images through the RTL tile engine as
hwsim's mapper tiled it (K chunks accumulating in the engine, requant in RTL); the logits equal quant's
integer executor's and each layer's RTL cycles equal the compute cycles of hwsim's analytical engine and
of its cycle-accurate engine."""
import numpy as np
import pytest

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.cycle import run_cycle
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from hwsim.timing import compute_cycles
from quant.data import Preprocess
from quant.errors import ConfigError
from quant.int_exec import quantize_input, run_int
from rtl.e2e import simulate_model
from rtl.params import ArrayParams, EngineParams

IMAGES = 10


def test_lenet_logits_and_cycles_match_on_10_test_images(simulator, rtl_build, lenet_q, fashion_test):
    """10 images in the Verilator harness; 3 on Icarus (four-state: no X reaches a live result lane),
    whose event-driven simulation of the pipelined engine runs at about 1,200 cycles/s."""
    images = IMAGES if simulator == "verilator" else 3
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:images]), lenet_q.input_quant)
    result = simulate_model(lenet_q, x_q, ArrayParams(8, 8), simulator, "Fashion-MNIST", rtl_build)
    np.testing.assert_array_equal(result.output, run_int(lenet_q, x_q))
    assert result.bit_exact and result.mismatched_images == 0
    assert result.images == images
    # the RTL runs each GEMM layer as the mapper's chunks (edge8 at 8x8): its cycles are the tiled
    # schedule's compute cycles, as both hwsim engines count them
    cfg = AcceleratorConfig(rows=8, cols=8)
    hwsim = {layer.name: layer.compute_cycles for layer in map_graph(lenet_q, cfg).layers if layer.unit == "array"}
    stepped = {layer.name: layer.compute_cycles for layer in run_cycle(lenet_q, x_q[:1], cfg).result.layers
               if layer.unit == "array"}
    assert stepped == hwsim
    untiled = {n.name: compute_cycles(plan(gemm_of(n, 1), cfg)) for n in lenet_q.nodes if n.op in GEMM_OPS}
    assert untiled != hwsim  # the tiling shows: some layers run in several chunks
    assert [layer.name for layer in result.layers] == ["node_conv2d", "node_conv2d_1", "node_conv2d_2",
                                                       "node_linear", "node_linear_1"]
    for layer in result.layers:
        assert len(layer.rtl_cycles) == images
        assert set(layer.rtl_cycles) == {hwsim[layer.name]}, layer.name
    # the comparison itself can fail: the executor's logits differ between images
    assert len({tuple(row) for row in run_int(lenet_q, x_q).tolist()}) == images
    assert result.free_cycles == images * sum(hwsim[layer.name] for layer in result.layers)
    assert np.all(np.array([layer.hwsim_cycles for layer in result.layers]) > 0)
    # what still runs on the host, reported honestly: 3 im2col expansions, the 2 pools and the flatten
    doc = result.to_dict()
    assert doc["host_ops"] == 6 and doc["rtl_total_cycles"] is None
    assert sum(1 for op in doc["host_op_list"] if op.startswith("im2col ")) == 3
    assert doc["rtl_gemm_cycles"] == sum(hwsim[layer.name] for layer in result.layers) < doc["hwsim_total_cycles"]


def test_tanh_avgpool_lenet_on_16x16_through_the_harness(rtl_build, tmp_path):
    """The classic LeNet-5 (tanh, average pools, 32x32 inputs) on a 16x16 engine in the Verilator harness:
    logits bit-exact, each layer's RTL cycles equal to the analytical engine's tiled compute cycles."""
    from models.zoo import build
    from quant.calibrate import collect_ranges
    from quant.onnx_import import load_onnx
    from quant.quantize import quantize

    graph = load_onnx(build("lenet5_classic", tmp_path, "legacy"))
    rng = np.random.default_rng(3)
    qgraph = quantize(graph, collect_ranges(graph, rng.standard_normal((8, *graph.input_shape[1:]), np.float32)))
    x_q = quantize_input(rng.standard_normal((IMAGES, *graph.input_shape[1:])), qgraph.input_quant)
    result = simulate_model(qgraph, x_q, ArrayParams(16, 16), "verilator", "random", rtl_build)
    np.testing.assert_array_equal(result.output, run_int(qgraph, x_q))
    assert len({tuple(row) for row in result.output.reshape(IMAGES, -1).tolist()}) == IMAGES
    cfg = AcceleratorConfig(rows=16, cols=16)
    hwsim = {layer.name: layer.compute_cycles for layer in map_graph(qgraph, cfg).layers if layer.unit == "array"}
    assert {layer.name: set(layer.rtl_cycles) for layer in result.layers} == {k: {v} for k, v in hwsim.items()}


@pytest.mark.parametrize("side, sram_sized", [(8, True), (16, False)])
def test_lenet_weight_stationary_through_the_harness(rtl_build, lenet_q, fashion_test, side, sram_sized):
    """The WS engine (weights preloaded down a chain into shadow registers, partial sums flowing down, K
    tiles adding up in the accumulator memory, inputs read raw through the hardware im2col) on 10 test
    images: logits bit-exact, each layer's RTL cycles equal to the WS compute cycles of hwsim's
    analytical and cycle-accurate engines, and no im2col left on the host. On 8x8 the engine's memories
    are edge8's SRAMs byte for byte (64, 64, 32 and 64 KiB)."""
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:IMAGES]), lenet_q.input_quant)
    result = simulate_model(lenet_q, x_q, ArrayParams(side, side, dataflow="ws"), "verilator", "Fashion-MNIST",
                            rtl_build, sram_sized=sram_sized)
    if sram_sized:
        assert result.engine == EngineParams.from_config(AcceleratorConfig(dataflow=Dataflow.WS))
    np.testing.assert_array_equal(result.output, run_int(lenet_q, x_q))
    assert result.to_dict()["dataflow"] == "ws"
    cfg = AcceleratorConfig(rows=side, cols=side, dataflow=Dataflow.WS)
    hwsim = {layer.name: layer.compute_cycles for layer in map_graph(lenet_q, cfg).layers if layer.unit == "array"}
    if side == 8:  # the cycle engine steps every PE in Python: 8x8 here, more in tests/hwsim/test_cycle.py
        stepped = {layer.name: layer.compute_cycles for layer in run_cycle(lenet_q, x_q[:1], cfg).result.layers
                   if layer.unit == "array"}
        assert stepped == hwsim
    os_cycles = {layer.name: layer.compute_cycles
                 for layer in map_graph(lenet_q, AcceleratorConfig(rows=side, cols=side)).layers
                 if layer.unit == "array"}
    assert hwsim != os_cycles  # the dataflow shows in the cycles
    assert {layer.name: set(layer.rtl_cycles) for layer in result.layers} == {k: {v} for k, v in hwsim.items()}
    doc = result.to_dict()
    assert doc["host_ops"] == 3 and not any(op.startswith("im2col") for op in doc["host_op_list"])


def test_se_block_weight_stationary_hardware_im2col(rtl_build, tmp_path):
    """The hardware im2col on what LeNet lacks: a 3-channel stem (padding 1), stride-2 and 5x5 depthwise
    convs (64 and 96 groups, padding 2), 1x1 expansions and the SE block's 1x1 convs on 1x1 maps:
    logits bit-exact, every layer's cycles equal to the analytical engine's."""
    from models.zoo import build
    from quant.calibrate import collect_ranges
    from quant.onnx_import import load_onnx
    from quant.quantize import quantize

    graph = load_onnx(build("se_block", tmp_path, "legacy"))
    rng = np.random.default_rng(3)
    qgraph = quantize(graph, collect_ranges(graph, rng.standard_normal((8, *graph.input_shape[1:]), np.float32)))
    x_q = quantize_input(rng.standard_normal((2, *graph.input_shape[1:])), qgraph.input_quant)
    result = simulate_model(qgraph, x_q, ArrayParams(8, 8, dataflow="ws"), "verilator", "random", rtl_build)
    np.testing.assert_array_equal(result.output, run_int(qgraph, x_q))
    convs = [n for n in qgraph.nodes if n.op.value == "Conv"]
    assert {n.attrs.stride[0] for n in convs} == {1, 2} and max(n.attrs.groups for n in convs) == 96
    assert {n.attrs.kernel[0] for n in convs} == {1, 3, 5}
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow=Dataflow.WS)
    hwsim = {layer.name: layer.compute_cycles for layer in map_graph(qgraph, cfg).layers if layer.unit == "array"}
    assert {layer.name: set(layer.rtl_cycles) for layer in result.layers} == {k: {v} for k, v in hwsim.items()}
    assert not any(op.startswith("im2col") for op in result.host_ops)


def test_batch_of_4_on_edge8_memories(rtl_build, lenet_q, fashion_test):
    """Batch > 1: each layer runs once per 4 images (M = 4 x output pixels; the tiler's chunks cross image
    boundaries and the hardware im2col wraps from one image's rows to the next's), on the same edge8-sized
    WS engine as the batch-1 test: logits bit-exact, each layer's cycles equal to hwsim's at batch 4."""
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:8]), lenet_q.input_quant)
    result = simulate_model(lenet_q, x_q, ArrayParams(8, 8, dataflow="ws"), "verilator", "Fashion-MNIST",
                            rtl_build, sram_sized=True, batch=4)
    np.testing.assert_array_equal(result.output, run_int(lenet_q, x_q))
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow=Dataflow.WS)
    at4 = {layer.name: layer.compute_cycles for layer in map_graph(lenet_q, cfg, batch=4).layers
           if layer.unit == "array"}
    at1 = {layer.name: layer.compute_cycles for layer in map_graph(lenet_q, cfg).layers if layer.unit == "array"}
    assert {layer.name: set(layer.rtl_cycles) for layer in result.layers} == {k: {v} for k, v in at4.items()}
    assert all(len(layer.rtl_cycles) == 2 for layer in result.layers)  # two runs of 4 images
    assert at4["node_conv2d"] > 3 * at1["node_conv2d"]  # the batch shows in M
    with pytest.raises(ConfigError, match="whole number of batches"):
        simulate_model(lenet_q, x_q[:6], ArrayParams(8, 8, dataflow="ws"), "verilator", "", rtl_build, batch=4)
