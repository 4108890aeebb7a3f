"""Seeded mutators for ONNX models, saved .npz graphs, calibration arrays and TOML configs.

Each mutator takes a numpy Generator and returns bytes (or a ModelProto serialized to bytes):
truncation, byte flips, and structure-aware protobuf mutations of dims, element types,
attributes, initializers, graph wiring and opsets."""
from __future__ import annotations

import copy
import io
import zipfile

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

EXTREME_INTS = [0, -1, -2, 1, 2, 3, 7, 1 << 20, 1 << 31, (1 << 62), -(1 << 40)]
ELEM_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32,
              TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL, TensorProto.STRING, 0, 99]


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[:int(rng.integers(0, max(len(data), 1)))]


def flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        if buf:
            i = int(rng.integers(len(buf)))
            buf[i] = int(rng.integers(256))
    return bytes(buf)


def _pick(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))] if items else None


def _mut_dims(m: onnx.ModelProto, rng) -> None:
    targets = [*m.graph.initializer]
    values = [*m.graph.input, *m.graph.output, *m.graph.value_info]
    if rng.random() < 0.5 and targets:
        t = _pick(rng, targets)
        dims = list(t.dims)
        choice = rng.integers(4)
        if choice == 0 and dims:
            dims[int(rng.integers(len(dims)))] = _pick(rng, EXTREME_INTS)
        elif choice == 1:
            dims.append(int(rng.integers(1, 4)))
        elif choice == 2 and dims:
            dims.pop()
        else:
            dims = dims[::-1]
        del t.dims[:]
        t.dims.extend(dims)
    else:
        v = _pick(rng, values)
        if v is None or not v.type.HasField("tensor_type"):
            return
        dims = v.type.tensor_type.shape.dim
        if len(dims) and rng.random() < 0.8:
            d = dims[int(rng.integers(len(dims)))]
            if rng.random() < 0.2:
                d.dim_param = "H"
            else:
                d.dim_value = max(0, _pick(rng, [*EXTREME_INTS, 1 << 17, 100000]))
        else:
            dims.add().dim_value = int(rng.integers(1, 5))


def _mut_dtype(m: onnx.ModelProto, rng) -> None:
    if rng.random() < 0.5 and m.graph.initializer:
        _pick(rng, m.graph.initializer).data_type = _pick(rng, ELEM_TYPES)
    else:
        v = _pick(rng, [*m.graph.input, *m.graph.output])
        v.type.tensor_type.elem_type = _pick(rng, ELEM_TYPES)


def _mut_attribute(m: onnx.ModelProto, rng) -> None:
    node = _pick(rng, m.graph.node)
    if not node.attribute or rng.random() < 0.15:
        name = _pick(rng, ["strides", "pads", "kernel_shape", "group", "dilations", "axis", "ceil_mode",
                           "count_include_pad", "auto_pad", "transB", "allowzero", "epsilon", "bogus"])
        node.attribute.append(onnx.helper.make_attribute(name, _pick(rng, [0, 1, 2, -1, [1, 1], [0, 0, 0, 0],
                                                                        [2, 2, 2], "SAME_UPPER", 1.5])))
        return
    a = _pick(rng, node.attribute)
    r = rng.random()
    if r < 0.1:
        node.attribute.remove(a)
    elif a.type == AttributeProto.INTS and a.ints:
        if rng.random() < 0.3:
            a.ints.append(_pick(rng, EXTREME_INTS))
        else:
            a.ints[int(rng.integers(len(a.ints)))] = _pick(rng, EXTREME_INTS)
    elif a.type == AttributeProto.INT:
        a.i = _pick(rng, EXTREME_INTS)
    elif a.type == AttributeProto.FLOAT:
        a.f = _pick(rng, [0.0, -1.0, float("nan"), float("inf"), 1e30])
    elif a.type == AttributeProto.STRING:
        a.s = _pick(rng, [b"SAME_LOWER", b"VALID", b"reflect", b"", b"\xff\xfe"])
    else:
        a.type = _pick(rng, [AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS])


