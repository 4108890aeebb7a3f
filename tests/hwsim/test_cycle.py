"""The cycle-accurate engine: bit-exact with quant's integer executor and cycle-exact with the
analytical engine, on random GEMMs, random conv/FC layers, and LeNet-5 end to end."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import cycle
from hwsim.analytical import map_graph
from hwsim.config import PRESETS, AcceleratorConfig, Dataflow, override
from hwsim.cycle import fold_period, gemm_sim_bytes, run_cycle, simulate_gemm
from hwsim.mapping import Gemm, plan
from hwsim.timing import compute_cycles
from quant.calibrate import collect_ranges
from quant.data import Preprocess
from quant.errors import ConfigError, OverflowDetected
from quant.int_exec import quantize_input, run_int
from quant.onnx_import import load_onnx
from quant.quantize import quantize
from tests.helpers import chain_model

DATAFLOWS = st.sampled_from(list(Dataflow))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40), g=st.integers(1, 3),
       r=st.integers(1, 9), c=st.integers(1, 9), reps=st.integers(1, 3), df=DATAFLOWS, seed=st.integers(0, 2**16))
def test_random_gemms_are_exact_in_values_and_cycles(m, k, n, g, r, c, reps, df, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (reps, g, m, k))
    b = rng.integers(-128, 128, (g, k, n))
    p = plan(Gemm(m, k, n, g), AcceleratorConfig(rows=r, cols=c, dataflow=df))
    run = simulate_gemm(a, b, p)
    np.testing.assert_array_equal(run.out, np.einsum("rgmk,gkn->rgmn", a, b))
    assert run.cycles == compute_cycles(p)
    # OS: every output leaves the array once; WS/IS: one partial sum per K fold, summed in the ofmap buffer
    assert run.results == g * m * n * (1 if df is Dataflow.OS else p.row_folds)


def _random_model(tmp_path, rng, c_in, c_out, hw, kernel, stride, pad, depthwise):
    c_out = c_in if depthwise else c_out
    groups = c_in if depthwise else 1
    oh = (hw + 2 * pad - kernel) // stride + 1
    layers = [("Conv", {"w": rng.normal(0, 0.5, (c_out, c_in // groups, kernel, kernel)).astype(np.float32),
                        "b": rng.normal(0, 0.1, c_out).astype(np.float32)},
               {"strides": [stride, stride], "pads": [pad] * 4, "group": groups}),
              ("Relu", {}, {}), ("Flatten", {}, {}),
              ("Gemm", {"b": rng.normal(0, 0.3, (5, c_out * oh * oh)).astype(np.float32),
                        "c": rng.normal(0, 0.1, 5).astype(np.float32)}, {"transB": 1})]
    graph = load_onnx(chain_model(tmp_path / "m.onnx", (1, c_in, hw, hw), layers))
    calib = rng.normal(0, 1, (16, c_in, hw, hw)).astype(np.float32)
    return quantize(graph, collect_ranges(graph, calib)), calib


@pytest.mark.filterwarnings("ignore::quant.onnx_ops.ShapeWarning")  # strided random shapes may drop rows
@settings(max_examples=25, deadline=None)
@given(c_in=st.integers(1, 4), c_out=st.integers(1, 6), hw=st.integers(3, 9), kernel=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 1), depthwise=st.booleans(), r=st.integers(1, 6),
       c=st.integers(1, 6), df=DATAFLOWS, batch=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_random_conv_fc_layers_match_the_integer_executor(tmp_path_factory, c_in, c_out, hw, kernel, stride, pad,
                                                          depthwise, r, c, df, batch, seed):
    rng = np.random.default_rng(seed)
    qgraph, calib = _random_model(tmp_path_factory.mktemp("m"), rng, c_in, c_out, hw, kernel, stride, pad, depthwise)
    x_q = quantize_input(calib[:2 * batch], qgraph.input_quant)
    cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df)
    run = run_cycle(qgraph, x_q, cfg, batch=batch)
    ref = run_int(qgraph, x_q, intermediate=True)
    for name, tensor in run.tensors.items():
        np.testing.assert_array_equal(tensor, ref[name], err_msg=name)
    analytical = map_graph(qgraph, cfg, batch=batch)
    assert [lr.compute_cycles for lr in run.result.layers] == [lr.compute_cycles for lr in analytical.layers]
    assert run.result.to_dict() == analytical.to_dict() | {"engine": "cycle"}


@pytest.mark.filterwarnings("ignore::quant.onnx_ops.ShapeWarning")
@settings(max_examples=12, deadline=None)
@given(c_in=st.integers(57, 70), c_out=st.integers(1, 9), hw=st.integers(3, 5), stride=st.integers(1, 2),
       r=st.integers(1, 6), c=st.integers(1, 6), df=DATAFLOWS, batch=st.integers(1, 2), latency=st.integers(0, 40),
       bw=st.sampled_from([0.5, 3.0, 16.0]), seed=st.integers(0, 2**16))
def test_k_split_layers_agree_with_the_analytical_engine_and_the_integer_executor(
        tmp_path_factory, c_in, c_out, hw, stride, r, c, df, batch, latency, bw, seed):
    """A 1 KiB filter SRAM cannot hold K = 9 x c_in > 504 bytes of one filter: K is split into
    chunks whose partial sums add up in the accumulator SRAM, and the DMA queue stalls the array."""
    rng = np.random.default_rng(seed)
    qgraph, calib = _random_model(tmp_path_factory.mktemp("m"), rng, c_in, c_out, hw, 3, stride, 1, False)
    x_q = quantize_input(calib[:2 * batch], qgraph.input_quant)
    cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df, filter_sram_kib=1, ifmap_sram_kib=2, acc_sram_kib=1,
                            dram_latency_cycles=latency, dram_bytes_per_cycle=bw)
    run = run_cycle(qgraph, x_q, cfg, batch=batch)
    np.testing.assert_array_equal(run.output, run_int(qgraph, x_q))
    analytical = map_graph(qgraph, cfg, batch=batch)
    conv = analytical.layers[0]
    assert conv.tile[1] < conv.k and conv.steps > 1  # K was split
    for sim, ana in zip(run.result.layers, analytical.layers, strict=True):
        assert (sim.compute_cycles, sim.stall_cycles) == (ana.compute_cycles, ana.stall_cycles), sim.name
    assert run.result.to_dict() == analytical.to_dict() | {"engine": "cycle"}
    assert analytical.total("stall_cycles") > 0


def _lenet_on_both_engines(lenet_q, fashion_test, cfg, batch):
    """The cycle engine's run of the first `batch` test images (its logits checked bit-exact with
    the integer executor) and the analytical engine's result for the same config."""
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:batch]), lenet_q.input_quant)
    run = run_cycle(lenet_q, x_q, cfg, batch=batch)
    np.testing.assert_array_equal(run.output, run_int(lenet_q, x_q))
    return run, map_graph(lenet_q, cfg, batch=batch)


