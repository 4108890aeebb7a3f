"""The compiled Verilator harness (rtl/harness.cpp) against numpy and hwsim: the same random GEMMs as
test_engine.py, run free with no Python per cycle; and its protocol errors as one-line SimulationErrors."""
import numpy as np
import pytest

from hwsim.config import AcceleratorConfig
from hwsim.mapping import Gemm, plan
from hwsim.timing import compute_cycles
from quant.errors import ConfigError
from rtl.harness import HarnessDriver, build_harness
from rtl.layout import chunk_runs, engine_for, results, words
from rtl.params import ArrayParams
from rtl.simulate import SimulationError

from .test_engine import COLS, ROWS, SHAPES, Chunk, expected, random_job, tiler_chunks


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
                assert cycles == [compute_cycles(plan(Gemm(job.m, job.k, job.n, job.groups), cfg))], job.name
        driven, free, seconds = drv.stats()
    assert free == 2 * sum(compute_cycles(plan(Gemm(j.m, j.k, j.n, j.groups), cfg)) for j in jobs)
    assert driven > 0 and seconds > 0


@pytest.mark.parametrize("tiles", [(ROWS, 2, COLS), (2 * ROWS, 3, 2 * COLS), (ROWS, 1, COLS), (99, 4, 99)])
def test_harness_runs_the_tilers_chunks_accumulating_k(harness, tiles):
    """Each chunk one run: K chunks add up in the accumulator memory, the last requantizes, and each
    run takes hwsim's compute cycles for its (m, k, n) GEMM, the writeback included."""
    binary, engine, jobs = harness
    cfg = AcceleratorConfig(rows=ROWS, cols=COLS)
    m_t, k_t, n_t = tiles
    with HarnessDriver(binary) as drv:
        for job in jobs:
            chunks = tiler_chunks(job, m_t, k_t, n_t)
            w = chunk_runs(words(job, engine), job, engine, chunks)
            beats, cycles = drv.layer(w)
            np.testing.assert_array_equal(results(beats, job, engine.array), expected(job), err_msg=job.name)
            assert cycles == [compute_cycles(plan(Gemm(c.m, c.k, c.n), cfg)) for c in chunks], job.name


def test_chunks_off_the_array_tiles_are_refused(harness):
    _, engine, jobs = harness
    job = next(j for j in jobs if j.m > ROWS)
    with pytest.raises(ConfigError, match="not on the 3x4 array's tiles"):
        chunk_runs(words(job, engine), job, engine, [Chunk(0, 1, 2, 0, job.k, 0, job.n)])


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


def test_waves_dump_every_cycle_of_a_run(rtl_build, tmp_path):
    """--waves: a harness built with tracing writes a VCD of the run: the engine's ports, a clock edge per
    half cycle, the run's `done`; the results are unchanged."""
    rng = np.random.default_rng(5)
    job = random_job(rng, "small", 1, 4, 3, 5)
    engine = engine_for([job], ArrayParams(ROWS, COLS, dataflow="ws"))
    binary, _ = build_harness(engine, rtl_build, waves=True)
    vcd = tmp_path / "run.vcd"
    with HarnessDriver(binary, vcd) as drv:
        beats, cycles = drv.layer(words(job, engine))
    np.testing.assert_array_equal(results(beats, job, engine.array), expected(job))
    text = vcd.read_text()
    assert "$var wire 1" in text and " done " in text and " cfg_in_zp " in text
    assert text.count("\n#") > 2 * cycles[0]  # a timestamp per half cycle, the run's cycles at least