def _mut_initializer(m: onnx.ModelProto, rng) -> None:
    inits = m.graph.initializer
    if not inits:
        return
    t = _pick(rng, inits)
    r = rng.random()
    if r < 0.25:
        inits.remove(t)
    elif r < 0.45 and t.raw_data:
        t.raw_data = t.raw_data[: int(rng.integers(len(t.raw_data)))]
    elif r < 0.6:
        inits.add().CopyFrom(t)  # duplicate name
    elif r < 0.8:
        try:
            arr = onnx.numpy_helper.to_array(t).copy()
        except Exception:  # already broken by an earlier mutation of this mutant
            return
        if arr.dtype.kind == "f" and arr.size:
            arr.reshape(-1)[int(rng.integers(arr.size))] = _pick(rng, [np.nan, np.inf, 1e38, -1e38, 0.0, 1e-38])
        elif arr.size:
            arr.reshape(-1)[int(rng.integers(arr.size))] = _pick(rng, EXTREME_INTS)
        t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    else:
        t.name = _pick(rng, [n for node in m.graph.node for n in node.input] or ["x"])


def _mut_wiring(m: onnx.ModelProto, rng) -> None:
    nodes = m.graph.node
    names = ["x", *[o for nd in nodes for o in nd.output], *[t.name for t in m.graph.initializer], "ghost"]
    r = rng.random()
    node = _pick(rng, nodes)
    if r < 0.3 and node.input:
        node.input[int(rng.integers(len(node.input)))] = _pick(rng, names)
    elif r < 0.45 and node.output:
        node.output[0] = _pick(rng, names)
    elif r < 0.6 and len(nodes) > 1:
        i, j = (int(v) for v in rng.choice(len(nodes), 2, replace=False))
        a, b = copy.deepcopy(nodes[i]), copy.deepcopy(nodes[j])
        nodes[i].CopyFrom(b)
        nodes[j].CopyFrom(a)
    elif r < 0.75 and len(nodes) > 1:
        nodes.remove(node)
    elif r < 0.85:
        m.graph.output[0].name = _pick(rng, names)
    elif r < 0.93:
        node.input.append(_pick(rng, names))
    else:
        node.op_type = _pick(rng, ["Relu", "Conv", "MaxPool", "Gemm", "Add", "Mul", "Identity", "Softmax",
                                   "Flatten", "Tanh", "Transpose", "Concat", "NoSuchOp"])


def _mut_opset(m: onnx.ModelProto, rng) -> None:
    r = rng.random()
    if r < 0.6:
        m.opset_import[0].version = _pick(rng, [1, 6, 7, 9, 10, 11, 12, 13, 15, 18, 21, 28, 29, 99, 1 << 31])
    elif r < 0.75:
        m.opset_import.add().CopyFrom(onnx.helper.make_opsetid("com.microsoft", 1))
        _pick(rng, m.graph.node).domain = "com.microsoft"
    elif r < 0.9:
        m.ir_version = _pick(rng, [0, 1, 3, 7, 8, 10, 11, 99])
    else:
        _pick(rng, m.graph.node).domain = "ai.evil"


PROTO_MUTATORS = (_mut_dims, _mut_dtype, _mut_attribute, _mut_initializer, _mut_wiring, _mut_opset)


def mutate_model(model: onnx.ModelProto, rng: np.random.Generator) -> bytes:
    """One ONNX mutant: 15 % truncated, 15 % byte-flipped, else one (70 %) to three structured protobuf mutations."""
    r = rng.random()
    if r < 0.15:
        return truncate(model.SerializeToString(), rng)
    if r < 0.3:
        return flip_bytes(model.SerializeToString(), rng)
    m = copy.deepcopy(model)
    for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):
        PROTO_MUTATORS[int(rng.integers(len(PROTO_MUTATORS)))](m, rng)
    try:
        return m.SerializeToString()
    except Exception:  # an unserializable mutation (e.g. out-of-range enum) is not a mutant
        return model.SerializeToString()


