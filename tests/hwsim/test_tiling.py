"""The tiler (hwsim.tiling): every hard layer of the standard zoo tiles on edge8's buffers in every
dataflow and array shape, tiles fit their halves, DRAM traffic is never below the compulsory
minimum and equals it when the SRAM holds the layer, the vectorized costs equal a plain loop written
here independently, the pruned mapper finds the exhaustive optimum, and slower DRAM only adds stall."""
from __future__ import annotations

from dataclasses import replace
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import Dataflow, override, preset
from hwsim.mapping import Gemm, plan
from hwsim.memory import CHANNEL_PARAM_BYTES, PSUM_BYTES, Memory
from hwsim.tiling import (
    Layer,
    candidate_tiles,
    compulsory_dram_bytes,
    dram_bytes_of,
    evaluate,
    fits,
    map_layer,
    schedule,
)
from hwsim.timing import compute_cycles
from quant.errors import ConfigError


def conv(name, c_in, c_out, hw, k=3, stride=1, groups=1, pad=None, batch=1, dilation=1):
    pad = k // 2 if pad is None else pad
    out = (hw + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    return Layer(name, Gemm(batch * out * out, c_in // groups * k * k, c_out // groups, groups), in_h=hw, in_w=hw,
                 channels=c_in // groups, kh=k, kw=k, stride=stride, dilation=dilation, pad_top=pad, out_w=out,
                 out_h=out, dense=False)


def dense(name, k, n, batch=1):
    return Layer(name, Gemm(batch, k, n), channels=k)


# The layers the old whole-fold rule refused on edge8 (ResNet-18/50, VGG-16, AlexNet, MobileNet-v1's hardest)
HARD = [conv("vgg conv1_2", 64, 64, 224), conv("vgg conv5_3", 512, 512, 14), dense("vgg fc6", 25088, 4096),
        conv("alexnet conv1", 3, 64, 227, k=11, stride=4, pad=0), conv("resnet conv1", 3, 64, 224, 7, 2),
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
        assert fits(layer, mem, m.m_t, m.k_t, m.n_t) is None, layer.name
        assert m.traffic.footprint <= 2 * (mem.ifmap_half + mem.filter_half + mem.acc_half), layer.name
        assert m.dram_bytes >= compulsory_dram_bytes(layer), layer.name
        assert m.dram_bytes == dram_bytes_of(layer, mem, m.m_t, m.k_t, m.n_t, m.order), layer.name
        assert layer.gemm.macs / m.compute_cycles <= rows * cols and m.total_cycles >= m.compute_cycles, layer.name
        assert m.traffic.acc_sram_write >= PSUM_BYTES * layer.gemm.groups * layer.gemm.m * layer.gemm.n


def test_dram_is_the_compulsory_minimum_when_the_sram_holds_the_layer():
    """When the whole input and filter fit their halves, every tiling reads each byte once (the
    input rows neighbouring m tiles share stay on chip), so the mapper's choice does too."""
    cfg = override(preset("edge8"), ifmap_sram_kib=16384, filter_sram_kib=65536, acc_sram_kib=65536)
    mem = Memory.of(cfg)
    narrow = [replace(conv("6-bit", 24, 20, 14), w_bits=6, a_bits=6), replace(dense("3-bit fc", 500, 30), w_bits=3,
                                                                                a_bits=3)]
    for layer in [*HARD[:2], *HARD[5:8], conv("batch 3", 16, 32, 20, batch=3), conv("strided", 8, 8, 17, 3, 2),
                  conv("1x1 stride 2", 128, 256, 28, 1, 2, pad=0), *narrow]:
        assert map_layer(layer, cfg, mem).dram_bytes == compulsory_dram_bytes(layer), layer.name
        g = layer.gemm
        for m_t, n_t, order in product((8, 64, g.m), (8, g.n), ("mn", "nm")):
            got = evaluate(layer, cfg, mem, m_t, g.k, n_t, order)
            assert got.dram_bytes == compulsory_dram_bytes(layer), (layer.name, m_t, n_t, order)


def test_compulsory_input_is_the_raw_input_once():
    layer = conv("c", 3, 8, 32)  # pad 1: every row read
    assert layer.a_total_bytes == 3 * 32 * 32
    strided = conv("s", 1, 1, 9, k=1, stride=3, pad=0)  # reads rows 0, 3, 6 only: the DMA skips the rest
    assert strided.a_total_bytes == 3 * 9
    batched = conv("b", 2, 4, 10, batch=4)
    assert batched.a_total_bytes == 4 * 2 * 10 * 10


def _span_rows(layer: Layer, pixels: range) -> set[tuple[int, int]]:
    """(image, input row) of the row span each image's output pixels in `pixels` read, less the rows
    no window of the layer reads."""
    used = {oy * layer.stride - layer.pad_top + j * layer.dilation for oy in range(layer.out_h)
            for j in range(layer.kh)}
    per_image: dict[int, list[int]] = {}
    for p in pixels:
        image, oy = divmod(p // layer.out_w, layer.out_h)
        for j in range(layer.kh):
            r = oy * layer.stride - layer.pad_top + j * layer.dilation
            if 0 <= r < layer.in_h:
                per_image.setdefault(image, []).append(r)
    return {(i, r) for i, rows in per_image.items() for r in range(min(rows), max(rows) + 1) if r in used}


@settings(max_examples=300, deadline=None)
@given(hw=st.integers(3, 14), k=st.integers(1, 5), stride=st.integers(1, 4), pad=st.integers(0, 2),
       dilation=st.integers(1, 2), batch=st.integers(1, 3), m_t=st.integers(1, 60))
def test_tile_rows_and_new_rows_match_a_brute_force_count(hw, k, stride, pad, dilation, batch, m_t):
    if hw + 2 * pad < dilation * (k - 1) + 1:
        return
    layer = conv("c", 1, 1, hw, k, stride, pad=pad, batch=batch, dilation=dilation)
    m, rows, new = layer.m_tiles(m_t)
    seen: set = set()
    for i, m0 in enumerate(range(0, layer.gemm.m, m_t)):
        need = _span_rows(layer, range(m0, m0 + m[i]))
        assert rows[i] == len(need) and new[i] == len(need - seen), (i, m0)
        seen |= need


def _loop_costs(layer: Layer, cfg, mem: Memory, m_t: int, k_t: int, n_t: int, order: str):
    """Cycles and bytes of the mapping's plain-loop schedule, priced here step by step."""
    probe = evaluate(layer, cfg, mem, m_t, k_t, n_t, order)
    steps = schedule(layer, mem, probe)
    computes = [compute_cycles(plan(Gemm(s.m, s.k, s.n), cfg)) for s in steps]
    total = mem.dma_cycles(steps[0].a_bytes) + mem.dma_cycles(steps[0].b_bytes)
    for i, c in enumerate(computes):
        during = mem.dma_cycles(steps[i - 1].store_bytes) if i else 0
        if i + 1 < len(steps):
            during += mem.dma_cycles(steps[i + 1].a_bytes) + mem.dma_cycles(steps[i + 1].b_bytes)
        total += max(c, during)
    total += mem.dma_cycles(steps[-1].store_bytes)
    macs = sum(s.m * s.k * s.n for s in steps)
    return probe, steps, total, sum(computes), macs


@settings(max_examples=80, deadline=None)
@given(c_in=st.integers(1, 8), c_out=st.integers(1, 12), hw=st.integers(3, 12), k=st.sampled_from([1, 3]),
       groups=st.sampled_from([1, 2, 3]), batch=st.integers(1, 2), df=st.sampled_from(list(Dataflow)),
       latency=st.integers(0, 20), request=st.sampled_from([1, 16, 64]), bw=st.sampled_from([0.3, 2.0, 5.0]),
       m_t=st.integers(1, 64), kc=st.integers(1, 8), n_t=st.integers(1, 12), order=st.sampled_from(["mn", "nm"]),
       kib=st.sampled_from([1, 2, 64]), a_on_chip=st.booleans(), out_on_chip=st.booleans(),
       stride=st.sampled_from([1, 2, 3]))
def test_vectorized_costs_equal_the_plain_loop(c_in, c_out, hw, k, groups, batch, df, latency, request, bw, m_t, kc,
                                               n_t, order, kib, a_on_chip, out_on_chip, stride):
    layer = conv("c", c_in * groups, c_out * groups, hw, k=k, groups=groups, batch=batch, stride=stride)
    layer = replace(layer, a_on_chip=a_on_chip, out_on_chip=out_on_chip)
    cfg = override(preset("edge8"), rows=4, cols=4, dataflow=df.value, ifmap_sram_kib=kib, filter_sram_kib=kib,
                   acc_sram_kib=kib, dram_bytes_per_cycle=bw, dram_latency_cycles=latency, dram_request_bytes=request)
    mem = Memory.of(cfg)
    k_t = min(layer.gemm.k, kc * k * k)
    if evaluate(layer, cfg, mem, m_t, k_t, n_t, order) is None:
        return
    got, steps, total, compute, macs = _loop_costs(layer, cfg, mem, m_t, k_t, n_t, order)
    assert (got.total_cycles, got.compute_cycles, got.steps) == (total, compute, len(steps))
    assert got.traffic.dram_read == sum(s.a_bytes + s.b_bytes for s in steps)
    assert got.traffic.dram_write == sum(s.store_bytes for s in steps)
    assert got.dram_bytes == dram_bytes_of(layer, mem, m_t, k_t, n_t, order)
    assert macs == layer.gemm.macs and got.dram_bytes >= compulsory_dram_bytes(layer)
    assert got.folds == sum(plan(Gemm(s.m, s.k, s.n), cfg).folds for s in steps)
    # every output tile is stored once, after its last k chunk
    assert sum(1 for s in steps if s.k0 + s.k == layer.gemm.k) == len({(s.g, s.m0, s.n0) for s in steps})


@settings(max_examples=50, deadline=None)
@given(c_in=st.integers(1, 24), c_out=st.integers(1, 24), hw=st.integers(3, 16), k=st.sampled_from([1, 3, 5]),
       df=st.sampled_from(list(Dataflow)), kib=st.sampled_from([1, 2, 4]), latency=st.integers(0, 50),
       bw=st.sampled_from([0.5, 4.0, 32.0]), groups=st.sampled_from([1, 2]), a_on_chip=st.booleans(),
       out_on_chip=st.booleans(), stride=st.sampled_from([1, 2, 3]))
def test_the_pruned_mapper_finds_the_exhaustive_optimum(c_in, c_out, hw, k, df, kib, latency, bw, groups, a_on_chip,
                                                        out_on_chip, stride):
    """Strides up to 3 include windows that skip input rows (1x1 stride 2 and 3)."""
    layer = replace(conv("c", c_in * groups, c_out * groups, hw, k=k, groups=groups, stride=stride),
                    a_on_chip=a_on_chip, out_on_chip=out_on_chip)
    cfg = override(preset("edge8"), rows=4, cols=4, dataflow=df.value, ifmap_sram_kib=kib, filter_sram_kib=kib,
                   acc_sram_kib=kib, dram_latency_cycles=latency, dram_bytes_per_cycle=bw)
    mem = Memory.of(cfg)
    try:
        best = map_layer(layer, cfg, mem)
    except ConfigError:
        return
    every = [evaluate(layer, cfg, mem, m_t, k_t, n_t, order)
             for (m_t, n_t, k_t), order in product(candidate_tiles(layer, cfg), ("mn", "nm"))]
    assert len(every) >= 2 and best.total_cycles == min(m.total_cycles for m in every if m is not None)


def test_a_layer_whose_smallest_tile_cannot_fit_names_the_buffer_and_the_shortfall():
    cfg = override(preset("edge8"), ifmap_sram_kib=1)
    wide = conv("wide", 4, 8, 4096, k=3)  # three input rows of 4,096 pixels: 12 KiB > 512 B
    with pytest.raises(ConfigError, match=r"'wide'.*ifmap SRAM, [\d,]+ B more than half the buffer \(512 B\)"):
        map_layer(wide, cfg, Memory.of(cfg))
    huge_k = dense("deep", 1 << 16, 4)
    cfg = override(preset("edge8"), filter_sram_kib=1)  # 1 x 1 B tile + 8 B of channel parameters fits
    assert map_layer(huge_k, cfg, Memory.of(cfg)).k_t < huge_k.gemm.k


def test_slower_or_later_dram_only_adds_stall():
    cfg = preset("edge8")
    layer = conv("c", 64, 64, 56)
    runs = {}
    for name, c in (("fast", cfg), ("slow", override(cfg, dram_bytes_per_cycle=0.5)),
                    ("late", override(cfg, dram_latency_cycles=400))):
        runs[name] = evaluate(layer, c, Memory.of(c), 256, 144, 16, "mn")
    fast, slow, late = runs["fast"], runs["slow"], runs["late"]
    assert fast.compute_cycles == slow.compute_cycles == late.compute_cycles
    assert fast.dram_bytes == slow.dram_bytes == late.dram_bytes
    assert slow.stall_cycles > fast.stall_cycles >= 0 and late.stall_cycles > fast.stall_cycles


def test_dense_chunks_carry_the_channel_parameters_once():
    cfg = override(preset("edge8"), filter_sram_kib=4)
    layer = dense("fc", 4000, 16)
    m = map_layer(layer, cfg, Memory.of(cfg))
    assert m.k_t < 4000  # K is split: 4,000 x 16 B of weights do not fit a 2 KiB half
    steps = schedule(layer, Memory.of(cfg), m)
    assert sum(s.b_bytes for s in steps) == 4000 * 16 + CHANNEL_PARAM_BYTES * 16
    assert np.all([s.store_bytes == (s.m * s.n if s.k0 + s.k == 4000 else 0) for s in steps])


def test_narrow_values_are_packed_in_sram_and_dram(lenet):
    """4-bit weights and activations take half the bytes of 8-bit ones (rounded up per tile), so a
    4-bit design point moves less data and fits larger tiles; the MACs and the schedule's rules stay."""
    from hwsim.analytical import map_graph
    cfg = preset("edge8")
    w8 = map_graph(lenet, cfg)
    w4 = map_graph(lenet, cfg, weight_bits=4, act_bits=4)
    weights = sum(n.weights_count for n in lenet.nodes)
    params = CHANNEL_PARAM_BYTES * sum(n.out_shape[1] for n in lenet.nodes if n.op.value in ("Conv", "Dense"))
    assert w8.total("dram_read_bytes") == 784 + weights + params
    assert w4.total("dram_read_bytes") == 784 // 2 + weights // 2 + params  # every tile's values packed 2 per byte
    assert w4.total("dram_write_bytes") == 5 and w8.total("dram_write_bytes") == 10  # the logits
    assert w4.total("macs") == w8.total("macs") and w4.total_cycles < w8.total_cycles
    layer = replace(conv("c", 3, 5, 7), w_bits=3, a_bits=5)
    assert layer.b_bytes(27, 5, False) == -(-27 * 5 * 3 // 8) and layer.row_bytes(27) == -(-7 * 3 * 5 // 8)


def test_an_accumulator_smaller_than_the_array_gets_tiles_smaller_than_the_array():
    """128 x 128 x 4 B of partial sums do not fit a 16 KiB accumulator half: rather than falling
    back to one-pixel tiles, the mapper takes the largest unaligned tiles that fit."""
    cfg = override(preset("edge8"), rows=128, cols=128)
    layer = conv("resnet conv1", 3, 64, 224, 7, 2)
    m = map_layer(layer, cfg, Memory.of(cfg))
    assert m.m_t * m.n_t * PSUM_BYTES <= Memory.of(cfg).acc_half and m.steps < 1000
