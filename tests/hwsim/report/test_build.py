"""The report's numbers recomputed independently of the report code: MACs and bytes from the
weights, accuracy and SQNR from quant's numpy executors, cycles from hwsim's engines."""
import math

import numpy as np
import pytest

from hwsim.analytical import map_graph
from hwsim.config import preset
from hwsim.mapping import GEMM_OPS, gemm_of, plan
from hwsim.timing import compute_cycles
from hwsim.workload import quantized
from quant.data import Preprocess
from quant.evaluate import logits_tensor
from quant.float_exec import run_float
from quant.int_exec import quantize_input, run_int
from quant.ir import Op
from tests.conftest import LENET
from tests.hwsim.report.conftest import IMAGES


def test_macs_and_parameter_bytes_from_the_weights(lenet, lenet_summary, seeds):
    gemms = [n for n in lenet.nodes if n.op in (Op.CONV, Op.DENSE)]
    macs = sum(math.prod(n.out_shape[1:]) * math.prod(n.weight.shape[1:]) if n.op is Op.CONV else n.weight.size
               for n in gemms)
    weights = sum(n.weight.size for n in gemms)
    biases = sum(n.bias.size for n in gemms if n.bias is not None)
    s = lenet_summary
    assert s["totals"]["macs"] == s["model"]["macs"] == macs == sum(r["macs"] for r in s["layers"])
    assert s["memory"]["weight_bytes_int8"] == weights and s["memory"]["weight_bytes_fp32"] == 4 * weights
    assert s["memory"]["param_bytes_int8"] == weights + 4 * biases  # int8 weights, int32 biases
    assert s["memory"]["param_bytes_fp32"] == 4 * (weights + biases) == 4 * s["model"]["params"]
    assert s["memory"]["input_bytes_int8"] == 28 * 28 and s["memory"]["act_bytes_fp32"] == 4 * s["memory"][
        "act_bytes_int8"]


def test_accuracy_from_the_executors(lenet, lenet_summary, fashion_test):
    pixels, labels = fashion_test
    x, labels = Preprocess()(pixels[:IMAGES]), labels[:IMAGES]
    qgraph = quantized(lenet, LENET)
    name = logits_tensor(lenet)
    f_pred = run_float(lenet, x, intermediate=True)[name].argmax(1)  # numpy, not the report's PyTorch
    q_pred = run_int(qgraph, quantize_input(x, qgraph.input_quant), intermediate=True)[name].argmax(1)
    acc = lenet_summary["accuracy"]
    assert acc["images"] == IMAGES
    assert acc["int8_top1_pct"] == 100 * np.mean(q_pred == labels)  # the integer executor: exactly
    assert abs(acc["float_top1_pct"] - 100 * np.mean(f_pred == labels)) <= 0.1  # float32 rounding may flip one
    assert abs(acc["agreement_pct"] - 100 * np.mean(f_pred == q_pred)) <= 0.1
    counts = np.asarray(acc["confusion_int8"])
    assert counts.sum() == IMAGES and np.trace(counts) == np.sum(q_pred == labels)
    assert [c["images"] for c in acc["per_class"]] == np.bincount(labels, minlength=10).tolist()
    assert 85 < acc["int8_top1_pct"] < 95 and abs(acc["drop_pts"]) < 1


def test_sqnr_of_the_logits(lenet, lenet_summary, fashion_test):
    x = Preprocess()(fashion_test[0][:IMAGES])
    qgraph = quantized(lenet, LENET)
    last = qgraph.nodes[-1]
    f = run_float(lenet, x, intermediate=True)[last.output].astype(np.float64)
    q = run_int(qgraph, quantize_input(x, qgraph.input_quant), intermediate=True)[last.output]
    deq = (q.astype(np.float64) - last.quant.out.zero_point) * last.quant.out.scale
    expected = 10 * np.log10(np.sum(f * f) / np.sum((f - deq) ** 2))
    row = lenet_summary["layers"][-1]
    assert row["name"] == last.name and abs(row["sqnr_db"] - expected) < 0.01
    assert all(r["sqnr_db"] is not None and 20 < r["sqnr_db"] < 60 for r in lenet_summary["layers"])


