"""The tile engine in RTL against numpy and against hwsim's cycle-accurate engine, cycle by cycle:
every int8 output, the cycle each output is written, and the layer's compute cycles."""
from collections import namedtuple

import numpy as np
import pytest

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.cycle import simulate_gemm
from hwsim.mapping import Gemm, plan
from hwsim.timing import WRITEBACK_CYCLES, compute_cycles
from quant.fixedpoint import quantize_multiplier, requantize
from rtl.engine import read_latency
from rtl.layout import GemmJob, engine_for
from rtl.params import ArrayParams
from rtl.simulate import run_job

ROWS, COLS = 3, 4  # not square, so rows and columns cannot be swapped unnoticed
# (groups, M, K, N): K below, at and above R; M and N off the tile edges; depthwise-like N = 1; one MAC
SHAPES = [(1, 10, 7, 6), (2, 5, 2, 9), (1, 1, 1, 1), (1, 7, 3, 4), (3, 4, 9, 1), (1, 13, 1, 11), (2, 3, 5, 8)]


def random_job(rng, name, groups, m, k, n) -> GemmJob:
    a = rng.integers(-128, 128, (groups, m, k))
    b = rng.integers(-128, 128, (groups, k, n))
    # scales that land typical sums inside int8, with a zero point and a ReLU-like clamp on some layers
    m0, shift = np.array([quantize_multiplier(float(s)) for s in rng.uniform(0.3, 3, groups * n) / (128 * k)]).T
    zp = int(rng.integers(-20, 20))
    qmin = zp if rng.random() < 0.5 else -128
    return GemmJob(name, a, b, rng.integers(-5000, 5000, groups * n), m0, shift, zp, qmin, 127)


def expected(job: GemmJob) -> np.ndarray:
    acc = np.einsum("gmk,gkn->gmn", job.a, job.b) + job.bias.reshape(job.groups, 1, job.n)
    m0, shift = job.m0.reshape(job.groups, 1, job.n), job.shift.reshape(job.groups, 1, job.n)
    return requantize(acc, m0, shift, job.zero_point, job.qmin, job.qmax)


Chunk = namedtuple("Chunk", "g m0 m k0 k n0 n")


def tiler_chunks(job, m_t: int, k_t: int, n_t: int) -> list[Chunk]:
    """The tiler's loop nest (hwsim.tiling): groups, m tiles, n tiles, K chunks innermost."""
    return [Chunk(g, m0, min(m_t, job.m - m0), k0, min(k_t, job.k - k0), n0, min(n_t, job.n - n0))
            for g in range(job.groups) for m0 in range(0, job.m, m_t) for n0 in range(0, job.n, n_t)
            for k0 in range(0, job.k, k_t)]


@pytest.fixture(scope="module")
def jobs():
    rng = np.random.default_rng(7)
    return [random_job(rng, f"gemm{i}", *shape) for i, shape in enumerate(SHAPES)]


# Verilator runs every case; Icarus (four-state: no X may reach a live lane; ~1,200 cycles/s) one dataflow per test
MONITORED = [("icarus", "os"), ("verilator", "os"), ("verilator", "ws")]
CHUNKED = [("icarus", "ws"), ("verilator", "os"), ("verilator", "ws")]


@pytest.mark.parametrize("simulator, dataflow", MONITORED)
def test_tile_engine_is_bit_and_cycle_exact(simulator, rtl_build, jobs, dataflow):
    engine = engine_for(jobs, ArrayParams(ROWS, COLS, dataflow=dataflow))
    report = run_job({"kind": "gemms", "engine": engine, "jobs": jobs, "monitor": True}, simulator, rtl_build)
    cfg = AcceleratorConfig(rows=ROWS, cols=COLS, dataflow=Dataflow(dataflow))
    assert len(np.unique(np.concatenate([expected(job).ravel() for job in jobs]))) > 100  # not all clamped
    for job, got in zip(jobs, report["gemms"], strict=True):
        ref = expected(job)
        np.testing.assert_array_equal(got["out"], ref, err_msg=job.name)
        p = plan(Gemm(job.m, job.k, job.n, job.groups), cfg)
        model = simulate_gemm(job.a[None], job.b, p)
        assert got["cycles"] == compute_cycles(p) == model.cycles, job.name
        # the cycle each result is written, column by column, against the cycle the model's output
        # leaves the array plus the writeback stages (RTL cycles count from start, one read-latency
        # cycle before the array's)
        columns = np.arange(job.n) % COLS
        for col in range(COLS):
            rtl_cycles = sorted(t for t, c in got["events"] if c == col)
            written = model.out_cycle[:, :, columns == col] + read_latency(engine) + WRITEBACK_CYCLES
            model_cycles = sorted(written.ravel().tolist())
            assert rtl_cycles == model_cycles, (job.name, col)


@pytest.mark.parametrize("simulator, dataflow", CHUNKED)
def test_tile_engine_accumulates_k_chunks(simulator, rtl_build, jobs, dataflow):
    """The tiler's chunks on both simulators (Icarus checks every live lane is written): K chunks add up in
    the accumulator memory, m/n tiles land at their offsets, each run takes its chunk's compute cycles.
    WS: m tiles off the array's rows and K chunks off its tiles (A is laid out per chunk)."""
    m_t = ROWS if dataflow == "os" else 4
    chunks = {job.name: tiler_chunks(job, m_t, 2, COLS) for job in jobs}
    engine = engine_for(jobs, ArrayParams(ROWS, COLS, dataflow=dataflow), chunks)
    report = run_job({"kind": "gemms", "engine": engine, "jobs": jobs, "chunks": chunks}, simulator, rtl_build)
    cfg = AcceleratorConfig(rows=ROWS, cols=COLS, dataflow=Dataflow(dataflow))
    for job, got in zip(jobs, report["gemms"], strict=True):
        np.testing.assert_array_equal(got["out"], expected(job), err_msg=job.name)
        assert got["run_cycles"] == [compute_cycles(plan(Gemm(c.m, c.k, c.n), cfg)) for c in chunks[job.name]]
