"""ONNX -> IR. The only module that parses ONNX.

load_onnx(path) reads the file (external data only from regular files inside the
model's folder), validates it as strictly as onnxruntime does (onnx.checker,
type-checked strict shape inference, supported opsets, element types, attribute
ranges), pins the batch dimension to 1, folds constant shape arithmetic with the
model's own opset, maps every node through the registry in quant.onnx_ops, prunes
nodes the graph output does not depend on, runs the graph passes (BatchNorm/Pad
folding, activation fusion), verifies the result and cross-checks every tensor
shape against ONNX's own shape inference.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from quant.errors import ModelFormatError, ShapeError, UnsupportedOpError
from quant.ir import Graph, Node, Op
from quant.onnx_ops import FOLDABLE_OPS, MAPPERS, SUPPORTED_OPS, ImportContext
from quant.passes import optimize
from quant.verify import verify

MAX_MODEL_BYTES = 2**31 - 1          # protobuf's own limit on one serialized model
MAX_CONST_ELEMENTS = 1 << 26         # a folded constant (shape arithmetic) larger than this is refused
MIN_OPSET = 7                        # the oldest default-domain opset the mappers are written for
MAX_OPSET = onnx.defs.onnx_opset_version()
ONNX_FLOAT = onnx.TensorProto.FLOAT
DECLARED_UNCHECKED = "hwsim:declared-shapes-unchecked"  # set by validate_model when inference ran without them


class PrunedWarning(UserWarning):
    """Nodes the graph output does not depend on were dropped."""


def load_onnx(path: str | Path) -> Graph:
    """Read an ONNX file into the verified, optimized IR (float parameters)."""
    model = read_model(path)
    return graph_from_model(model, name=Path(path).stem)


def read_model(path: str | Path) -> onnx.ModelProto:
    """Read and validate an ONNX file; returns the model with its inferred shapes (value_info)."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFormatError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelFormatError(f"{path}: {size:,} bytes is past protobuf's 2 GiB limit for one ONNX file")
    try:
        model = onnx.ModelProto()
        model.ParseFromString(path.read_bytes())
    except Exception as err:  # protobuf raises DecodeError, RuntimeError, ValueError ... on hostile bytes
        raise ModelFormatError(f"{path}: not a readable ONNX model ({type(err).__name__})") from None
    if not model.graph.node:
        raise ModelFormatError(f"{path}: not an ONNX model (no graph nodes; truncated or another format?)")
    _check_strings(path, model)
    _load_external_data(path, model)
    return validate_model(model, str(path))


def validate_model(model: onnx.ModelProto, label: str = "model") -> onnx.ModelProto:
    """onnx.checker, opsets, batch, then type-checked strict shape inference with the batch pinned to 1."""
    _check_opsets(label, model)
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # ValidationError, and C++ errors surfacing as other types
        raise ModelFormatError(f"{label}: fails onnx.checker: {_first_line(err)}") from None
    _check_declared_types(label, model)
    _pin_batch(label, model)
    try:
        return _infer(model)
    except Exception as err:  # InferenceError, TypeError from mistyped attributes ...
        first = err
    # onnxruntime only warns when a declared intermediate or output shape disagrees with inference (and
    # ONNX's inference sizes ceil_mode pools wrongly below opset 22): judge the model without them.
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    del stripped.graph.value_info[:]
    for value in stripped.graph.output:
        value.type.tensor_type.ClearField("shape")
    try:
        _infer(stripped)
    except Exception:
        raise ModelFormatError(f"{label}: fails ONNX shape/type inference (onnxruntime would refuse it too): "
                               f"{_first_line(first)}") from None
    entry = model.metadata_props.add()  # graph_from_model then holds the declared shapes against its own
    entry.key, entry.value = DECLARED_UNCHECKED, "1"
    return model


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines() or [type(err).__name__])[0][:300]


