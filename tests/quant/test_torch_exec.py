"""The PyTorch float reference equals quant's numpy float executor on every op the IR has."""
import numpy as np
import pytest
import torch

from models import zoo
from quant.float_exec import run_float
from quant.onnx_import import load_onnx
from quant.torch_exec import TorchModel, pick_device
from tests.helpers import chain_model, small_cnn

RNG = np.random.default_rng(0)


def _same(graph, x, atol=1e-5):
    model = TorchModel(graph, pick_device("cpu"))
    np.testing.assert_allclose(model.run(x, batch=2), run_float(graph, x), atol=atol, rtol=1e-5)


def test_lenet_matches_numpy(lenet):
    _same(lenet, RNG.random((5, 1, 28, 28), dtype=np.float32))


def test_small_cnn_every_op(tmp_path):
    """Conv (padded, strided, depthwise), ReLU6 clamp, AvgPool, sigmoid, MaxPool, GlobalAvgPool, Dense, tanh,
    Softmax."""
    path = tmp_path / "m.onnx"
    torch.onnx.export(small_cnn(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=True)
    _same(load_onnx(path), RNG.random((1, 3, 16, 16), dtype=np.float32))


@pytest.mark.parametrize("include_pad", [0, 1])
def test_padded_avgpool_and_dilated_conv(tmp_path, include_pad):
    w = RNG.normal(size=(4, 2, 3, 3)).astype(np.float32)
    path = chain_model(tmp_path / "m.onnx", (1, 2, 9, 9), [
        ("Conv", {"w": w}, {"dilations": [2, 2], "pads": [2, 1, 0, 1]}),
        ("AveragePool", {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                             "count_include_pad": include_pad}),
        ("MaxPool", {}, {"kernel_shape": [2, 2], "pads": [1, 0, 0, 1]})])
    _same(load_onnx(path), RNG.normal(size=(1, 2, 9, 9)).astype(np.float32))


def test_resnet_residual_adds(tmp_path):
    _same(load_onnx(zoo.build("resnet18", tmp_path)), RNG.random((1, 3, 224, 224), dtype=np.float32), atol=1e-4)


def test_device_is_named():
    dev = pick_device("auto")
    assert dev.name in ("cpu", "cuda") and dev.description and dev.torch_version == torch.__version__
    assert pick_device("cpu").name == "cpu"


def test_every_op_model(every_op):
    """The graph with one node of every Op (the new CNN ops included)."""
    from quant.ir import Op
    assert {n.op for n in every_op.nodes} == set(Op)
    _same(every_op, RNG.random((3, 3, 12, 12), dtype=np.float32))
