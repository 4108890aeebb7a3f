"""ONNX import: opsets, both torch exporters, passes, and bad input."""
import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from quant.errors import ModelFormatError, ShapeError, UnsupportedOpError
from quant.float_exec import run_float
from quant.ir import Op
from quant.onnx_import import graph_from_model, load_onnx, read_model
from quant.passes import fold_affine_into_conv, fold_pad_into_conv, fuse_clamp, optimize
from tests.conftest import LENET, ort_run, write_model
from tests.helpers import chain_model, small_cnn

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("exporter,opset", [("dynamo", 18), ("legacy", 13), ("legacy", 15), ("legacy", 17)])
def test_torch_exports_load_and_match_onnxruntime(exporter, opset, tmp_path):
    path = tmp_path / "m.onnx"
    x = torch.rand(1, 3, 16, 16)
    kwargs = {"dynamo": True} if exporter == "dynamo" else {"dynamo": False, "do_constant_folding": False}
    torch.onnx.export(small_cnn(), (x,), str(path), opset_version=opset, **kwargs)
    graph = load_onnx(path)
    ops = [n.op for n in graph.nodes]
    assert Op.CONV in ops and Op.SOFTMAX in ops
    assert sum(op is Op.CONV for op in ops) == 3  # both BatchNorms folded away
    xb = RNG.random((1, 3, 16, 16), dtype=np.float32)  # exported with a fixed batch of 1
    assert np.allclose(run_float(graph, xb), ort_run(path, xb), atol=1e-5)


def test_legacy_export_keeps_batchnorm_nodes_that_we_fold(tmp_path):
    path = tmp_path / "m.onnx"
    torch.onnx.export(small_cnn(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False, opset_version=13,
                      do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL)
    assert any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    assert all(n.attrs.kernel != (1, 1) or n.attrs.groups == 1 for n in load_onnx(path).nodes if n.op is Op.CONV)


@pytest.mark.parametrize("opset", [13, 14, 15, 16, 17, 18])
def test_text_syntax_model_every_opset(opset, tmp_path):
    text = f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[N,2,6,6] x) => (float[N,5] y)
    <float[3,2,3,3] w, float[3] b, int64[8] pads, float[5,27] wfc, float[5] bfc> {{
        p = Pad(x, pads)
        c = Conv<kernel_shape=[3,3]>(p, w, b)
        r = Relu(c)
        m = MaxPool<kernel_shape=[2,2], strides=[2,2]>(r)
        f = Flatten<axis=1>(m)
        y = Gemm<transB=1>(f, wfc, bfc)
    }}"""
    model = onnx.parser.parse_model(text)
    inits = {"w": RNG.normal(size=(3, 2, 3, 3)), "b": RNG.normal(size=3), "wfc": RNG.normal(size=(5, 27)),
             "bfc": RNG.normal(size=5), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1])}
    for name, value in inits.items():
        dtype = np.int64 if name == "pads" else np.float32
        model.graph.initializer.append(onnx.numpy_helper.from_array(value.astype(dtype), name))
    onnx.save(model, str(tmp_path / "m.onnx"))
    graph = load_onnx(tmp_path / "m.onnx")
    assert [n.op for n in graph.nodes] == [Op.CONV, Op.MAXPOOL, Op.FLATTEN, Op.DENSE]  # Pad and Relu folded in
    assert graph.nodes[0].attrs.pads == (1, 1, 1, 1) and graph.nodes[0].attrs.act is not None
    x = RNG.random((3, 2, 6, 6), dtype=np.float32)
    assert np.allclose(run_float(graph, x), ort_run(tmp_path / "m.onnx", x), atol=1e-5)


def _pass_equivalence(graph_path, the_pass):
    raw = graph_from_model(read_model(graph_path), passes=False)
    after = optimize(raw, (the_pass,))
    x = RNG.random((2, *raw.input_shape[1:]), dtype=np.float32)
    assert len(after.nodes) < len(raw.nodes)
    assert np.allclose(run_float(raw, x), run_float(after, x), atol=1e-5)


def test_pass_equivalence_batchnorm(tmp_path):
    bn = {"s": RNG.random(3) + 0.5, "b": RNG.normal(size=3), "m": RNG.normal(size=3), "v": RNG.random(3) + 0.5}
    path = chain_model(tmp_path / "m.onnx", (1, 2, 5, 5), [
        ("Conv", {"w": RNG.normal(size=(3, 2, 3, 3)).astype(np.float32)}, {}),
        ("BatchNormalization", {k: v.astype(np.float32) for k, v in bn.items()}, {"epsilon": 1e-3})])
    _pass_equivalence(path, fold_affine_into_conv)


def test_pass_equivalence_pad_and_clamp(tmp_path):
    path = chain_model(tmp_path / "m.onnx", (1, 2, 5, 5), [
        ("Pad", {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1])}, {}),
        ("Conv", {"w": RNG.normal(size=(3, 2, 3, 3)).astype(np.float32)}, {}),
        ("Clip", {"lo": np.float32(0), "hi": np.float32(0.5)}, {})])
    _pass_equivalence(path, fold_pad_into_conv)
    _pass_equivalence(path, fuse_clamp)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        load_onnx(tmp_path / "nope.onnx")


def test_not_onnx(tmp_path):
    (tmp_path / "x.onnx").write_text("this is not a protobuf\n" * 10)
    with pytest.raises(ModelFormatError, match="ONNX"):
        load_onnx(tmp_path / "x.onnx")


def test_truncated(tmp_path):
    data = LENET.read_bytes()
    (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError):
        load_onnx(tmp_path / "t.onnx")


def test_unsupported_ops_are_all_listed(tmp_path):
    path = write_model(tmp_path / "m.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,4] x) => (float[1,4] y) {
        a = Erf(x)
        b = Elu(a)
        y = Relu(b)
    }""")
    with pytest.raises(UnsupportedOpError, match=r"Erf.*Elu.*supported: .*Conv"):
        load_onnx(path)