def _check_strings(path: Path, model: onnx.ModelProto) -> None:
    """Every name must be text: protobuf hands invalid UTF-8 back as bytes."""
    graph = model.graph
    names = [graph.name, *(n.name for n in graph.node), *(t for n in graph.node for t in (*n.input, *n.output)),
             *(n.op_type for n in graph.node), *(n.domain for n in graph.node),
             *(v.name for v in (*graph.input, *graph.output, *graph.value_info)),
             *(t.name for t in graph.initializer), *(o.domain for o in model.opset_import)]
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise ModelFormatError(f"{path}: a name is not valid UTF-8 ({bytes(bad)[:40]!r})")


def _check_opsets(label: str, model: onnx.ModelProto) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise ModelFormatError(f"{label}: imports no default ONNX opset")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelFormatError(f"{label}: opset {opset} is outside the supported {MIN_OPSET}..{MAX_OPSET}")


def _check_declared_types(label: str, model: onnx.ModelProto) -> None:
    """Every declared tensor type must be a defined element type (onnxruntime refuses UNDEFINED)."""
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type == onnx.TensorProto.UNDEFINED:
            raise ModelFormatError(f"{label}: tensor {value.name!r} has an undefined element type")


def _pin_batch(label: str, model: onnx.ModelProto) -> None:
    """Set the (dynamic or 1) batch dimension of the graph input to 1; refuse a fixed batch > 1."""
    consts = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in consts or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims:
            continue
        first = dims[0]
        if first.HasField("dim_value") and first.dim_value == 0:
            raise ShapeError(f"{label}: input {value.name!r} has a batch of 0 (an empty tensor)")
        if first.HasField("dim_value") and first.dim_value != 1:
            raise ShapeError(f"{label}: input {value.name!r} has a fixed batch of {first.dim_value}; hwsim runs "
                             "one image per inference (use --batch): export with batch 1 or a dynamic batch")
        first.Clear()
        first.dim_value = 1


def _load_external_data(path: Path, model: onnx.ModelProto) -> None:
    """Read external tensor data ourselves: only regular files inside the model's folder, within bounds."""
    folder = path.resolve().parent
    total = 0
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        where = f"{path}: initializer {tensor.name!r}"
        location = info.get("location", "")
        if not location or os.path.isabs(location) or "\\" in location or "\0" in location:
            raise ModelFormatError(f"{where}: external data location {location!r} must be a file name "
                                   "relative to the model's folder")
        target = folder / location
        try:
            resolved = target.resolve(strict=True)
        except (OSError, RuntimeError):
            raise ModelFormatError(f"{where}: external data file {location!r} not found beside the model") from None
        if folder not in resolved.parents or not resolved.is_file():
            raise ModelFormatError(f"{where}: external data {location!r} is outside the model's folder "
                                   "or not a regular file")
        try:
            offset, length = int(info.get("offset", 0)), info.get("length")
            file_size = resolved.stat().st_size
            length = file_size - offset if length is None else int(length)
        except ValueError:
            raise ModelFormatError(f"{where}: external data offset/length are not integers") from None
        if offset < 0 or length < 0 or offset + length > file_size:
            raise ModelFormatError(f"{where}: external data [{offset}, {offset + length}) is past the end of "
                                   f"{location!r} ({file_size:,} bytes)")
        total += length
        if total > MAX_MODEL_BYTES:
            raise ModelFormatError(f"{path}: external data past {MAX_MODEL_BYTES:,} bytes is not supported")
        with open(resolved, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        tensor.raw_data = data


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    consts = {}
    for t in model.graph.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t)
        except Exception as err:
            raise ModelFormatError(f"initializer {t.name!r} is inconsistent (dims {list(t.dims)} vs its data: "
                                   f"{_first_line(err)})") from None
    return consts


