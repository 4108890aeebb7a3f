"""Small builders for test models and exactly-scaled integer graphs."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from quant.fixedpoint import quantize_multiplier
from quant.ir import Graph, NodeQuant, Op, QParams, Requant


def chain_model(path: Path, in_shape: tuple, layers: list[tuple[str, dict, dict]], opset: int = 18) -> Path:
    """A chain of single-input ONNX nodes: layers = [(op_type, {init name suffix: array}, attrs)]."""
    nodes, inits, prev = [], [], "x"
    for i, (op, params, attrs) in enumerate(layers):
        names = []
        for key, value in params.items():
            name = f"{op}{i}_{key}"
            inits.append(numpy_helper.from_array(np.asarray(value), name))
            names.append(name)
        out = f"t{i}"
        nodes.append(helper.make_node(op, [prev, *names], [out], name=f"{op.lower()}{i}", **attrs))
        prev = out
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
    outputs = [helper.make_value_info(prev, helper.make_tensor_type_proto(TensorProto.FLOAT, shape=None))]
    graph = helper.make_graph(nodes, "chain", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills the output's shape
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def unit_quant(graph: Graph, in_zero_point: int = 0) -> Graph:
    """Quantize a graph of integer-valued Conv/Pool layers with every scale 1: the integer
    executor must then reproduce exact integer arithmetic (zero points folded as usual)."""
    one = QParams(1.0, 0)
    m0, shift = quantize_multiplier(1.0)
    zp, nodes = in_zero_point, []
    for node in graph.nodes:
        rq = Requant(np.array(m0), np.array(shift), 0, -128, 127)
        if node.op is Op.CONV:
            w = node.weight.astype(np.int8)
            bias = np.zeros(w.shape[0], np.int64) if node.bias is None else node.bias.astype(np.int64)
            acc_bias = bias - zp * w.reshape(w.shape[0], -1).astype(np.int64).sum(1)
            nq = NodeQuant(out=one, requant=rq, weight=w, weight_scale=np.ones(w.shape[0]), bias=bias.astype(np.int32),
                           acc_bias=acc_bias.astype(np.int32), in_zero_points=(zp,))
        elif node.op is Op.AVGPOOL:
            k = node.attrs.kernel[0] * node.attrs.kernel[1]
            m0k, shk = quantize_multiplier(1.0 / k)
            nq = NodeQuant(out=QParams(1.0, zp), requant=Requant(np.array(m0k), np.array(shk), zp, -128, 127),
                           in_zero_points=(zp,))
        else:
            nq = NodeQuant(out=QParams(1.0, zp), in_zero_points=(zp,))
        zp = nq.out.zero_point
        nodes.append(replace(node, quant=nq))
    return replace(graph, nodes=tuple(nodes), input_quant=QParams(1.0, in_zero_point))


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Conv2d(8, 4, 1), torch.nn.Sigmoid(), torch.nn.MaxPool2d(2, 1),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10), torch.nn.Tanh(),
        torch.nn.Softmax(dim=1)).eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m


def rgb_model(folder: Path, calib_images: int = 64) -> tuple[Path, Path]:
    """A small 3x12x12 -> 5 CNN with no labelled test set, and a .npy of calibration inputs for it."""
    rng = np.random.default_rng(0)
    model = chain_model(folder / "rgb.onnx", (1, 3, 12, 12), [
        ("Conv", {"w": rng.normal(size=(8, 3, 3, 3)).astype(np.float32)}, {"pads": [1, 1, 1, 1]}),
        ("Relu", {}, {}), ("GlobalAveragePool", {}, {}), ("Flatten", {}, {}),
        ("Gemm", {"w": rng.normal(size=(5, 8)).astype(np.float32)}, {"transB": 1})])
    np.save(folder / "calib.npy", rng.random((calib_images, 3, 12, 12), dtype=np.float32))
    return model, folder / "calib.npy"


def wide_conv_model(path: Path, width: int = 2048) -> Path:
    """One 3x3 conv over 3 x 8 x `width` pixels: a single window's three input rows of one channel
    take 3 * width bytes, more than half of a 1 KiB ifmap SRAM, so no tile fits there."""
    w = np.random.default_rng(0).normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    return chain_model(path, (1, 3, 8, width), [("Conv", {"w": w}, {"pads": [1, 1, 1, 1]})])
