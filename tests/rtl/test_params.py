"""Generator parameters are checked before any Verilog is written."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.config import AcceleratorConfig
from quant.errors import ConfigError
from rtl.layout import GemmJob, engine_for
from rtl.params import MAX_MEMORY_WORDS, MAX_PES, ArrayParams, EngineParams, required_acc_bits


@pytest.mark.parametrize("kwargs, words", [
    (dict(rows=0, cols=4), "rows must be a positive integer, not 0"),
    (dict(rows=4, cols=-2), "cols must be a positive integer, not -2"),
    (dict(rows=4, cols=4, data_bits=1), "data_bits"),
    (dict(rows=4, cols=4, data_bits=8, acc_bits=15), "acc_bits = 15: must be an integer in 17.."),
    (dict(rows=4, cols=4, data_bits=8, acc_bits=49), "at most 48 bits"),
    (dict(rows=512, cols=4), "256x256 limit"),
    (dict(rows=256, cols=256), "65,536 PEs and would need about 8.0 GiB to generate; the generator's limit is 4,096"),
])
def test_bad_array_parameters_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ArrayParams(**kwargs)


@pytest.mark.parametrize("acc_bits", [16, 17, 33, 64])
def test_accumulator_widths_follow_hwsim_map(acc_bits):
    """One rule: the RTL takes an accumulator width exactly when hwsim's config does (within the PE
    array's 48 bits); 16 used to pass here while `hwsim map` refused it."""
    try:
        AcceleratorConfig(acc_bits=acc_bits).validate()
        hwsim_ok = True
    except ConfigError:
        hwsim_ok = False
    try:
        ArrayParams(4, 4, acc_bits=acc_bits)
        rtl_ok = True
    except ConfigError as err:
        rtl_ok = False
        assert hwsim_ok is False or "at most 48 bits" in str(err)
    assert rtl_ok == (hwsim_ok and acc_bits <= 48)


def test_the_pe_limit_is_rows_times_cols():
    assert ArrayParams(64, 64) and ArrayParams(16, 256) and 64 * 64 == MAX_PES
    with pytest.raises(ConfigError, match="4,160 PEs"):
        ArrayParams(65, 64)


def test_engine_memories_past_the_limit_are_refused_with_the_size_they_would_need():
    """`rtl generate --depth 1048576` once ran the machine out of memory in MyHDL; now it is one line."""
    d = 1 << 20
    with pytest.raises(ConfigError, match=r"engine memories of 19,922,944 words .* would need about 76\.0 GiB"):
        EngineParams(ArrayParams(8, 8), d, d, d, d)
    d = MAX_MEMORY_WORDS // 19  # a + b + params + 8 result banks + 8 accumulator memories
    assert EngineParams(ArrayParams(8, 8), d, d, d, d).memory_words <= MAX_MEMORY_WORDS
    with pytest.raises(ConfigError, match="limit is 524,288 words"):
        EngineParams(ArrayParams(8, 8), d + 1, d + 1, d + 1, d + 1)


def test_engine_refuses_accumulators_the_requant_unit_cannot_take():
    with pytest.raises(ConfigError, match="at most 32 bits"):
        EngineParams(ArrayParams(2, 2, acc_bits=40), 4, 4, 4, 4)


@given(k=st.integers(1, 5000), d=st.integers(2, 9))
def test_required_acc_bits_is_the_tightest_width_for_the_worst_case_sum(k, d):
    worst = k * (-(1 << (d - 1))) ** 2  # every product at its largest: (-2^(d-1))^2
    bits = required_acc_bits(k, d)
    assert -(1 << (bits - 1)) <= worst <= (1 << (bits - 1)) - 1
    assert worst > (1 << (bits - 2)) - 1  # one bit fewer would not hold it


def test_an_accumulator_too_narrow_for_k_is_refused_before_any_verilog(tmp_path):
    from rtl.emit import write_engine
    k = 1000  # 1000 * 2^14 needs 25 bits
    job = GemmJob("wide", np.zeros((1, 4, k), np.int64), np.zeros((1, k, 4), np.int64), np.zeros(4, np.int64),
                  np.full(4, 1 << 30), np.zeros(4, np.int64), 0, -128, 127)
    with pytest.raises(ConfigError, match="wide: K = 1000 needs a 25-bit accumulator"):
        write_engine(engine_for([job], ArrayParams(4, 4, acc_bits=24)), tmp_path)
    assert not list(tmp_path.iterdir())