def _declared_dims(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """The dims of every value_info and graph output that has a shape (None where symbolic)."""
    dims = {}
    for value in (*model.graph.value_info, *model.graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            dims[value.name] = [int(d.dim_value) if d.HasField("dim_value") else None
                                for d in value.type.tensor_type.shape.dim]
    return dims


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes ONNX's shape inference found (batch pinned to 1)."""
    return {name: tuple(d) for name, d in _declared_dims(model).items() if None not in d}


def graph_from_model(model: onnx.ModelProto, name: str = "model", passes: bool = True) -> Graph:
    """Map a checked ModelProto to the IR; `passes=False` keeps it as imported (for pass tests)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = _constants(model)
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedOpError(f"model has {len(inputs)} inputs; hwsim maps single-input CNNs")
    if len(model.graph.output) != 1:
        raise UnsupportedOpError(f"model has {len(model.graph.output)} outputs; hwsim maps single-output CNNs")
    input_name, input_shape = inputs[0].name, _static_input_shape(inputs[0])
    _check_element_types(model, consts, input_name)
    _check_supported(model.graph.node, consts)
    ctx = ImportContext(consts, input_name, input_shape, opset)
    inferred = _inferred_shapes(model)
    for proto in model.graph.node:
        for tensor in proto.input:
            ctx.uses[ctx.resolve(tensor)] = ctx.uses.get(ctx.resolve(tensor), 0) + 1
    for proto in model.graph.node:
        if proto.op_type == "Constant" or _all_constant(proto, ctx):
            _fold_constant(proto, ctx, inferred)
        elif proto.op_type == "Shape":
            ctx.consts[proto.output[0]] = _shape_of(proto, ctx)
        else:
            _map(proto, ctx)
    output = ctx.resolve(model.graph.output[0].name)
    if output in ctx.views:
        raise ctx.view_error(output)
    if output == input_name or output in ctx.consts:
        raise UnsupportedOpError(f"graph output {model.graph.output[0].name!r} is the input or a constant: "
                                 "nothing to compute")
    nodes = _prune(ctx.nodes, output)
    graph = Graph(name=name, input_name=input_name, input_shape=input_shape, nodes=tuple(nodes), output=output)
    verify(graph)
    _cross_check(graph, inferred, ctx)
    if any(p.key == DECLARED_UNCHECKED for p in model.metadata_props):
        _check_declared(model, ctx)
    return optimize(graph) if passes else graph


def _map(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    """Run the node's mapper; a malformed node (missing input or attribute, wrong attribute type) is one line."""
    try:
        MAPPERS[proto.op_type](proto, ctx)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError, OverflowError) as err:
        raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): malformed inputs or attributes "
                                 f"({type(err).__name__}: {_first_line(err)})") from None


def _prune(nodes: list, output: str) -> list:
    """Keep the nodes the output depends on; warn about the rest (a graph output taken mid-network)."""
    needed, keep = {output}, []
    for node in reversed(nodes):
        if node.output in needed:
            keep.append(node)
            needed.update(node.inputs)
    keep.reverse()
    kept = {id(n) for n in keep}
    dropped = [n.name for n in nodes if id(n) not in kept]
    if dropped:
        warnings.warn(f"pruned {len(dropped)} node(s) the graph output {output!r} does not depend on: "
                      f"{', '.join(map(repr, dropped[:6]))}{' ...' if len(dropped) > 6 else ''}",
                      PrunedWarning, stacklevel=3)
    return keep


def _cross_check(graph: Graph, inferred: dict[str, tuple[int, ...]], ctx: ImportContext) -> None:
    """Every IR tensor named like an ONNX tensor must have the shape ONNX's inference gives it (but for
    tensors downstream of a ceil_mode pool that inference sizes wrongly: see _onnx_keeps_pad_window)."""
    unchecked: set[str] = set()
    for node in graph.nodes:
        want = inferred.get(node.output)
        if unchecked.intersection(node.inputs) or (want is not None and _onnx_keeps_pad_window(node, want)):
            unchecked.add(node.output)
        elif want is not None and tuple(want) != tuple(node.out_shape):
            raise ShapeError(f"node {node.name!r} ({node.op.value}): hwsim computes output shape "
                             f"{node.out_shape}, ONNX shape inference {want}; refusing to give wrong numbers")