LENET_RUNS = [(df, r, c, batch) for df in Dataflow for r, c in ((8, 8), (16, 4)) for batch in (1, 4)]


@pytest.mark.parametrize("df, rows, cols, batch", LENET_RUNS,
                         ids=[f"{d.value}-{r}x{c}-b{b}" for d, r, c, b in LENET_RUNS])
def test_lenet_compute_and_stall_agree_per_layer(lenet_q, fashion_test, df, rows, cols, batch):
    cfg = override(PRESETS["edge8"], dataflow=df, rows=rows, cols=cols)
    run, analytical = _lenet_on_both_engines(lenet_q, fashion_test, cfg, batch)
    for sim, ana in zip(run.result.layers, analytical.layers, strict=True):
        assert (sim.name, sim.compute_cycles, sim.stall_cycles) == (ana.name, ana.compute_cycles, ana.stall_cycles)
    assert run.result.to_dict() == analytical.to_dict() | {"engine": "cycle"}


@pytest.mark.parametrize("df", list(Dataflow))
def test_lenet_end_to_end_100_images(lenet_q, fashion_test, df):
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:100]), lenet_q.input_quant)
    cfg = override(PRESETS["edge8"], dataflow=df)
    run = run_cycle(lenet_q, x_q, cfg)
    np.testing.assert_array_equal(run.output, run_int(lenet_q, x_q))  # identical logits on all 100 images
    analytical = map_graph(lenet_q, cfg)
    for sim, ana in zip(run.result.layers, analytical.layers, strict=True):
        assert (sim.name, sim.compute_cycles, sim.total_cycles) == (ana.name, ana.compute_cycles, ana.total_cycles)
    assert run.simulated_cycles == sum(lr.compute_cycles for lr in analytical.layers if lr.unit == "array")