def mutate_npz(data: bytes, rng: np.random.Generator) -> bytes:
    """A mutated .npz: raw damage, or a member array replaced by a tampered/odd one, or the JSON doc edited."""
    r = rng.random()
    if r < 0.2:
        return truncate(data, rng)
    if r < 0.35:
        return flip_bytes(data, rng)
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        members = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    name = _pick(rng, sorted(members))
    if name == "__doc__.npy" or rng.random() < 0.2:
        doc = str(np.load(io.BytesIO(members["__doc__.npy"])))
        edits = [("\"m0\"", "\"m1\""), ("Conv", "Dense"), ("[", "[[", ), ("hwsim-ir/1", "hwsim-ir/2"),
                 ("\"__type__\": \"Node\"", "\"__type__\": \"os.system\""), ("\"zero_point\": ", "\"zero_point\": 9")]
        old, new = _pick(rng, edits)
        buf = io.BytesIO()
        np.save(buf, np.array(doc.replace(old, new, 1)))
        members["__doc__.npy"] = buf.getvalue()
    else:
        arr = np.load(io.BytesIO(members[name]), allow_pickle=False)
        choice = rng.integers(5)
        value = _pick(rng, [127, -128, 2**31 - 1, -(2**31), 0, 99])
        if choice == 0 and arr.size and arr.dtype.kind in "iuf" and np.can_cast(np.min_scalar_type(value), arr.dtype):
            arr = arr.copy()
            arr.reshape(-1)[int(rng.integers(arr.size))] = value
        elif choice <= 1 and arr.dtype.kind in "iuf":
            with np.errstate(all="ignore"):
                arr = arr.astype(_pick(rng, [np.float64, np.int64, np.uint8, np.float16]))
        elif choice == 2:
            arr = arr.reshape(-1)[: max(arr.size - 1, 0)]
        elif choice == 3:
            arr = np.zeros((3, 3), np.float32)
        else:
            arr = np.array(["text"])
        buf = io.BytesIO()
        np.save(buf, arr)
        members[name] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for k, v in members.items():
            zout.writestr(k, v)
    return out.getvalue()


def mutate_array(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[str, bytes]:
    """A hostile calibration array: (suffix, bytes)."""
    x = rng.random((4, *shape[1:]), dtype=np.float32)
    r = int(rng.integers(8))
    buf = io.BytesIO()
    if r == 0:
        x.reshape(-1)[0] = np.nan
    elif r == 1:
        x.reshape(-1)[-1] = np.inf
    elif r == 2:
        x = (x * 255).astype(np.uint8)
    elif r == 3:
        x = x[..., :-1]
    elif r == 4:
        x = np.array(["a", "b"])
    elif r == 5:
        np.savez(buf)  # no arrays at all
        return ".npz", buf.getvalue()
    elif r == 6:
        np.save(buf, x)
        return ".npy", truncate(buf.getvalue(), rng)
    else:
        x = x.astype(np.complex64)
    np.save(buf, x)
    return ".npy", buf.getvalue()


TOML_EDITS = ["rows = 0", "rows = 1e17", "rows = -3", "rows = true", "rows = \"8\"", "cols = 99999999999",
              "dataflow = \"xs\"", "dataflow = 5", "clock_mhz = 1e-300", "clock_mhz = inf", "clock_mhz = nan",
              "dram_bytes_per_cycle = 0", "acc_bits = 16", "acc_bits = 1000", "vector_lanes = 0",
              "preset = [1]", "preset = \"nope\"", "accelerator = 5", "[accelerator]\nrows = 4", "bogus = 1",
              "ifmap_sram_kib = -1", "ifmap_sram_kib = 1e30", "name = \"\\u001b[31mred\"", "rows = [8, 8]",
              "= broken", "[[accelerator]]", "rows = 8\nrows = 9", "\x00", "cols = 4.5"]


def mutate_toml(base: str, rng: np.random.Generator) -> bytes:
    lines = base.splitlines()
    r = rng.random()
    if r < 0.1:
        return flip_bytes(base.encode(), rng)
    for _ in range(int(rng.integers(1, 3))):
        lines.insert(int(rng.integers(len(lines) + 1)), _pick(rng, TOML_EDITS))
    return "\n".join(lines).encode()
