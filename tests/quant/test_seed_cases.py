"""Every figure of the seed lecture notes (tests/golden/seed_cases.json), reproduced."""
from fractions import Fraction

import numpy as np
import pytest

from quant.analysis import summarize
from quant.float_exec import run_float
from quant.int_exec import run_int
from quant.ir import window_output_size
from quant.onnx_import import load_onnx
from quant.onnx_ops import ShapeWarning
from tests.conftest import LENET, SEEDS, ort_run
from tests.helpers import chain_model, unit_quant


def conv_layer(kernel, pad=0, stride=1, bias=None):
    k = np.asarray(kernel, dtype=np.float32)
    k = k.reshape(1, 1, *k.shape) if k.ndim == 2 else k
    params = {"w": k} if bias is None else {"w": k, "b": np.asarray(bias, dtype=np.float32)}
    return ("Conv", params, {"pads": [pad] * 4, "strides": [stride] * 2})


@pytest.mark.parametrize("case", SEEDS["conv2d_examples"], ids=lambda c: c["name"])
def test_conv2d_examples_float_int_and_ort(case, tmp_path):
    x = np.asarray(case["input"], dtype=np.float32)[None, None]
    path = chain_model(tmp_path / "m.onnx", x.shape, [conv_layer(case["kernel"], case["pad"], case["stride"])])
    graph = load_onnx(path)
    want = np.asarray(case["output"])
    assert np.array_equal(run_float(graph, x)[0, 0], want)
    assert np.array_equal(ort_run(path, x)[0, 0], want)
    assert np.array_equal(run_int(unit_quant(graph), x.astype(np.int8))[0, 0], want)


def test_multichannel_example():
    case = SEEDS["conv2d_multichannel_example"]
    x = np.asarray(case["input_top_left_2x2_per_channel"], dtype=np.float32)[None]  # pad 1: out (0,0) sees only these
    k = np.asarray(case["kernel_per_channel"], dtype=np.float32)[None]
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        path = chain_model(Path(d) / "m.onnx", x.shape, [conv_layer(k, pad=case["pad"], bias=[case["bias"]])])
        graph = load_onnx(path)
    assert run_float(graph, x)[0, 0, 0, 0] == case["output_at_0_0"]
    for c, want in enumerate(case["per_channel_sums"]):
        only_c = np.zeros_like(x)
        only_c[:, c] = x[:, c]
        assert run_float(graph, only_c)[0, 0, 0, 0] - case["bias"] == want
    # pixels 153..167 exceed int8: the integer path holds them as q = pixel - 128 (zero point -128)
    q = unit_quant(graph, in_zero_point=-128)
    assert run_int(q, (x - 128).astype(np.int8))[0, 0, 0, 0] == case["output_at_0_0"]


@pytest.mark.parametrize("case", SEEDS["pool_examples"], ids=lambda c: c["name"])
def test_pool_examples(case, tmp_path):
    x = np.asarray(case["input"], dtype=np.float32)[None, None]
    op = "MaxPool" if case["kind"] == "max" else "AveragePool"
    attrs = {"kernel_shape": [case["size"]] * 2, "strides": [case["stride"]] * 2}
    graph = load_onnx(chain_model(tmp_path / "m.onnx", x.shape, [(op, {}, attrs)]))
    want = np.asarray(case["output"])
    assert np.array_equal(run_float(graph, x)[0, 0], want)
    got_int = run_int(unit_quant(graph), x.astype(np.int8))[0, 0]
    # integer average: window sum x 1/count, rounded half away from zero (2.5 -> 3, 1.75 -> 2)
    assert np.array_equal(got_int, np.floor(want + 0.5))


def test_conv1d_box_filter(tmp_path):
    case = SEEDS["conv1d_box_filter"]
    f = np.asarray(case["f"], dtype=np.float32).reshape(1, 1, 1, -1)
    g = np.asarray([float(Fraction(v)) for v in case["g"]], dtype=np.float32).reshape(1, 1, 1, -1)
    for pad, key in ((0, "valid_output"), (1, "zero_pad_1_output")):
        layer = ("Conv", {"w": g}, {"pads": [0, pad, 0, pad]})
        graph = load_onnx(chain_model(tmp_path / f"m{pad}.onnx", f.shape, [layer]))
        want = np.asarray([float(Fraction(v)) for v in case[key]])
        assert np.allclose(run_float(graph, f)[0, 0, 0], want, atol=1e-5)


@pytest.mark.parametrize("case", SEEDS["output_size"]["cases"], ids=lambda c: f"N{c['N']}F{c['F']}S{c['S']}P{c['P']}")
def test_output_size_rule(case, tmp_path):
    out, dropped = window_output_size(case["N"], case["F"], case["S"], case["P"], case["P"])
    layer = conv_layer(np.ones((case["F"], case["F"])), case["P"], case["S"])
    path = chain_model(tmp_path / "m.onnx", (1, 1, case["N"], case["N"]), [layer])
    if case["out"] is None:  # does not fit: reported, ONNX floor semantics kept
        assert dropped > 0
        with pytest.warns(ShapeWarning, match="drop the last"):
            graph = load_onnx(path)
        assert graph.output_shape[2] == (case["N"] + 2 * case["P"] - case["F"]) // case["S"] + 1
    else:
        assert (out, dropped) == (case["out"], 0)
        assert load_onnx(path).output_shape[2:] == (case["out"], case["out"])


def _conv_summary(tmp_path, hwc, filters, f, s=1, p=0, bias=True):
    h, w, c = hwc
    params = {"w": np.zeros((filters, c, f, f), np.float32)}
    if bias:
        params["b"] = np.zeros(filters, np.float32)
    path = chain_model(tmp_path / "m.onnx", (1, c, h, w), [("Conv", params, {"pads": [p] * 4, "strides": [s, s]})])
    return summarize(load_onnx(path)).layers[-1]


