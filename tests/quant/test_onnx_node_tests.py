"""ONNX's own backend node tests (generated from the onnx wheel's case generators at test time,
quant.node_tests): every case hwsim imports must give the expected outputs; every other case must
be refused with a one-line HwsimError. Zero wrong values, zero crashes."""
from __future__ import annotations

from quant.node_tests import run_all, table


def test_onnx_node_tests_zero_wrong_values_zero_crashes():
    results = run_all()
    print("\n" + table(results))
    wrong = [f"{r.name}: {r.detail}" for r in results if r.outcome == "wrong"]
    assert not wrong, wrong
    passed = {r.name for r in results if r.outcome == "pass"}
    assert len(passed) >= 80 and {"test_maxpool_2d_ceil_output_size_reduce_by_one",
                                  "test_averagepool_2d_ceil_last_window_starts_on_pad", "test_hardswish",
                                  "test_convtranspose", "test_resize_upsample_scales_nearest",
                                  "test_leakyrelu", "test_hardsigmoid"} <= passed
    assert all("\n" not in r.detail for r in results if r.outcome == "refused")  # one-line errors
