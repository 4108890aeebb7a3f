"""End to end: every Conv/Dense GEMM of 10 Fashion-MNIST test images through the RTL tile engine
(requant in RTL); the logits equal quant's integer executor's and each layer's RTL cycles equal hwsim's."""
import numpy as np

from hwsim.config import AcceleratorConfig
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from hwsim.timing import compute_cycles
from quant.data import Preprocess
from quant.int_exec import quantize_input, run_int
from rtl.e2e import simulate_model
from rtl.params import ArrayParams

IMAGES = 10


def test_lenet_logits_and_cycles_match_on_10_test_images(simulator, rtl_build, lenet_q, fashion_test):
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:IMAGES]), lenet_q.input_quant)
    result = simulate_model(lenet_q, x_q, ArrayParams(8, 8), simulator, "Fashion-MNIST", rtl_build)
    np.testing.assert_array_equal(result.output, run_int(lenet_q, x_q))
    assert result.bit_exact and result.mismatched_images == 0
    assert result.images == IMAGES
    # the RTL engine runs each GEMM layer whole (not yet hwsim's tiled schedule): the fold formula of
    # the untiled layer is its cycle count
    cfg = AcceleratorConfig(rows=8, cols=8)
    hwsim = {n.name: compute_cycles(plan(gemm_of(n, 1), cfg)) for n in lenet_q.nodes if n.op in GEMM_OPS}
    assert [layer.name for layer in result.layers] == ["node_conv2d", "node_conv2d_1", "node_conv2d_2",
                                                       "node_linear", "node_linear_1"]
    for layer in result.layers:
        assert len(layer.rtl_cycles) == IMAGES
        assert set(layer.rtl_cycles) == {hwsim[layer.name]}, layer.name
    # the comparison itself can fail: the executor's logits differ between images
    assert len({tuple(row) for row in run_int(lenet_q, x_q).tolist()}) == IMAGES
    assert result.free_cycles == IMAGES * sum(hwsim[layer.name] for layer in result.layers)
    assert np.all(np.array([layer.hwsim_cycles for layer in result.layers]) > 0)
    # what still runs on the host, reported honestly: 3 im2col expansions, the 2 pools and the flatten
    doc = result.to_dict()
    assert doc["host_ops"] == 6 and doc["rtl_total_cycles"] is None
    assert sum(1 for op in doc["host_op_list"] if op.startswith("im2col ")) == 3
    assert doc["rtl_gemm_cycles"] == sum(hwsim[layer.name] for layer in result.layers) < doc["hwsim_total_cycles"]
