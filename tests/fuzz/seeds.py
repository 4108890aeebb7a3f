"""Small valid models that the fuzzer mutates: together they use every op hwsim maps,
the shape-arithmetic chain torch's legacy exporter writes, and a residual Add."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes: list, inits: dict[str, np.ndarray], in_shape: tuple[int, ...], out: str, name: str,
           opset: int = 17, dynamic_batch: bool = False, out_shape: list | None = None) -> onnx.ModelProto:
    shape = ["N", *in_shape[1:]] if dynamic_batch else list(in_shape)
    out_type = helper.make_tensor_type_proto(TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_value_info(out, out_type)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hwsim-fuzz")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    onnx.checker.check_model(model)
    return model


def seed_models(seed: int = 0) -> dict[str, onnx.ModelProto]:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, size=shape).astype(np.float32)

    n = helper.make_node
    models = {}
    models["lenet_like"] = _model([
        n("Conv", ["x", "c1w", "c1b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "c2w"], ["c2"], name="conv2"),
        n("Tanh", ["c2"], ["t2"], name="tanh2"),
        n("AveragePool", ["t2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[1, 1]),
        n("Flatten", ["p2"], ["f"], name="flatten"),
        n("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        n("Softmax", ["g"], ["y"], name="softmax", axis=1),
    ], {"c1w": w(4, 1, 3, 3), "c1b": w(4), "c2w": w(6, 4, 3, 3), "fw": w(10, 6), "fb": w(10)},
        (1, 1, 8, 8), "y", "lenet_like")
    models["resnet_like"] = _model([
        n("Pad", ["x", "pads"], ["xp"], name="pad"),
        n("Conv", ["xp", "aw"], ["a"], name="conv_a", strides=[2, 2]),
        n("BatchNormalization", ["a", "g", "b", "m", "v"], ["abn"], name="bn", epsilon=1e-3),
        n("Clip", ["abn", "lo", "hi"], ["ar"], name="relu6"),
        n("Conv", ["ar", "dw"], ["d"], name="dwconv", group=4, pads=[1, 1, 1, 1]),
        n("Relu", ["d"], ["dr"], name="relu_d"),
        n("Add", ["ar", "dr"], ["s"], name="residual"),
        n("Sigmoid", ["s"], ["sg"], name="sigmoid"),
        n("GlobalAveragePool", ["sg"], ["gap"], name="gap"),
        n("Shape", ["gap"], ["shp"], name="shape"),
        n("Gather", ["shp", "zero"], ["bt"], name="gather", axis=0),
        n("Unsqueeze", ["bt", "axes0"], ["bt1"], name="unsqueeze"),
        n("Concat", ["bt1", "minus1"], ["target"], name="concat", axis=0),
        n("Reshape", ["gap", "target"], ["flat"], name="reshape"),
        n("MatMul", ["flat", "mw"], ["mm"], name="matmul"),
        n("Add", ["mm", "mb"], ["y"], name="bias"),
    ], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "aw": w(4, 3, 3, 3),
        "g": (rng.random(4) + 0.5).astype(np.float32), "b": w(4), "m": w(4),
        "v": (rng.random(4) + 0.5).astype(np.float32), "lo": np.array(0, np.float32),
        "hi": np.array(6, np.float32), "dw": w(4, 1, 3, 3), "zero": np.array(0, np.int64),
        "axes0": np.array([0], np.int64), "minus1": np.array([-1], np.int64), "mw": w(4, 5), "mb": w(5)},
        (1, 3, 9, 9), "y", "resnet_like", opset=13, dynamic_batch=True, out_shape=["N", 5])
    models["pool_ceil"] = _model([
        n("MaxPool", ["x"], ["m"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1),
        n("AveragePool", ["m"], ["a"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
          count_include_pad=1, pads=[0, 0, 1, 1]),
        n("Conv", ["a", "cw", "cb"], ["y"], name="conv"),
    ], {"cw": w(2, 2, 1, 1), "cb": w(2)}, (1, 2, 7, 7), "y", "pool_ceil", opset=18)
    return models


def calib_inputs(model: onnx.ModelProto, count: int = 6, seed: int = 0) -> np.ndarray:
    dims = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(seed).random((count, *dims[1:]), dtype=np.float32)