def test_dynamic_spatial_dims(tmp_path):
    path = write_model(tmp_path / "m.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[N,1,H,W] x) => (float[N,1,H,W] y) { y = Relu(x) }""")
    with pytest.raises(ShapeError, match=r"dynamic dimensions \[N x 1 x H x W\]|dynamic dimensions"):
        load_onnx(path)


def test_unsupported_reshape_names_node(tmp_path):
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="odd_reshape")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8, 4])],
        [onnx.numpy_helper.from_array(np.array([1, 8, 4]), "s")]), opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedOpError, match=r"'odd_reshape' \(Reshape\) gives shape \(1, 8, 4\).*not a flatten"):
        load_onnx(tmp_path / "m.onnx")


# --- the new CNN ops: what they refuse, in one line naming the node ---------------------------------

BAD_NEW_OPS = {
    "concat along H": ("a = Relu(x)\n y = Concat<axis=2>(x, a)", r"'Concat_1' \(Concat\): only the channel axis"),
    "NHWC transpose into a conv": ("t = Transpose<perm=[0,2,3,1]>(x)\n y = Relu(t)",
                                   r"'Transpose_0' \(Transpose\) gives shape \(1, 4, 4, 4\).*channel permutation"),
    "transpose of the batch": ("y = Transpose<perm=[1,0,2,3]>(x)", r"moves the batch axis"),
    "bilinear resize": ("y = Resize<mode=\"linear\">(x, , s4)", r"only mode 'nearest'"),
    "strided slice": ("y = Slice(x, st, en, ax, two)", r"step 2 along axis 1"),
    "slice along H": ("y = Slice(x, st, en, h_ax)", r"only a non-empty channel range"),
    "split along H": ("a, b = Split<axis=2, num_outputs=2>(x)\n y = Add(a, b)", r"only the channel axis"),
    "mul broadcast along W": ("r = ReduceMean<keepdims=1>(x, hw)\n m = Relu(x)\n y = Mul(m, wrow)",
                              r"scalar or per-channel constant"),
    "sub of two tensors": ("a = Relu(x)\n y = Sub(x, a)", r"subtracting two activation tensors"),
    "division by zero": ("y = Div(x, zero)", r"division by a constant that holds 0"),
}


