"""Fixtures of the quant tests: a small quantized graph that holds every IR op."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

EVERY_OP_TEXT = """
<ir_version: 8, opset_import: ["" : 18]>
every_op (float[1,3,12,12] x) => (float[1,10] y)
<float[8,3,3,3] w1, float[8] b1, float[8,1,3,3] w2, float[8] b2, int64[8] pads, float lo, float hi,
 float[10,8] wfc, float[10] bfc, int64[2] parts, int64[5] grouped, int64[4] back, float[4] scales,
 float[8,4,3,3] wt, float[8] bt, float[8,1,1] slope, int64[2] hw_axes,
 float[8] gamma, float[8] beta, float[8] mean, float[8] var> {
    c1 = Conv<kernel_shape=[3,3], pads=[1,1,1,1]>(x, w1, b1)
    r1 = Relu(c1)
    c2 = Conv<kernel_shape=[3,3], pads=[1,1,1,1], group=8>(r1, w2, b2)
    s = Add(c2, r1)
    p = Pad(s, pads)
    m = MaxPool<kernel_shape=[2,2], strides=[2,2]>(p)
    r2 = Relu(m)
    a = AveragePool<kernel_shape=[3,3], strides=[1,1], pads=[1,1,1,1]>(r2)
    k = Clip(a, lo, hi)
    sg = Sigmoid(k)
    th = Tanh(sg)
    lo3, hi5 = Split<axis=1>(th, parts)
    cat = Concat<axis=1>(hi5, lo3)
    rs = Reshape(cat, grouped)
    tr = Transpose<perm=[0,2,1,3,4]>(rs)
    sh = Reshape(tr, back)
    hs = HardSwish(sh)
    se = ReduceMean<keepdims=1>(hs, hw_axes)
    gate = HardSigmoid<alpha=0.2, beta=0.5>(se)
    mu = Mul(hs, gate)
    up = Resize<mode="nearest">(mu, , scales)
    ct = ConvTranspose<strides=[2,2], pads=[1,1,1,1], output_padding=[1,1], group=2>(up, wt, bt)
    lr = LeakyRelu<alpha=0.1>(ct)
    pr = PRelu(lr, slope)
    bn = BatchNormalization(pr, gamma, beta, mean, var)
    g = GlobalAveragePool(bn)
    f = Flatten<axis=1>(g)
    d = Gemm<transB=1>(f, wfc, bfc)
    y = Softmax<axis=1>(d)
}"""


def every_op_model(path):
    """Conv (+fused ReLU), depthwise Conv, Add, Pad, MaxPool, ReLU, AvgPool, Clip, Sigmoid, Tanh,
    Split, Concat, a channel shuffle, HardSwish, an SE gate (ReduceMean, HardSigmoid, Mul), Resize,
    ConvTranspose, LeakyRelu, PRelu, a BatchNorm no conv absorbs, GlobalAvgPool, Flatten, Dense,
    Softmax: after import, one node of every `Op`."""
    rng = np.random.default_rng(3)
    model = onnx.parser.parse_model(EVERY_OP_TEXT)
    inits = {"w1": rng.normal(0, 0.3, (8, 3, 3, 3)), "b1": rng.normal(0, 0.1, 8),
             "w2": rng.normal(0, 0.3, (8, 1, 3, 3)), "b2": rng.normal(0, 0.1, 8),
             "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1]), "lo": np.array(-0.5), "hi": np.array(1.5),
             "wfc": rng.normal(0, 1.0, (10, 8)), "bfc": rng.normal(0, 0.1, 10), "parts": np.array([3, 5]),
             "grouped": np.array([1, 2, 4, 7, 7]), "back": np.array([1, 8, 7, 7]),
             "scales": np.array([1.0, 1.0, 2.0, 2.0]), "wt": rng.normal(0, 0.3, (8, 4, 3, 3)),
             "bt": rng.normal(0, 0.1, 8), "slope": rng.uniform(0.05, 0.5, (8, 1, 1)),
             "hw_axes": np.array([2, 3]), "gamma": rng.uniform(0.5, 1.5, 8), "beta": rng.normal(0, 0.1, 8),
             "mean": rng.normal(0, 0.1, 8), "var": rng.uniform(0.5, 1.5, 8)}
    for name, value in inits.items():
        dtype = np.int64 if name in ("pads", "parts", "grouped", "back", "hw_axes") else np.float32
        model.graph.initializer.append(onnx.numpy_helper.from_array(value.astype(dtype), name))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def every_op(tmp_path_factory):
    from quant.onnx_import import load_onnx
    return load_onnx(every_op_model(tmp_path_factory.mktemp("every_op") / "every_op.onnx"))


@pytest.fixture(scope="session")
def every_op_q(every_op):
    from quant.calibrate import collect_ranges
    from quant.quantize import quantize
    calib = np.random.default_rng(4).random((32, 3, 12, 12), dtype=np.float32)
    return quantize(every_op, collect_ranges(every_op, calib))