def test_lenet_batch_4_shares_the_array(lenet_q, fashion_test):
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:8]), lenet_q.input_quant)
    cfg = AcceleratorConfig(rows=8, cols=4, dataflow=Dataflow.WS)
    run = run_cycle(lenet_q, x_q, cfg, batch=4)  # 2 runs of 4 images, M = 4 x pixels
    np.testing.assert_array_equal(run.output, run_int(lenet_q, x_q))
    assert run.result.total_cycles == map_graph(lenet_q, cfg, batch=4).total_cycles


def test_accumulator_overflow_names_layer_and_channel(lenet_q, fashion_test):
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:2]), lenet_q.input_quant)
    with pytest.raises(OverflowDetected, match=r"node 'node_conv2d.*': int18 accumulator overflow at output channel"):
        run_cycle(lenet_q, x_q, AcceleratorConfig(acc_bits=18))


# (m, k, n, rows, cols): several folds each, with T > R and with R > T in every dataflow
SHORT_PERIOD_CASES = [(20, 12, 5, 4, 2), (20, 3, 5, 6, 2), (3, 5, 20, 2, 4), (9, 3, 7, 2, 2)]


@pytest.mark.parametrize("df", list(Dataflow))
@pytest.mark.parametrize("m, k, n, r, c", SHORT_PERIOD_CASES)
def test_a_fold_period_one_shorter_breaks_the_array(monkeypatch, df, m, k, n, r, c):
    """hwsim.timing and hwsim.cycle claim P = max(T, R) is the shortest fold period that gives
    correct results. Issue folds one cycle sooner and the array must give wrong outputs or fail
    its drain check; at P itself (the control) it is exact."""
    rng = np.random.default_rng(m * 1000 + k * 100 + n)
    a = rng.integers(-128, 128, (2, 1, m, k))
    b = rng.integers(-128, 128, (1, k, n))
    p = plan(Gemm(m, k, n), AcceleratorConfig(rows=r, cols=c, dataflow=df))
    assert p.folds > 1 and fold_period(p) > 1
    expected = np.einsum("rgmk,gkn->rgmn", a, b)
    np.testing.assert_array_equal(simulate_gemm(a, b, p).out, expected)
    monkeypatch.setattr("hwsim.cycle.fold_period", lambda plan: max(plan.stream, plan.rows) - 1)
    try:
        run = simulate_gemm(a, b, p)
    except RuntimeError as err:
        assert "did not drain" in str(err)
    else:
        assert not np.array_equal(run.out, expected)


