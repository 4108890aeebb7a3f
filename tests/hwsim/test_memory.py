"""SRAM/DRAM traffic, working sets and stalls."""
import pytest

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import Gemm, plan
from hwsim.memory import CHANNEL_PARAM_BYTES, PSUM_BYTES, gemm_stall_cycles, gemm_traffic
from quant.errors import ConfigError


def traffic(df=Dataflow.OS, **cfg):
    c = AcceleratorConfig(rows=8, cols=8, dataflow=df, **cfg)
    return gemm_traffic("conv", plan(Gemm(100, 150, 16), c), 6 * 14 * 14, 150 * 16, 16 * 100, c), c


def test_everything_fits_means_each_byte_crosses_dram_once():
    t, _ = traffic()
    assert t.dram_read == 6 * 14 * 14 + 150 * 16 + CHANNEL_PARAM_BYTES * 16 and t.dram_write == 1600
    # OS: every fold reads its A tile (8 x K) and B tile (K x 8)
    assert t.ifmap_sram_read == 2 * 100 * 150 and t.filter_sram_read == 13 * 150 * 16


def test_a_fold_that_cannot_fit_names_layer_buffer_and_bytes():
    with pytest.raises(ConfigError, match=r"layer 'conv' cannot fit one OS fold: K=150 x 8 filters needs 1,200 B "
                                          r"of filter SRAM but only 512 B"):
        traffic(filter_sram_kib=1)


def test_partial_sums_spill_when_the_ofmap_buffer_is_small():
    fits, _ = traffic(Dataflow.WS)
    spills, _ = traffic(Dataflow.WS, ofmap_sram_kib=1)
    folds = 19  # ceil(150 / 8) row folds
    assert spills.dram - fits.dram == 2 * PSUM_BYTES * 100 * 16 * (folds - 1)


def test_stall_is_prologue_or_dram_excess():
    t, cfg = traffic(dram_bytes_per_cycle=1.0)
    assert gemm_stall_cycles(t, 10**9, cfg) == t.prologue  # compute hides all but the first tiles
    assert gemm_stall_cycles(t, 0, cfg) == t.dram
