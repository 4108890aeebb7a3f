"""The memory system (hwsim.memory): DMA time of a transfer, and which activations stay on chip."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import override, preset
from hwsim.cycle import DmaQueue
from hwsim.memory import Memory, plan_residency, tensor_bytes


def test_a_transfer_pays_the_latency_once_and_moves_whole_requests():
    mem = Memory(512, 512, 512, 1024, bw=4.0, latency=10, request_bytes=64)
    assert mem.dma_cycles(0) == 0
    assert mem.dma_cycles(1) == 10 + 16  # one whole 64-byte request at 4 B/cycle
    assert mem.dma_cycles(64) == 10 + 16 and mem.dma_cycles(65) == 10 + 32
    assert mem.dma_cycles(6400) == 10 + 1600


@settings(max_examples=200, deadline=None)
@given(nbytes=st.integers(0, 5000), bw=st.floats(0.01, 100.0), latency=st.integers(0, 30),
       request=st.integers(1, 128))
def test_dma_time_is_the_fewest_cycles_that_move_the_requests(nbytes, bw, latency, request):
    """Closed form (Memory.dma_cycles) against the DMA queue stepped a cycle at a time."""
    mem = Memory(1, 1, 1, 1, bw=bw, latency=latency, request_bytes=request)
    moved = math.ceil(nbytes / request) * request
    got = mem.dma_cycles(nbytes)
    if nbytes:
        c = got - latency
        assert c * bw >= moved and (c - 1) * bw < moved
    queue, cycles = DmaQueue(mem), 0
    queue.push(nbytes)
    while queue.busy:
        queue.tick()
        cycles += 1
    assert cycles == got


def test_every_lenet_activation_stays_on_chip_in_64_kib(lenet):
    res = plan_residency(lenet, 1, 64 * 1024)
    inner = {n.output for n in lenet.nodes} - {lenet.output}
    assert res.on_chip == frozenset(inner)
    assert max(res.store_bytes) <= 64 * 1024


@pytest.mark.parametrize("kib", [1, 4, 8, 16])
def test_residents_never_overflow_the_store_and_the_input_and_output_cross_dram(lenet, kib):
    res = plan_residency(lenet, 4, kib * 1024)
    assert max(res.store_bytes) <= kib * 1024
    assert lenet.input_name not in res.on_chip and lenet.output not in res.on_chip
    views = {n.output for n in lenet.nodes if n.op.value == "Flatten"}
    for i, node in enumerate(lenet.nodes):  # a node's resident operands are counted while it runs
        touched = {t for t in (*node.inputs, node.output) if t in res.on_chip and t not in views}
        assert sum(tensor_bytes(lenet, t, 4) for t in touched) <= res.store_bytes[i]


def test_a_small_store_keeps_nothing(lenet):
    cfg = override(preset("edge8"), ofmap_sram_kib=1)
    res = plan_residency(lenet, 1, cfg.sram_bytes("ofmap"))
    assert all(tensor_bytes(lenet, t, 1) <= 1024 for t in res.on_chip)
    assert "node_conv2d" not in {n.name for n in lenet.nodes if n.output in res.on_chip}  # 6x28x28 > 1 KiB


def test_only_non_overlapping_pools_right_after_a_conv_are_fusable(lenet, tmp_path):
    import numpy as np

    from hwsim.memory import fusable_pools
    from quant.onnx_import import load_onnx
    from tests.helpers import chain_model
    assert {c: p.name for c, p in fusable_pools(lenet).items()} == {"node_conv2d": "node_max_pool2d",
                                                                    "node_conv2d_1": "node_max_pool2d_1"}
    w = np.ones((4, 3, 3, 3), np.float32)
    for attrs in ({"kernel_shape": [3, 3], "strides": [2, 2]},  # overlapping windows
                  {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]},  # padded
                  {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}):  # 7 rows: a partial window
        path = chain_model(tmp_path / "m.onnx", (1, 3, 9, 9), [("Conv", {"w": w}, {}), ("MaxPool", {}, attrs),
                                                               ("Flatten", {}, {})])
        assert fusable_pools(load_onnx(path)) == {}, attrs


def test_a_fused_conv_output_is_never_stored(lenet):
    from hwsim.memory import fusable_pools
    fused = fusable_pools(lenet)
    res = plan_residency(lenet, 1, 64 * 1024, fused=fused)
    convs = {n.output for n in lenet.nodes if n.name in fused}
    assert not convs & res.on_chip and {p.output for p in fused.values()} <= res.on_chip
