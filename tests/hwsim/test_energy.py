"""The energy model reproduces its cited tables and adds up; leakage follows latency, PEs and SRAM."""
import dataclasses

import pytest

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig
from hwsim.energy import (
    ADD32_LEAK_W,
    ADD32_PJ,
    DRAM_64BIT_PJ,
    MULT8_PJ,
    MULT32_LEAK_W,
    REG_LEAK_W_PER_BIT,
    REG_PJ_PER_BIT,
    SRAM_LEAK_W_PER_KIB,
    inference_energy,
    layer_energy,
    leak_w,
    mac_pj,
    pe_leak_w,
    register_pj_per_mac,
    sram_pj_per_byte,
)


def test_table_points():
    # Horowitz, ISSCC 2014: 8/32/1024 KB SRAM at 10/20/100 pJ per 64-bit access
    assert [sram_pj_per_byte(k) for k in (8, 32, 1024)] == pytest.approx([10 / 8, 20 / 8, 100 / 8])
    assert sram_pj_per_byte(8) < sram_pj_per_byte(16) < sram_pj_per_byte(32) < sram_pj_per_byte(256)
    assert mac_pj(8) == pytest.approx(MULT8_PJ + ADD32_PJ) and mac_pj(4) == pytest.approx(MULT8_PJ / 4 + ADD32_PJ)
    # Aladdin 40 nm: 0.009 pJ per register bit; two 8-bit operands in and out, a 32-bit accumulator read and written
    assert register_pj_per_mac(8) == pytest.approx(96 * REG_PJ_PER_BIT) == pytest.approx(0.864)
    # 8-bit multiplier (32-bit leakage x (8/32)^2), 32-bit adder, 48 register bits: 10.76 uW a PE
    assert pe_leak_w(8) == pytest.approx(MULT32_LEAK_W / 16 + ADD32_LEAK_W + 48 * REG_LEAK_W_PER_BIT)
    assert pe_leak_w(8) == pytest.approx(10.76e-6) and pe_leak_w(4) < pe_leak_w(8)
    # CACTI 7, 45 nm, itrs-lstp: 1.166e-3 mW for a 64 KiB bank
    assert 64 * SRAM_LEAK_W_PER_KIB == pytest.approx(1.166e-6, rel=1e-3)


def test_lenet_energy_adds_up(lenet):
    cfg = AcceleratorConfig()
    mapped = map_graph(lenet, cfg)
    e = inference_energy(mapped)
    assert e.mac_pj == pytest.approx(416_520 * mac_pj(8))
    assert e.register_pj == pytest.approx(416_520 * register_pj_per_mac(8))
    dram = mapped.total("dram_read_bytes") + mapped.total("dram_write_bytes")
    assert e.dram_pj == pytest.approx(dram * DRAM_64BIT_PJ / 8)
    t = [layer.traffic for layer in mapped.layers]
    acc = sum(x.acc_sram_read + x.acc_sram_write for x in t)
    sram = mapped.total("sram_read_bytes") + mapped.total("sram_write_bytes")
    assert acc > 0  # int32 partial sums: every chunk writes them, and requant reads them
    # ifmap, filter and ofmap buffers are 64 KiB, the accumulator 32 KiB
    assert e.sram_pj == pytest.approx((sram - acc) * sram_pj_per_byte(64) + acc * sram_pj_per_byte(32))
    # static power of 64 PEs and 224 KiB of SRAM for the run's latency; the layers' shares add up to it
    assert leak_w(cfg) == pytest.approx(64 * pe_leak_w(8) + 224 * SRAM_LEAK_W_PER_KIB)
    assert e.leakage_pj == pytest.approx(leak_w(cfg) * mapped.latency_s * 1e12) and e.leakage_pj > 0
    parts = (e.mac_pj, e.register_pj, e.vector_pj, e.sram_pj, e.dram_pj, e.leakage_pj)
    assert e.total_pj == pytest.approx(sum(parts))
    d = e.to_dict()
    assert d["leakage_uj"] == pytest.approx(e.leakage_pj / 1e6)
    assert d["register_uj"] == pytest.approx(e.register_pj / 1e6)
    assert d["total_uj"] == pytest.approx(sum(v for k, v in d.items() if k != "total_uj"))
    layers = [layer_energy(layer, cfg) for layer in mapped.layers]
    assert sum(x.total_pj for x in layers) == pytest.approx(e.total_pj)
    assert e.dram_pj > e.mac_pj  # batch 1 LeNet: data movement dominates, as the table predicts
    assert inference_energy(mapped, bits=4).mac_pj < e.mac_pj
    assert inference_energy(mapped, bits=4).register_pj < e.register_pj


def test_slower_design_point_leaks_more(lenet):
    """Same MACs and DRAM bytes, a narrower DRAM link: a longer run, and leakage in proportion."""
    fast_cfg = AcceleratorConfig(dram_bytes_per_cycle=4.0)
    fast, slow = (map_graph(lenet, dataclasses.replace(fast_cfg, dram_bytes_per_cycle=bw)) for bw in (4.0, 0.5))
    assert slow.latency_s > 2 * fast.latency_s
    ef, es = inference_energy(fast), inference_energy(slow)
    for part in ("mac_pj", "register_pj", "vector_pj", "dram_pj"):  # the counts do not depend on the link
        assert getattr(es, part) == pytest.approx(getattr(ef, part))
    assert es.leakage_pj / ef.leakage_pj == pytest.approx(slow.latency_s / fast.latency_s)
    assert es.total_pj > ef.total_pj


def test_leakage_scales_with_sram_and_pes(lenet):
    base = AcceleratorConfig()
    e = inference_energy(map_graph(lenet, base))
    # register energy follows the MACs, not the array
    wide = dataclasses.replace(base, rows=16, cols=16)
    mw = map_graph(lenet, wide)
    ew = inference_energy(mw)
    assert ew.register_pj == pytest.approx(e.register_pj)
    assert ew.leakage_pj == pytest.approx((256 * pe_leak_w(8) + 224 * SRAM_LEAK_W_PER_KIB) * mw.latency_s * 1e12)
    # leakage power is linear in SRAM KiB and in PEs
    big = dataclasses.replace(base, ifmap_sram_kib=128, filter_sram_kib=128, ofmap_sram_kib=128, acc_sram_kib=64)
    assert leak_w(big) - leak_w(base) == pytest.approx(224 * SRAM_LEAK_W_PER_KIB)
    assert leak_w(wide) - leak_w(base) == pytest.approx((256 - 64) * pe_leak_w(8))