@pytest.mark.parametrize("case", BAD_NEW_OPS)
def test_new_ops_refuse_what_they_cannot_map(case, tmp_path):
    body, match = BAD_NEW_OPS[case]
    path = write_model(tmp_path / "m.onnx", f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,4,4,4] x) => (float y)
    <float[4] s4 = {{1.0, 1.0, 2.0, 2.0}}, int64[1] st = {{0}}, int64[1] en = {{2}}, int64[1] ax = {{1}},
     int64[1] two = {{2}}, int64[1] h_ax = {{2}}, int64[2] hw = {{2, 3}},
     float[1,1,1,4] wrow = {{1.0, 2.0, 3.0, 4.0}}, float zero = {{0.0}}> {{
     {body}
    }}""")
    with pytest.raises(UnsupportedOpError, match=match) as err:
        load_onnx(path)
    assert "\n" not in str(err.value)


def test_channel_shuffle_split_and_concat_import_as_ir_ops(tmp_path):
    """ShuffleNet's unit as the dynamo exporter writes it: Split, Reshape/Transpose/Reshape, Concat."""
    path = write_model(tmp_path / "m.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,8,3,3] x) => (float[1,8,3,3] y)
    <int64[5] g5 = {1, 2, 4, 3, 3}, int64[4] back = {1, 8, 3, 3}> {
     a, b = Split<axis=1, num_outputs=2>(x)
     r = Relu(b)
     c = Concat<axis=1>(a, r)
     v = Reshape(c, g5)
     t = Transpose<perm=[0,2,1,3,4]>(v)
     y = Reshape(t, back)
    }""")
    graph = load_onnx(path)
    assert [n.op for n in graph.nodes] == [Op.SLICE, Op.SLICE, Op.ACTIVATION, Op.CONCAT, Op.SHUFFLE]
    assert graph.nodes[-1].attrs.perm == (0, 4, 1, 5, 2, 6, 3, 7)
    x = np.random.default_rng(0).normal(size=(1, 8, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(run_float(graph, x), ort_run(path, x))


def _one_node(tmp_path, node, opset, inits=None, in_shape=(1, 4, 6, 6)):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", "c", "h", "w"])],
                              [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(tmp_path / "m.onnx"))
    return tmp_path / "m.onnx"


@pytest.mark.parametrize("case", ["resize10", "upsample7", "upsample9", "resize13_sizes"])
def test_older_resize_forms_match_onnxruntime(case, tmp_path):
    scales = np.array([1, 1, 2, 3], np.float32)
    node, opset, inits = {
        "resize10": (helper.make_node("Resize", ["x", "s"], ["y"], mode="nearest"), 10, {"s": scales}),
        "upsample7": (helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=[1.0, 1.0, 2.0, 3.0]), 7, {}),
        "upsample9": (helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest"), 9, {"s": scales}),
        "resize13_sizes": (helper.make_node("Resize", ["x", "", "", "z"], ["y"], mode="nearest"), 13,
                           {"z": np.array([1, 4, 9, 14], np.int64)}),
    }[case]
    path = _one_node(tmp_path, node, opset, inits)
    x = np.random.default_rng(0).normal(size=(1, 4, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(run_float(load_onnx(path), x), ort_run(path, x))


@pytest.mark.parametrize("case,match", [
    ("huge", r"too large to map"), ("fractional", r"only integer upsampling"),
    ("tf_crop", r"tf_crop_and_resize"), ("out_pad", r"output_padding"),
    ("huge_stride", r"spreads its input to .* more than [\d,]+ values")])
def test_resize_and_conv_transpose_refusals(case, match, tmp_path):
    node, opset, inits = {
        "huge": (helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest"), 13,
                 {"s": np.array([1, 1, 3000, 3000], np.float32)}),
        "fractional": (helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest"), 13,
                       {"s": np.array([1, 1, 2.3, 2.3], np.float32)}),
        "tf_crop": (helper.make_node("Resize", ["x", "r", "s"], ["y"], mode="nearest",
                                     coordinate_transformation_mode="tf_crop_and_resize"), 13,
                    {"r": np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32), "s": np.array([1, 1, 2, 2], np.float32)}),
        "out_pad": (helper.make_node("ConvTranspose", ["x", "w"], ["y"], dilations=[3, 3], output_padding=[2, 1]), 13,
                    {"w": np.ones((4, 6, 3, 3), np.float32)}),
        "huge_stride": (helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[100000, 100000]), 13,
                        {"w": np.ones((4, 1, 2, 2), np.float32)}),
    }[case]
    with pytest.raises(UnsupportedOpError, match=match) as err:
        load_onnx(_one_node(tmp_path, node, opset, inits))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("alias", ["Identity", "Dropout"])
def test_a_constant_product_after_an_alias_with_two_consumers(alias, tmp_path):
    """Conv -> Identity -> (Mul by a constant, Relu): the Mul must not fold into the conv (the Relu
    reads the conv's own output)."""
    path = write_model(tmp_path / "m.onnx", f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,2,5,5] x) => (float[1,3,5,5] y)
    <float[3,2,3,3] w = {{{", ".join(["0.1", "-0.2", "0.3"] * 18)}}}, float[3,1,1] k = {{2.0, -1.0, 0.5}}> {{
     c = Conv<pads=[1,1,1,1]>(x, w)
     z = {alias}(c)
     m = Mul(z, k)
     r = Relu(z)
     y = Add(m, r)
    }}""")
    graph = load_onnx(path)
    x = np.random.default_rng(1).normal(size=(1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(graph, x), ort_run(path, x), rtol=1e-5, atol=1e-5)