def test_layer_params(tmp_path):
    lp = SEEDS["layer_params"]
    row = _conv_summary(tmp_path, (32, 32, 3), 10, 5, 1, 2)
    assert (row.output_shape, row.params) == ((10, 32, 32), lp[0]["params_with_bias"])
    row = _conv_summary(tmp_path, (56, 56, 64), 32, 1)
    assert (row.output_shape, row.params) == ((32, 56, 56), lp[1]["params_with_bias"])
    row = _conv_summary(tmp_path, (227, 227, 3), 96, 11, 4)
    assert (row.output_shape, row.weights) == ((96, 55, 55), lp[2]["weights_no_bias"])
    pool_layer = ("MaxPool", {}, {"kernel_shape": [3, 3], "strides": [2, 2]})
    pool = chain_model(tmp_path / "p.onnx", (1, 96, 55, 55), [pool_layer])
    row = summarize(load_onnx(pool)).layers[-1]
    assert (row.output_shape, row.params) == ((96, 27, 27), lp[3]["params"])
    d = 8
    assert _conv_summary(tmp_path, (9, 9, d), d, 7, bias=False).weights == 49 * d * d
    three = [("Conv", {"w": np.zeros((d, d, 3, 3), np.float32)}, {})] * 3
    assert summarize(load_onnx(chain_model(tmp_path / "t.onnx", (1, d, 9, 9), three))).total_weights == 27 * d * d


def _gemm_and_pool_rows(graph):
    keep = ("Conv", "Dense", "MaxPool", "AvgPool")  # the seed table's rows; tanh/Flatten are not rows there
    return [r for r, n in zip(summarize(graph).layers[1:], graph.nodes, strict=False) if n.op.value in keep]


@pytest.mark.parametrize("source", ["shipped", "classic"])
def test_lenet5_table(source, zoo_dir):
    from models.zoo import build
    graph = load_onnx(LENET if source == "shipped" else build("lenet5_classic", zoo_dir))
    rows = _gemm_and_pool_rows(graph)
    seed = SEEDS["lenet5"]
    assert graph.input_shape[1:] == ((1, 28, 28) if source == "shipped" else (1, 32, 32))
    assert len(rows) == len(seed["layers"])
    for row, layer in zip(rows, seed["layers"], strict=False):
        assert row.params == layer["params"], layer["name"]
        if "out_hwc" in layer:
            h, w, c = layer["out_hwc"]
            assert row.output_shape == (c, h, w), layer["name"]
        else:
            assert row.output_shape == (layer["out"],)
    assert graph.total_params == seed["total_params"]


@pytest.mark.slow
def test_vgg16_table(zoo_dir):
    from models.zoo import build
    seed = SEEDS["vgg16"]
    summary = summarize(load_onnx(build("vgg16", zoo_dir)))
    rows = [r for r in summary.layers if r.op != "Flatten"]
    assert len(rows) == len(seed["layers"])
    for row, layer in zip(rows, seed["layers"], strict=False):
        h, w, c = layer["output_hwc"]
        assert row.output_shape in ((c, h, w), (c,)), layer
        assert row.activations == layer["activations"], layer
        assert row.weights == layer["weights_no_bias"], layer
    assert summary.total_activations == seed["total_activations"]
    assert summary.total_weights == seed["total_weights_no_bias"]
    assert summary.to_dict()["total_act_bytes_fp32"] == 4 * seed["total_activations"]  # ~58 MiB, not the slide's 93 MB


def test_depthwise_separable_counts(tmp_path):
    case = SEEDS["depthwise_separable_example"]
    c, n, f = case["input_channels"], case["output_channels"], case["F"]
    h = case["output_hw"][0] + f - 1
    regular = chain_model(tmp_path / "r.onnx", (1, c, h, h), [("Conv", {"w": np.ones((n, c, f, f), np.float32)}, {})])
    separable = chain_model(tmp_path / "s.onnx", (1, c, h, h), [
        ("Conv", {"w": np.ones((c, 1, f, f), np.float32)}, {"group": c}),
        ("Conv", {"w": np.ones((n, c, 1, 1), np.float32)}, {})])
    for path, key in ((regular, "regular"), (separable, "depthwise_separable")):
        s = summarize(load_onnx(path))
        assert (s.total_weights, s.total_macs) == (case[key]["params_no_bias"], case[key]["multiplications"])


def test_inception_bottleneck_counts(tmp_path):
    case = SEEDS["inception_bottleneck_example"]
    h, w, c = case["input_hwc"]
    n, f = case["output_filters"], case["F"]
    direct = chain_model(tmp_path / "d.onnx", (1, c, h, w),
                         [("Conv", {"w": np.zeros((n, c, f, f), np.float32)}, {"pads": [2] * 4})])
    bottleneck = chain_model(tmp_path / "b.onnx", (1, c, h, w), [
        ("Conv", {"w": np.zeros((16, c, 1, 1), np.float32)}, {}),
        ("Conv", {"w": np.zeros((n, 16, f, f), np.float32)}, {"pads": [2] * 4})])
    for path, key in ((direct, "without_bottleneck"), (bottleneck, "with_1x1_bottleneck_16")):
        s = summarize(load_onnx(path))
        assert (s.total_weights, s.total_macs) == (case[key]["params_no_bias"], case[key]["multiplications"])


def test_bytes_per_value(lenet):
    bpv = SEEDS["bytes_per_value"]
    for row in summarize(lenet).layers:
        assert row.act_bytes_fp32 == bpv["float32"] * row.activations
        assert row.act_bytes_int8 == bpv["fixed_point_int8"] * row.activations
