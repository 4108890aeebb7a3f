"""The tiler (hwsim.tiling, issue 14's first step): every hard layer of the standard zoo tiles on
edge8's buffers in every dataflow and array shape, tiles fit their halves, DRAM traffic is never
below the compulsory minimum and equals it when everything fits, the vectorized pipeline equals a
plain loop written here independently, and slower DRAM only adds stall."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import Dataflow, override, preset
from hwsim.mapping import Gemm, plan
from hwsim.tiling import (
    CHANNEL_PARAM_BYTES,
    PSUM_BYTES,
    Layer,
    Memory,
    compulsory_dram_bytes,
    evaluate,
    map_layer,
)
from hwsim.timing import compute_cycles
from quant.errors import ConfigError


def conv(name, c_in, c_out, hw, k=3, stride=1, groups=1, pad=None):
    pad = k // 2 if pad is None else pad
    out = (hw + 2 * pad - k) // stride + 1
    return Layer(name, Gemm(out * out, c_in // groups * k * k, c_out // groups, groups), in_h=hw, in_w=hw,
                 channels=c_in // groups, kh=k, kw=k, stride=stride, out_w=out, out_h=out, dense=False)


def dense(name, k, n):
    return Layer(name, Gemm(1, k, n), channels=k)


# The layers the old rule refused on edge8 (ResNet-18/50, VGG-16, AlexNet, MobileNet-v1's hardest)
HARD = [conv("vgg conv1_2", 64, 64, 224), conv("vgg conv5_3", 512, 512, 14), dense("vgg fc6", 25088, 4096),
        conv("alexnet conv1", 3, 64, 224, k=11, stride=4, pad=2), conv("resnet conv1", 3, 64, 224, 7, 2),
        conv("resnet50 1x1", 2048, 512, 7, k=1), conv("resnet18 layer4", 512, 512, 7),
        conv("mobilenet dw", 32, 32, 112, groups=32), conv("mobilenet pw", 1024, 1024, 7, k=1),
        dense("resnet50 fc", 2048, 1000)]
CONFIGS = [(r, c, df) for r, c in ((8, 8), (16, 16), (32, 8)) for df in Dataflow]


@pytest.mark.parametrize("rows,cols,df", CONFIGS, ids=[f"{r}x{c}-{d.value}" for r, c, d in CONFIGS])
def test_every_hard_zoo_layer_tiles_on_edge8(rows, cols, df):
    cfg = override(preset("edge8"), rows=rows, cols=cols, dataflow=df.value)
    mem = Memory.of(cfg)
    for layer in HARD:
        m = map_layer(layer, cfg, mem)
        assert layer.a_bytes(m.m_t, m.k_t) <= mem.ifmap_half, layer.name
        assert layer.b_bytes(m.k_t, m.n_t, True) <= mem.filter_half, layer.name
        assert m.m_t * m.n_t * PSUM_BYTES <= mem.acc_half, layer.name
        assert m.dram_bytes >= compulsory_dram_bytes(layer), layer.name
        macs_per_cycle = layer.gemm.macs / m.compute_cycles
        assert macs_per_cycle <= rows * cols and m.total_cycles >= m.compute_cycles, layer.name


def test_dram_equals_the_compulsory_minimum_when_one_tile_holds_the_layer():
    """With the whole layer in one tile every operand is read once and the output written once. (The
    mapper itself may prefer smaller tiles, whose shorter exposed first load saves cycles, at the cost
    of re-reading the input rows that neighbouring m tiles share: line-buffer reuse is not modelled.)"""
    cfg = override(preset("edge8"), ifmap_sram_kib=8192, filter_sram_kib=65536, ofmap_sram_kib=32768)
    for layer in HARD[:2] + HARD[5:7]:
        g = layer.gemm
        for order in ("mn", "nm"):
            whole = evaluate(layer, cfg, Memory.of(cfg), g.m, g.k, g.n, order)
            assert whole is not None and whole.dram_bytes == compulsory_dram_bytes(layer), layer.name


def test_a_layer_whose_smallest_tile_cannot_fit_names_the_buffer_and_the_shortfall():
    cfg = override(preset("edge8"), ifmap_sram_kib=1)
    wide = conv("wide", 4, 8, 4096, k=3)  # three input rows of 4,096 pixels: 12 KiB > 512 B
    with pytest.raises(ConfigError, match=r"'wide'.*ifmap SRAM, [\d,]+ B more than half the buffer \(512 B\)"):
        map_layer(wide, cfg, Memory.of(cfg))


def test_slower_dram_only_adds_stall_and_latency_costs_cycles():
    cfg = preset("edge8")
    layer = conv("c", 64, 64, 56)
    fast = evaluate(layer, cfg, Memory.of(cfg), 256, 144, 16, "mn")
    slow = evaluate(layer, override(cfg, dram_bytes_per_cycle=0.5), Memory.of(override(cfg, dram_bytes_per_cycle=0.5)),
                    256, 144, 16, "mn")
    late = evaluate(layer, cfg, Memory.of(cfg, latency=100), 256, 144, 16, "mn")
    assert fast.compute_cycles == slow.compute_cycles == late.compute_cycles
    assert fast.dram_bytes == slow.dram_bytes
    assert slow.stall_cycles > fast.stall_cycles >= 0 and late.total_cycles > fast.total_cycles


def _reference(layer: Layer, cfg, mem: Memory, m_t: int, k_t: int, n_t: int, order: str):
    """The schedule as a plain loop (independent of the vectorized implementation)."""
    g = layer.gemm
    sizes = {d: [min(t, e - s) for s in range(0, e, t)] for d, e, t in (("m", g.m, m_t), ("k", g.k, k_t),
                                                                      ("n", g.n, n_t))}
    if order == "mn":
        a_res, b_res = layer.a_bytes(m_t, g.k) <= mem.ifmap_half, layer.b_bytes(g.k, g.n, True) <= mem.filter_half
    else:
        a_res, b_res = layer.a_bytes(g.m, g.k) <= mem.ifmap_half, layer.b_bytes(g.k, n_t, True) <= mem.filter_half
    steps = []
    outer, inner = ("m", "n") if order == "mn" else ("n", "m")
    for _ in range(g.groups):
        for oi, o in enumerate(sizes[outer]):
            for ii, i in enumerate(sizes[inner]):
                mm, nn = (o, i) if order == "mn" else (i, o)
                a_first, b_first = (ii == 0, oi == 0) if order == "mn" else (oi == 0, ii == 0)
                for ki, kk in enumerate(sizes["k"]):
                    a = 0 if a_res and not a_first else layer.a_bytes(mm, kk)
                    b = 0 if b_res and not b_first else kk * nn + (CHANNEL_PARAM_BYTES * nn if ki == 0 else 0)
                    if cfg.dataflow is Dataflow.OS:
                        tile = compute_cycles(plan(Gemm(mm, g.k, nn), cfg, Dataflow.OS))
                        done = sum(sizes["k"][:ki])
                        c = tile * (done + kk) // g.k - tile * done // g.k
                    else:
                        c = compute_cycles(plan(Gemm(mm, kk, nn), cfg))
                    steps.append((a + b, c, mm * nn if ki == len(sizes["k"]) - 1 else 0))
    total = mem.dma_cycles(steps[0][0])
    for i, (_, c, _) in enumerate(steps):
        nxt = (mem.dma_cycles(steps[i + 1][0]) if i + 1 < len(steps) else 0) + \
            (mem.dma_cycles(steps[i - 1][2]) if i > 0 else 0)
        total += max(c, nxt)
    return total + mem.dma_cycles(steps[-1][2]), sum(s[1] for s in steps), sum(s[0] for s in steps)


@settings(max_examples=60, deadline=None)
@given(c_in=st.integers(1, 8), c_out=st.integers(1, 12), hw=st.integers(3, 12), k=st.sampled_from([1, 3]),
       groups=st.sampled_from([1, 2]), df=st.sampled_from(list(Dataflow)), latency=st.integers(0, 20),
       m_t=st.integers(1, 64), kc=st.integers(1, 8), n_t=st.integers(1, 12), order=st.sampled_from(["mn", "nm"]))
def test_vectorized_pipeline_equals_a_plain_loop(c_in, c_out, hw, k, groups, df, latency, m_t, kc, n_t, order):
    c_in, c_out = c_in * groups, c_out * groups
    layer = conv("c", c_in, c_out, hw, k=k, groups=groups)
    cfg = override(preset("edge8"), rows=4, cols=4, dataflow=df.value, ifmap_sram_kib=1, filter_sram_kib=1,
                   ofmap_sram_kib=1, dram_bytes_per_cycle=2)
    mem = Memory.of(cfg, latency=latency, request_bytes=16)
    k_t = min(layer.gemm.k, kc * k * k)
    got = evaluate(layer, cfg, mem, min(m_t, layer.gemm.m), k_t, min(n_t, layer.gemm.n), order)
    if got is None:
        return
    total, compute, loads = _reference(layer, cfg, mem, min(m_t, layer.gemm.m), k_t, min(n_t, layer.gemm.n), order)
    assert (got.total_cycles, got.compute_cycles, got.dram_read_bytes) == (total, compute, loads)
    assert got.dram_bytes >= compulsory_dram_bytes(layer) or math.isclose(got.dram_bytes,
                                                                          compulsory_dram_bytes(layer))