def test_cycles_and_latency(lenet, lenet_summary):
    cfg = preset("edge8")
    mapped = map_graph(lenet, cfg)
    s = lenet_summary
    assert s["totals"]["total_cycles"] == mapped.total_cycles == sum(r["total_cycles"] for r in s["layers"])
    assert s["totals"]["latency_us"] == pytest.approx(mapped.total_cycles / cfg.clock_mhz, rel=1e-12)
    for node, row, layer in zip(lenet.nodes, s["layers"], mapped.layers, strict=True):
        if node.op in GEMM_OPS:  # the tiled schedule's chunks each pay their fill and drain
            assert row["compute_cycles"] == layer.compute_cycles >= compute_cycles(plan(gemm_of(node, 1), cfg))
            assert row["utilization_pct"] == pytest.approx(100 * row["macs"] / (cfg.pes * row["total_cycles"]))
    perf = {(p["engine"].split()[0], p["batch"]): p for p in s["performance"]}
    assert perf["int8", 1]["throughput_images_per_s"] == pytest.approx(1e6 / s["totals"]["latency_us"])
    big = [p["batch"] for p in s["performance"] if p["engine"].startswith("float32")]
    assert big[0] == 1 and len(big) == 2 and ("int8", big[1]) in perf
    assert_fits_the_budget(big[1], perf["float32", 1]["latency_us"] / 1e6)  # whatever the machine's speed
    assert perf["float32", 1]["latency_us"] > 0 and perf["float32", big[1]]["throughput_images_per_s"] > 0
    assert s["memory"]["peak_footprint_bytes"] <= s["memory"]["sram_bytes"]
    assert s["float_device"]["device"] in ("cpu", "cuda") and s["environment"]["torch"]


def test_energy_adds_up(lenet, lenet_summary):
    from hwsim.energy import inference_energy
    e = lenet_summary["energy"]
    assert e["total_nj"] == pytest.approx(inference_energy(map_graph(lenet, preset("edge8"))).total_pj / 1e3)
    assert e["total_nj"] == pytest.approx(sum(r["energy_nj"] for r in lenet_summary["layers"]))
    assert e["register_nj"] > 0 and e["leakage_nj"] > 0  # PE registers, and PEs + SRAM leaking for the latency
    assert e["total_nj"] == pytest.approx(sum(v for k, v in e.items() if k.endswith("_nj") and k != "total_nj"))
    assert e["mac_nj"] == pytest.approx(416_520 * 0.3 / 1e3)  # 0.2 pJ 8-bit multiply + 0.1 pJ 32-bit add


def assert_fits_the_budget(batch: int, single_s: float, wanted: int = 256) -> None:
    """`batch` is `wanted` halved until one pass at the batch-1 rate fits TIMING_BUDGET_S: the
    largest such batch (1 if none fits), checked as a relation, not against a constant."""
    from hwsim.report.build import TIMING_BUDGET_S
    assert batch in {wanted >> k for k in range(wanted.bit_length())}
    assert batch == 1 or batch * single_s <= TIMING_BUDGET_S * (1 + 1e-9)
    assert batch == wanted or 2 * batch * single_s > TIMING_BUDGET_S * (1 - 1e-9)


def test_throughput_batch_fits_the_timing_budget():
    from hwsim.report.build import TIMING_BUDGET_S, throughput_batch
    assert throughput_batch(256, 0.0003) == 256  # LeNet on a CPU: 256 images in 77 ms
    assert throughput_batch(256, 0.027) == 64 and 64 * 0.027 <= TIMING_BUDGET_S < 128 * 0.027  # ResNet-18
    assert throughput_batch(256, 10.0) == 1
    for single_s in (1e-6, 0.0117, 0.0118, 0.027, 0.5, 3.0, 3.1, 10.0):
        assert_fits_the_budget(throughput_batch(256, single_s), single_s)


def test_a_slow_float_model_gets_a_smaller_batch(monkeypatch, fashion_test):
    """build_summary times batch 1, then the batch the budget allows: a fake 27 ms per image (a
    loaded machine, a big model) must give batch 64 in both the float and the int8 rows."""
    from hwsim.report import build
    from hwsim.report.measure import FloatTiming
    timed = []

    def fake_time_float(model, x, batch, repeats, budget_s):
        timed.append(batch)
        return FloatTiming(batch, 3, 27.0 * batch, 1e3 / 27.0)
    monkeypatch.setattr(build, "time_float", fake_time_float)
    job = build.ReportJob(model=LENET, config=preset("edge8"), images=20, latency_repeats=5)
    s = build.build_summary(job)
    assert timed == [1, 64]
    assert sorted({(p["engine"].split()[0], p["batch"]) for p in s["performance"]}) == [
        ("float32", 1), ("float32", 64), ("int8", 1), ("int8", 64)]
