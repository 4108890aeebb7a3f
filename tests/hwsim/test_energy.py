"""The energy model reproduces its cited table and adds up."""
import pytest

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig
from hwsim.energy import ADD32_PJ, DRAM_64BIT_PJ, MULT8_PJ, inference_energy, mac_pj, sram_pj_per_byte


def test_table_points():
    # Horowitz, ISSCC 2014: 8/32/1024 KB SRAM at 10/20/100 pJ per 64-bit access
    assert [sram_pj_per_byte(k) for k in (8, 32, 1024)] == pytest.approx([10 / 8, 20 / 8, 100 / 8])
    assert sram_pj_per_byte(8) < sram_pj_per_byte(16) < sram_pj_per_byte(32) < sram_pj_per_byte(256)
    assert mac_pj(8) == pytest.approx(MULT8_PJ + ADD32_PJ) and mac_pj(4) == pytest.approx(MULT8_PJ / 4 + ADD32_PJ)


def test_lenet_energy_adds_up(lenet):
    cfg = AcceleratorConfig()
    mapped = map_graph(lenet, cfg)
    e = inference_energy(mapped)
    assert e.mac_pj == pytest.approx(416_520 * mac_pj(8))
    dram = mapped.total("dram_read_bytes") + mapped.total("dram_write_bytes")
    assert e.dram_pj == pytest.approx(dram * DRAM_64BIT_PJ / 8)
    sram = mapped.total("sram_read_bytes") + mapped.total("sram_write_bytes")
    assert e.sram_pj == pytest.approx(sram * sram_pj_per_byte(64))  # all three buffers are 64 KiB
    assert e.total_pj == pytest.approx(e.mac_pj + e.vector_pj + e.sram_pj + e.dram_pj)
    assert e.dram_pj > e.mac_pj  # batch 1 LeNet: data movement dominates, as the table predicts
    assert inference_energy(mapped, bits=4).mac_pj < e.mac_pj
