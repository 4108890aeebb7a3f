"""Every zoo architecture exports with both torch exporters and imports into the IR
with the float executor matching onnxruntime."""
import numpy as np
import pytest
import torch

from quant.analysis import summarize
from quant.float_exec import run_float
from quant.onnx_import import load_onnx
from tests.conftest import ort_run

# stride-2 1x1 skip convs really ignore the last row of an even input: expected, reported elsewhere
pytestmark = pytest.mark.filterwarnings("ignore::quant.onnx_ops.ShapeWarning")

CASES = [("lenet5", "legacy"), ("lenet5_classic", "dynamo"), ("alexnet", "legacy"), ("resnet18", "dynamo"),
         ("resnet18", "legacy"), ("mobilenet_v1", "dynamo"), ("mobilenet_v1", "legacy"), ("resnet50", "legacy")]
@pytest.mark.parametrize("name,exporter", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_zoo_model_imports(name, exporter, tmp_path):
    from models.zoo import ZOO, build
    path = build(name, tmp_path, exporter)
    graph = load_onnx(path)
    x = np.random.default_rng(0).random((1, *graph.input_shape[1:]), dtype=np.float32)
    want = ort_run(path, x)
    assert np.allclose(run_float(graph, x), want, atol=1e-4 * max(1.0, np.abs(want).max()))
    # every conv/linear weight of the torch model, and nothing else (BatchNorm folds into biases)
    torch_weights = sum(m.weight.numel() for m in ZOO[name][0]().modules()
                        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert summarize(graph).total_weights == torch_weights