@pytest.mark.parametrize("df", list(Dataflow))
@pytest.mark.parametrize("m, k, n, reps", [(300, 25, 6, 1), (40, 150, 16, 2), (1, 400, 10, 3)])
def test_memory_estimate_bounds_the_measured_peak(df, m, k, n, reps):
    """gemm_sim_bytes is what the refusal and the replica chunks rest on: it must not under-count
    (tracemalloc sees numpy's allocations; bytes, not seconds, so no machine dependence)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (reps, 1, m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (1, k, n))
    p = plan(Gemm(m, k, n), AcceleratorConfig(rows=8, cols=8, dataflow=df))
    tracemalloc.start()
    try:
        simulate_gemm(a, b, p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= gemm_sim_bytes(p, reps) <= 16 * peak


def test_replicas_run_in_chunks_with_identical_results(monkeypatch, lenet_q, fashion_test):
    pixels, _ = fashion_test
    x_q = quantize_input(Preprocess()(pixels[:6]), lenet_q.input_quant)
    cfg = AcceleratorConfig(rows=8, cols=4, dataflow=Dataflow.WS)
    whole = run_cycle(lenet_q, x_q, cfg, batch=2)  # 3 replicas of batch 2
    calls = []
    real = cycle.simulate_gemm
    monkeypatch.setattr(cycle, "simulate_gemm", lambda a, b, p: calls.append(a.shape[0]) or real(a, b, p))
    schedules = cycle.compile_schedules(lenet_q, cfg, 2)
    steps = sum(len(s.steps) for s in schedules)
    limit = max(s.sim_bytes(1) for s in schedules)  # the largest layer goes one replica at a time
    monkeypatch.setattr(cycle, "CYCLE_MEMORY_LIMIT_BYTES", limit)
    chunked = run_cycle(lenet_q, x_q, cfg, batch=2)
    assert len(calls) > steps and calls.count(1) >= 3 and sum(calls) == 3 * steps
    for name, tensor in whole.tensors.items():
        np.testing.assert_array_equal(chunked.tensors[name], tensor, err_msg=name)
    assert chunked.result == whole.result and chunked.simulated_cycles == whole.simulated_cycles


def test_a_run_that_cannot_fit_is_refused_before_it_starts(monkeypatch, lenet_q):
    monkeypatch.setattr(cycle, "CYCLE_MEMORY_LIMIT_BYTES", 1 << 20)
    monkeypatch.setattr(cycle, "simulate_gemm", lambda *_: pytest.fail("simulated a refused run"))
    x_q = np.zeros((1, *lenet_q.input_shape[1:]), np.int8)
    with pytest.raises(ConfigError, match=r"would need about .* MiB for layer 'node_conv2d' at batch 1 "
                                          r"\(M = 784\), over its 1.0 MiB limit"):
        run_cycle(lenet_q, x_q, PRESETS["edge8"])


@pytest.mark.parametrize("df", list(Dataflow))
@pytest.mark.parametrize("store_kib, batch", [(64, 1), (4, 4)])
def test_fused_pooling_agrees_between_engines_and_saves_the_round_trip(lenet_q, fashion_test, df, store_kib, batch):
    """fuse_pool: LeNet's two 2x2 max pools run on the vector unit as their conv's output tiles are
    stored. Same logits, the same cycles from both engines, and never more time or DRAM traffic; with
    a 4 KiB activation store the unpooled conv outputs no longer go through DRAM."""
    cfg = override(PRESETS["edge8"], dataflow=df, fuse_pool=True, ofmap_sram_kib=store_kib)
    run, fused = _lenet_on_both_engines(lenet_q, fashion_test, cfg, batch)
    assert run.result.to_dict() == fused.to_dict() | {"engine": "cycle"}
    pools = [r for r in fused.layers if r.op == "MaxPool"]
    assert [r.fused_into for r in pools] == ["node_conv2d", "node_conv2d_1"]
    assert all(r.total_cycles == 0 and r.dram_read_bytes == 0 for r in pools)
    assert all(r.pool_cycles > 0 for r in fused.layers if r.name in ("node_conv2d", "node_conv2d_1"))
    plain = map_graph(lenet_q, override(cfg, fuse_pool=False), batch=batch)
    dram = [m.total("dram_read_bytes") + m.total("dram_write_bytes") for m in (fused, plain)]
    assert fused.total_cycles < plain.total_cycles and dram[0] <= dram[1]
    if store_kib == 4:
        assert dram[0] < dram[1]