def _check_declared(model: onnx.ModelProto, ctx: ImportContext) -> None:
    """A shape the model declares for a tensor (value_info, outputs) must be the shape it has: onnxruntime
    folds Shape and checks broadcasts from declared shapes, so a wrong one changes or breaks its run."""
    for declared, dims in _declared_dims(model).items():
        name = ctx.resolve(declared)
        actual = ctx.consts[name].shape if name in ctx.consts else ctx.shapes.get(name)
        if actual is None:
            continue
        expected = list(actual) if name in ctx.consts else [None, *actual[1:]]  # the batch dim is pinned to 1
        if len(dims) != len(expected) or any(d is not None and e is not None and d != e
                                             for d, e in zip(dims, expected, strict=True)):
            raise ShapeError(f"tensor {declared!r}: the model declares shape "
                             f"{['?' if d is None else d for d in dims]}, it has {list(actual)} "
                             "(onnxruntime would compute with the declared one)")


def _onnx_keeps_pad_window(node: Node, want: tuple[int, ...]) -> bool:
    """ONNX's shape inference keeps a ceil_mode pool's last window even when it starts in the end pad;
    onnxruntime, PyTorch and onnx.reference drop it (node test *_ceil_output_size_reduce_by_one)."""
    if node.op not in (Op.MAXPOOL, Op.AVGPOOL) or not node.attrs.ceil_mode or tuple(want) == node.out_shape:
        return False
    a = node.attrs
    kept = (-(-(n + pb + pe - f) // s) + 1 for n, f, s, pb, pe in
            zip(node.in_shape[2:], a.kernel, a.stride, a.pads[:2], a.pads[2:], strict=True))
    return tuple(want) == (*node.out_shape[:2], *kept)


def _shape_of(proto: onnx.NodeProto, ctx: ImportContext) -> np.ndarray:
    shape = np.array(ctx.shape(proto, proto.input[0]), dtype=np.int64)
    attrs = {a.name: a.i for a in proto.attribute}
    rank = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    return shape[slice(max(min(start, rank), -rank), max(min(end, rank), -rank))]


def _static_input_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    if not value.type.HasField("tensor_type"):
        raise ShapeError(f"input {value.name!r} is not a tensor")
    dims = value.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not shape:
        raise ShapeError(f"input {value.name!r} has no shape; export the model with a fixed input size")
    if any(d is None or d <= 0 for d in shape[1:]):
        text = "x".join(d.dim_param or "?" if not d.HasField("dim_value") else str(d.dim_value) for d in dims)
        raise ShapeError(f"input {value.name!r} has dynamic dimensions [{text}]: only the batch dimension may be "
                         "dynamic; export the model with a fixed input size")
    return (1, *shape[1:])


def _check_element_types(model: onnx.ModelProto, consts: dict[str, np.ndarray], input_name: str) -> None:
    """hwsim reads float32 models: a float32 input, float32 weights (integer constants for shapes)."""
    value = next(v for v in model.graph.input if v.name == input_name)
    elem = value.type.tensor_type.elem_type
    if elem != ONNX_FLOAT:
        raise UnsupportedOpError(f"input {input_name!r} is {_type_name(elem)}; hwsim reads float32 models")
    for name, array in consts.items():
        if array.dtype.kind not in "fiub" or (array.dtype.kind == "f" and array.dtype != np.float32):
            raise UnsupportedOpError(f"initializer {name!r} is {array.dtype}; hwsim reads float32 weights and "
                                     "integer shape constants")


def _type_name(elem: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem).lower()
    except ValueError:
        return f"element type {elem}"


def _check_supported(protos, consts: dict) -> None:
    """List every node hwsim cannot map, at once: ops it does not know, and shape-arithmetic ops
    (Mul, Concat, Transpose ...) that a Shape/Unsqueeze chain hides but which act on activations."""
    constant = set(consts)
    bad: dict[str, list[str]] = {}  # op (and why) -> node names, every op listed
    for p in protos:
        inputs = [t for t in p.input if t]
        if p.domain not in ("", "ai.onnx"):
            bad.setdefault(f"{p.domain}.{p.op_type}", []).append(p.name or "?")
        elif p.op_type == "Constant" or p.op_type == "Shape" or (
                p.op_type in FOLDABLE_OPS and inputs and all(t in constant for t in inputs)):
            constant.update(p.output)
        elif p.op_type not in MAPPERS:
            why = " on activations" if p.op_type in FOLDABLE_OPS else ""
            bad.setdefault(p.op_type + why, []).append(p.name or "?")
    if bad:
        count = sum(map(len, bad.values()))
        ops = ", ".join(f"{op} ({', '.join(map(repr, names[:3]))}"
                        f"{f' and {len(names) - 3} more' if len(names) > 3 else ''})" for op, names in bad.items())
        raise UnsupportedOpError(f"{count} unsupported node(s) of {len(bad)} op type(s): {ops}; "
                                 f"supported: {', '.join(SUPPORTED_OPS)}")


def _all_constant(proto: onnx.NodeProto, ctx: ImportContext) -> bool:
    inputs = [t for t in proto.input if t]
    return proto.op_type in FOLDABLE_OPS and all(t in ctx.consts for t in inputs) and bool(inputs)


def _fold_size(proto: onnx.NodeProto, feeds: dict[str, np.ndarray], inferred: dict) -> float:
    """Elements a folded node would produce, computed before evaluating it (never allocate first)."""
    if proto.output and proto.output[0] in inferred:
        return float(math.prod(inferred[proto.output[0]]))
    ins = [feeds.get(t) for t in proto.input]
    try:
        if proto.op_type == "ConstantOfShape":
            return float(np.prod(ins[0].astype(np.float64)))
        if proto.op_type == "Expand":
            return float(math.prod(np.broadcast_shapes(ins[0].shape, tuple(int(d) for d in ins[1]))))
        if proto.op_type == "Tile":
            return float(ins[0].size * np.prod(ins[1].astype(np.float64)))
        if proto.op_type == "Range":
            start, limit, delta = (float(v) for v in ins[:3])
            return math.inf if delta == 0 or not math.isfinite((limit - start) / delta) else \
                max(0.0, math.ceil((limit - start) / delta))
    except (TypeError, ValueError, IndexError, AttributeError, OverflowError):
        return math.inf
    return float(max((v.size for v in ins if v is not None), default=1))


def _one_node_model(proto: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    """The node alone in a model of the source model's opset (a bare NodeProto evaluates at the newest)."""
    inputs = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), None)
              for name, value in feeds.items()]
    outputs = [onnx.helper.make_empty_tensor_value_info(name) for name in proto.output if name]
    graph = onnx.helper.make_graph([proto], "fold", inputs, outputs)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def _fold_constant(proto: onnx.NodeProto, ctx: ImportContext, inferred: dict) -> None:
    feeds = {t: ctx.consts[t] for t in proto.input if t}
    size = _fold_size(proto, feeds, inferred)
    if not size <= MAX_CONST_ELEMENTS:
        raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): its constant output would hold "
                                 f"{size:.3g} values (limit {MAX_CONST_ELEMENTS:,})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = ReferenceEvaluator(_one_node_model(proto, feeds, ctx.opset)).run(None, feeds)
    except Exception as err:
        raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): cannot evaluate constant "
                                 f"subgraph ({_first_line(err)})") from None
    for out, value in zip(proto.output, results, strict=False):
        value = np.asarray(value)
        if value.size > MAX_CONST_ELEMENTS:
            raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): constant of {value.size:,} "
                                     "values is too large")
        ctx.consts[out] = value
