"""The compiled Verilator harness (rtl/harness.cpp) against numpy and hwsim: the same random GEMMs as
test_engine.py, run free with no Python per cycle; and its protocol errors as one-line SimulationErrors."""
import numpy as np
import pytest

from hwsim.config import AcceleratorConfig
from hwsim.mapping import Gemm, plan
from hwsim.timing import compute_cycles
from rtl.harness import HarnessDriver, build_harness
from rtl.layout import engine_for, results, words
from rtl.params import ArrayParams
from rtl.simulate import SimulationError

from .test_engine import COLS, ROWS, SHAPES, expected, random_job


@pytest.fixture(scope="module")
def harness(rtl_build):
    rng = np.random.default_rng(11)
    jobs = [random_job(rng, f"gemm{i}", *shape) for i, shape in enumerate(SHAPES)]
    engine = engine_for(jobs, ArrayParams(ROWS, COLS))
    binary, _ = build_harness(engine, rtl_build)
    return binary, engine, jobs


def test_harness_runs_gemms_bit_and_cycle_exact(harness):
    binary, engine, jobs = harness
    cfg = AcceleratorConfig(rows=ROWS, cols=COLS)
    with HarnessDriver(binary) as drv:
        for job in jobs:
            w = words(job, engine)
            for rerun in (False, True):  # a second run reuses the loaded memories
                beats, cycles = drv.layer(w, weights=not rerun, inputs=not rerun)
                np.testing.assert_array_equal(results(beats, job, engine.array), expected(job), err_msg=job.name)
                assert cycles == compute_cycles(plan(Gemm(job.m, job.k, job.n, job.groups), cfg)), job.name
        driven, free, seconds = drv.stats()
    assert free == 2 * sum(compute_cycles(plan(Gemm(j.m, j.k, j.n, j.groups), cfg)) for j in jobs)
    assert driven > 0 and seconds > 0


def test_harness_protocol_errors_are_one_line(harness):
    binary, _, _ = harness
    with HarnessDriver(binary) as drv:
        drv._send("X\n")
        with pytest.raises(SimulationError, match=r"the Verilator harness failed: unknown command X$"):
            drv.stats()
    with HarnessDriver(binary) as drv:
        drv._send("L 0 3 ff\n")  # fewer words than the count, then end of input
        drv.proc.stdin.close()
        with pytest.raises(SimulationError, match="fewer words than its count"):
            drv._answer("C")
