"""Generator parameters are checked before any Verilog is written."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quant.errors import ConfigError
from rtl.layout import GemmJob, engine_for
from rtl.params import ArrayParams, EngineParams, required_acc_bits


@pytest.mark.parametrize("kwargs, words", [
    (dict(rows=0, cols=4), "rows must be a positive integer, not 0"),
    (dict(rows=4, cols=-2), "cols must be a positive integer, not -2"),
    (dict(rows=4, cols=4, data_bits=1), "data_bits"),
    (dict(rows=4, cols=4, data_bits=8, acc_bits=15), "to hold a 8-bit product"),
    (dict(rows=512, cols=4), "256x256 limit"),
])
def test_bad_array_parameters_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ArrayParams(**kwargs)


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
