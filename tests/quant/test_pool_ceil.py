"""MaxPool/AveragePool with ceil_mode and count_include_pad (issue 13): output shapes and
values of the float, torch and integer executors and of the QDQ export against
onnxruntime, the two engines' cycles against each other, and onnx's own node tests."""
import itertools
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig
from hwsim.cycle import run_cycle
from quant import serialize
from quant.calibrate import collect_ranges
from quant.errors import IRError
from quant.float_exec import run_float
from quant.int_exec import quantize_input, run_int
from quant.onnx_import import load_onnx
from quant.qdq_export import to_qdq_model
from quant.quantize import quantize
from quant.serialize import load_graph, save_graph
from quant.torch_exec import TorchModel, pick_device
from tests.conftest import ort_run
from tests.helpers import chain_model

pytestmark = pytest.mark.filterwarnings("ignore::quant.onnx_ops.ShapeWarning")  # strided floor shapes drop rows

SIZES = [(5, 5), (6, 7)]
CASES = [(op, k, s, p, ceil, cip)
         for op, k, s, p, ceil, cip in itertools.product(("MaxPool", "AveragePool"), (1, 2, 3), (1, 2, 3), (0, 1),
                                                          (0, 1), (0, 1))
         if p < k and not (op == "MaxPool" and cip)]  # ONNX wants pads < kernel; MaxPool has no count_include_pad


def _case_id(case) -> str:
    op, k, s, p, ceil, cip = case
    return f"{op}-k{k}-s{s}-p{p}-ceil{ceil}" + (f"-cip{cip}" if op == "AveragePool" else "")


def _pool_model(path, hw, case, channels=2):
    op, k, s, p, ceil, cip = case
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4, "ceil_mode": ceil}
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    return chain_model(path, (1, channels, *hw), [(op, {}, attrs)])


def _inputs(hw, n=3, channels=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, channels, *hw)).astype(np.float32)


