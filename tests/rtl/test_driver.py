"""The engine driver never reads X/Z as a value: a result lane the engine never wrote fails the
read, so it cannot pass for an expected 0. Lanes past the matrix edge are still read as 0."""
import numpy as np
import pytest
from cocotb.types import Logic, LogicArray

from rtl.layout import GemmJob, engine_for
from rtl.params import ArrayParams
from rtl.simulate import SimulationError, build_engine, run_test
from rtl.tb.driver import UnresolvedValueError, live_lanes, resolved


def test_live_lanes_refuse_x_and_z_but_ignore_lanes_past_the_edge():
    bus = LogicArray("XXXXXXXX" "00000011" "11111110")  # lanes 2, 1, 0 (lane 0 in the low bits)
    assert live_lanes(bus, lanes=3, live=2, what="out") == (3 << 8) | 0xFE
    with pytest.raises(UnresolvedValueError, match="live lane 2 of 3 holds X/Z"):
        live_lanes(bus, lanes=3, live=3, what="out")
    with pytest.raises(UnresolvedValueError, match="live lane 0"):
        live_lanes(LogicArray("00000000" "0000000Z"), lanes=2, live=1, what="out")
    assert live_lanes(LogicArray("ZZZZHHLL"), lanes=2, live=1, what="out") == 0b1100  # weak values resolve


def test_control_values_must_be_resolved():
    assert resolved(Logic("1"), "done") == 1 and resolved(LogicArray("1111"), "x", signed=True) == -1
    for value in (Logic("X"), Logic("Z"), LogicArray("01X0")):
        with pytest.raises(UnresolvedValueError, match="holds X/Z"):
            resolved(value, "done")


def test_a_never_written_lane_fails_where_0_is_expected(rtl_build):
    """Icarus only: Verilator is two-state, an unwritten memory word reads as a number there."""
    k, n = 2, 2
    job = GemmJob("zeros", np.zeros((1, 2, k), np.int64), np.zeros((1, k, n), np.int64), np.zeros(n, np.int64),
                  np.full(n, 1 << 30), np.zeros(n, np.int64), 0, -128, 127)  # every output is exactly 0
    engine = engine_for([job], ArrayParams(2, 2))
    top, build_dir = build_engine(engine, "icarus", rtl_build)
    tb_job = {"job": job, "engine": engine, "param_words": n - 1}
    report = run_test("tests.rtl.unwritten_lane_tb", top, build_dir, "icarus", tb_job | {"catch": True})
    assert "error" in report, f"the unwritten lane was read as {report['out'].tolist()}"
    assert "live lane 1 of 2 holds X/Z" in report["error"]
    # uncaught, as in a real run, it fails the simulation and the error names the lane
    with pytest.raises(SimulationError, match="UnresolvedValueError: out_data beat 0: live lane 1 of 2 holds X/Z"):
        run_test("tests.rtl.unwritten_lane_tb", top, build_dir, "icarus", tb_job | {"catch": False})
    # and with every parameter word loaded the same layer reads back its zeros
    report = run_test("tests.rtl.unwritten_lane_tb", top, build_dir, "icarus", tb_job | {"param_words": n,
                                                                                         "catch": True})
    np.testing.assert_array_equal(report["out"], np.zeros((1, 2, n)))
