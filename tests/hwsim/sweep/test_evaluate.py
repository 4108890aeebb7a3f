"""One point's row equals hwsim's engines on that config; infeasible points say why; Pareto fronts."""
import pytest

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.energy import inference_energy
from hwsim.sweep.evaluate import COLUMNS, Tables, evaluate_point, required_acc_bits
from hwsim.sweep.pareto import pareto_front, usable_objectives
from hwsim.sweep.space import Point
from quant.onnx_import import load_onnx
from tests.helpers import wide_conv_model


def test_row_matches_the_analytical_engine(lenet):
    cfg = AcceleratorConfig(rows=16, cols=8, dataflow=Dataflow.WS, ifmap_sram_kib=32, dram_bytes_per_cycle=8.0)
    row = evaluate_point(lenet, Point(cfg, weight_bits=6, act_bits=8, batch=4),
                         Tables(accuracy={"w6a8": 90.5}, float_top1=91.0))
    mapped = map_graph(lenet, cfg, batch=4, weight_bits=6, act_bits=8)  # 6-bit weights are stored packed
    assert mapped.total("dram_read_bytes") < map_graph(lenet, cfg, batch=4).total("dram_read_bytes")
    assert set(row) == set(COLUMNS) and row["status"] == "ok"
    assert row["total_cycles"] == mapped.total_cycles and row["latency_us"] == pytest.approx(1e6 * mapped.latency_s)
    assert row["throughput_images_per_s"] == pytest.approx(4 / mapped.latency_s)
    assert row["energy_per_image_uj"] == pytest.approx(inference_energy(mapped, bits=8).total_pj / 4e6)
    assert (row["pes"], row["sram_kib_total"], row["int8_top1_pct"], row["float_top1_pct"]) == (128, 192, 90.5, 91.0)
    assert row["luts"] is None and row["fmax_mhz"] is None  # no --synth


def test_infeasible_points_say_why(lenet, tmp_path):
    tiny = AcceleratorConfig(rows=32, cols=32, ifmap_sram_kib=1, filter_sram_kib=1, ofmap_sram_kib=1, acc_sram_kib=1)
    assert evaluate_point(lenet, Point(tiny), Tables())["status"] == "ok"  # K split, small tiles: LeNet fits 1 KiB
    wide = load_onnx(wide_conv_model(tmp_path / "wide.onnx"))
    row = evaluate_point(wide, Point(tiny), Tables())
    assert row["status"].startswith("infeasible: layer 'conv0'") and "smallest tile needs" in row["status"]
    assert row["latency_us"] is None
    need, layer = required_acc_bits(lenet, 8, 8)
    assert (need, layer) == ((400 << 14).bit_length() + 1, "node_conv2d_2")  # K = 400 is LeNet's largest
    narrow = evaluate_point(lenet, Point(AcceleratorConfig(acc_bits=need - 1)), Tables())
    assert narrow["status"] == f"infeasible: acc_bits {need - 1} < {need} needed by node_conv2d_2"
    assert evaluate_point(lenet, Point(AcceleratorConfig(acc_bits=need - 1), 4, 4), Tables())["status"] == "ok"


def test_synth_costs_are_looked_up(lenet):
    cost = {"8x8-d8-acc32": {"luts": 1234, "ffs": 567, "dsps": 64, "fmax_mhz": 50.0}}
    row = evaluate_point(lenet, Point(AcceleratorConfig()), Tables(synth=cost))
    assert (row["luts"], row["dsps"]) == (1234, 64)
    assert row["latency_at_fmax_us"] == pytest.approx(row["total_cycles"] / 50.0)


def _rows(*objs):
    return [{"point": str(i), "latency_us": a, "pes": b, "int8_top1_pct": c} for i, (a, b, c) in enumerate(objs)]


def test_pareto_front():
    rows = _rows((10, 64, 90), (20, 16, 90), (10, 64, 89), (30, 16, 91), (5, 256, 80), (20, 16, 90), (40, 64, None))
    front = pareto_front(rows, ("latency_us", "pes"), ("int8_top1_pct",))
    # (10,64,89) is beaten by (10,64,90); (40,64,None) has no accuracy; ties (rows 1 and 5) are both kept
    assert sorted(r["point"] for r in front) == ["0", "1", "3", "4", "5"]
    assert pareto_front(rows, (), ()) == []
    assert usable_objectives(rows, ("latency_us", "luts"), ("int8_top1_pct",)) == (
        ("latency_us",), ("int8_top1_pct",), ["luts"])


def test_pareto_front_equals_brute_force_on_random_ties():
    import numpy as np
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 40, 400), rng.integers(0, 40, 400), rng.integers(0, 4, 400)
    rows = [{"point": str(i), "a": int(a[i]), "b": int(b[i]), "c": int(c[i])} for i in range(400)]
    cost = np.array([[r["a"], r["b"], -r["c"]] for r in rows])
    brute = [r for i, r in enumerate(rows)
             if not np.any(np.all(cost <= cost[i], axis=1) & np.any(cost < cost[i], axis=1))]
    assert pareto_front(rows, ("a", "b"), ("c",)) == brute and len(brute) > 3