@pytest.mark.parametrize("hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float_and_torch_match_onnxruntime(tmp_path, case, hw):
    path = _pool_model(tmp_path / "m.onnx", hw, case)
    graph, x = load_onnx(path), _inputs(hw)
    want = np.concatenate([ort_run(path, x[i:i + 1]) for i in range(len(x))])
    assert graph.output_shape[1:] == want.shape[1:]
    np.testing.assert_allclose(run_float(graph, x), want, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(TorchModel(graph, pick_device("cpu")).run(x), want, atol=1e-6, rtol=1e-6)


def _quantized(tmp_path, hw, case):
    graph = load_onnx(_pool_model(tmp_path / "m.onnx", hw, case))
    x = _inputs(hw, n=8, seed=1)
    return graph, quantize(graph, collect_ranges(graph, x)), x


@pytest.mark.parametrize("hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_integer_executor_within_one_lsb_of_float(tmp_path, case, hw):
    graph, qgraph, x = _quantized(tmp_path, hw, case)
    out = qgraph.nodes[0].quant.out
    got = (run_int(qgraph, quantize_input(x, qgraph.input_quant)).astype(np.float64) - out.zero_point) * out.scale
    # input rounding (at most half a step on average) + gemmlowp's two roundings of 1/count (up to one step)
    np.testing.assert_allclose(got, run_float(graph, x), atol=1.5 * out.scale, rtol=0)


QDQ_CASES = [c for c in CASES if c[4] and c[2] > 1]  # ceil_mode with a stride: where the last window matters


@pytest.mark.parametrize("case", QDQ_CASES, ids=_case_id)
def test_qdq_export_keeps_ceil_mode(tmp_path, case):
    """onnxruntime on the exported QDQ model: same shape, within one step of our integer executor."""
    _, qgraph, x = _quantized(tmp_path, (6, 7), case)
    path = tmp_path / "qdq.onnx"
    onnx.save(to_qdq_model(qgraph), str(path))
    out = qgraph.nodes[0].quant.out
    ours = (run_int(qgraph, quantize_input(x, qgraph.input_quant)).astype(np.float64) - out.zero_point) * out.scale
    # unoptimized: onnxruntime's fused int8 QLinearAveragePool still divides ceil_mode windows by the full
    # kernel under count_include_pad (its float AveragePool no longer does: microsoft/onnxruntime#29629)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1.01 * out.scale, rtol=0)


CYCLE_CASES = [("MaxPool", 3, 2, 1, 1, 0), ("AveragePool", 3, 2, 1, 1, 1), ("AveragePool", 3, 2, 1, 1, 0),
               ("AveragePool", 2, 3, 1, 1, 1), ("AveragePool", 3, 3, 0, 1, 0), ("MaxPool", 1, 2, 0, 1, 0)]


@pytest.mark.parametrize("hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("case", CYCLE_CASES, ids=_case_id)
def test_cycle_engine_bit_exact_and_cycles_match_analytical(tmp_path, case, hw):
    _, qgraph, x = _quantized(tmp_path, hw, case)
    x_q = quantize_input(x[:2], qgraph.input_quant)
    cfg = AcceleratorConfig(rows=4, cols=4)
    run = run_cycle(qgraph, x_q, cfg)
    np.testing.assert_array_equal(run.output, run_int(qgraph, x_q))
    analytical = map_graph(qgraph, cfg)
    assert run.result.to_dict() == analytical.to_dict() | {"engine": "cycle"}
    ort_shape = ort_run(_pool_model(tmp_path / "f.onnx", hw, case), x[:1]).shape
    k = case[1]
    assert analytical.layers[0].compute_cycles == math.ceil(math.prod(ort_shape[1:]) * k * k / cfg.vector_lanes)


def test_pytorch_default_ceil_avgpool_counts_the_explicit_pads(tmp_path):
    """AvgPool2d(3, 2, padding=1, ceil_mode=True): count_include_pad stays on, the ceil positions are not counted."""
    import torch
    case = ("AveragePool", 3, 2, 1, 1, 1)
    x = _inputs((6, 7))
    graph = load_onnx(_pool_model(tmp_path / "m.onnx", (6, 7), case))
    want = torch.nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)(torch.from_numpy(x)).numpy()
    assert graph.nodes[0].attrs.count_include_pad and graph.nodes[0].attrs.ceil_mode
    np.testing.assert_allclose(run_float(graph, x), want, atol=1e-6)


def _onnx_node_case(module, export: str):
    """The node, inputs and expected outputs of one of onnx's own backend node tests."""
    import importlib
    mod = importlib.import_module(f"onnx.backend.test.case.node.{module}")
    seen = {}
    real = mod.expect
    mod.expect = lambda node, inputs, outputs, name, **kw: seen.update(node=node, inputs=inputs, outputs=outputs,
                                                                        name=name)
    try:
        getattr(next(v for v in vars(mod).values() if isinstance(v, type) and hasattr(v, export)), export)()
    finally:
        mod.expect = real
    return seen


@pytest.mark.parametrize("module,export", [
    ("maxpool", "export_maxpool_2d_ceil_output_size_reduce_by_one"),
    ("averagepool", "export_averagepool_2d_ceil_last_window_starts_on_pad"),
    ("maxpool", "export_maxpool_2d_ceil"),
    ("averagepool", "export_averagepool_2d_ceil"),
])
def test_onnx_node_tests(tmp_path, module, export):
    case = _onnx_node_case(module, export)
    assert case["name"] == "test_" + export.removeprefix("export_")
    (x,), (y,) = case["inputs"], case["outputs"]
    node = case["node"]
    g = helper.make_graph([node], case["name"], [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, y.shape)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)])  # the opset onnx ships them with
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    graph = load_onnx(path)
    assert graph.output_shape == y.shape
    np.testing.assert_allclose(run_float(graph, x), y, atol=1e-4)  # onnx rounds the expected averages to 4 digits
    np.testing.assert_allclose(TorchModel(graph, pick_device("cpu")).run(x), y, atol=1e-4)
    np.testing.assert_allclose(ort_run(path, x), y, atol=1e-4)


def test_saved_graph_keeps_ceil_mode_and_old_files_load(tmp_path):
    case = ("AveragePool", 3, 2, 1, 1, 1)
    _, qgraph, _ = _quantized(tmp_path, (6, 7), case)
    loaded, _ = load_graph(save_graph(qgraph, tmp_path / "q.npz"))
    assert loaded.nodes[0].attrs == qgraph.nodes[0].attrs and loaded.nodes[0].attrs.ceil_mode
    # a file without the field: it defaults to off, and the pool's recorded 4x4 output no longer follows
    # from its attributes (3x4 without ceil_mode), so the verifier refuses the file in one line
    with np.load(tmp_path / "q.npz") as data:
        arrays = {k: data[k] for k in data.files if k not in (serialize.DOC, serialize.DIGEST)}
        doc = json.loads(str(data[serialize.DOC]))
    del doc["graph"]["nodes"]["__tuple__"][0]["attrs"]["ceil_mode"]
    doc_json = json.dumps(doc)
    np.savez(tmp_path / "old.npz", **{serialize.DOC: np.array(doc_json),
                                      serialize.DIGEST: np.array(serialize.content_digest(doc_json, arrays))},
             **arrays)
    with pytest.raises(IRError, match=r"'averagepool0'.*expected \(1, 2, 3, 4\)"):
        load_graph(tmp_path / "old.npz")


def test_downstream_of_onnx_off_by_one_inference(tmp_path):
    """Before opset 22 ONNX's shape inference keeps the last window (4 rows here, onnxruntime gives 3) and
    carries the wrong shape downstream; the importer follows onnxruntime through the whole chain."""
    path = chain_model(tmp_path / "m.onnx", (1, 2, 6, 7), [
        ("MaxPool", {}, {"kernel_shape": [1, 1], "strides": [2, 2], "ceil_mode": 1}),
        ("Relu", {}, {}),
        ("AveragePool", {}, {"kernel_shape": [2, 2], "strides": [1, 1], "ceil_mode": 1})])
    graph, x = load_onnx(path), _inputs((6, 7), n=1)
    want = ort_run(path, x)
    assert graph.output_shape == want.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(run_float(graph, x), want, atol=1e-6)
