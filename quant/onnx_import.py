"""ONNX -> IR. The only module that parses ONNX.

load_onnx(path) reads the file, runs onnx.checker, pins the batch dimension to
1, folds constant shape arithmetic, maps every node through the registry in
quant.onnx_ops, runs the graph passes (BatchNorm/Pad folding, activation
fusion) and verifies the result.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from quant.errors import ModelFormatError, ShapeError, UnsupportedOpError
from quant.ir import Graph
from quant.onnx_ops import FOLDABLE_OPS, MAPPERS, SUPPORTED_OPS, ImportContext
from quant.passes import optimize
from quant.verify import verify


def load_onnx(path: str | Path) -> Graph:
    """Read an ONNX file into the verified, optimized IR (float parameters)."""
    model = read_model(path)
    return graph_from_model(model, name=Path(path).stem)


def read_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as err:
        raise ModelFormatError(f"{path}: not a readable ONNX model ({type(err).__name__})") from None
    if not model.graph.node:
        raise ModelFormatError(f"{path}: not an ONNX model (no graph nodes; truncated or another format?)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0]
        raise ModelFormatError(f"{path}: fails onnx.checker: {first}") from None
    return model


def graph_from_model(model: onnx.ModelProto, name: str = "model", passes: bool = True) -> Graph:
    """Map a checked ModelProto to the IR; `passes=False` keeps it as imported (for pass tests)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedOpError(f"model has {len(inputs)} inputs; hwsim maps single-input CNNs")
    input_name, input_shape = inputs[0].name, _static_input_shape(inputs[0])
    _check_supported(model.graph.node, consts)
    ctx = ImportContext(consts, input_name, input_shape, opset)
    for proto in model.graph.node:
        for tensor in proto.input:
            ctx.uses[ctx.resolve(tensor)] = ctx.uses.get(ctx.resolve(tensor), 0) + 1
    for proto in model.graph.node:
        if proto.op_type == "Constant" or _all_constant(proto, ctx):
            _fold_constant(proto, ctx)
        elif proto.op_type == "Shape":
            ctx.consts[proto.output[0]] = np.array(ctx.shape(proto, proto.input[0]), dtype=np.int64)
        elif proto.op_type in MAPPERS:
            MAPPERS[proto.op_type](proto, ctx)
        else:
            raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): supported only on constants "
                                     "(shape arithmetic), not on activations")
    if len(model.graph.output) != 1:
        raise UnsupportedOpError(f"model has {len(model.graph.output)} outputs; hwsim maps single-output CNNs")
    output = ctx.resolve(model.graph.output[0].name)
    graph = Graph(name=name, input_name=input_name, input_shape=input_shape, nodes=tuple(ctx.nodes), output=output)
    return optimize(verify(graph)) if passes else verify(graph)


def _static_input_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not shape:
        raise ShapeError(f"input {value.name!r} has no shape; export the model with a fixed input size")
    if any(d is None or d <= 0 for d in shape[1:]):
        text = "x".join(d.dim_param or "?" if not d.HasField("dim_value") else str(d.dim_value) for d in dims)
        raise ShapeError(f"input {value.name!r} has dynamic dimensions [{text}]: only the batch dimension may be "
                         "dynamic; export the model with a fixed input size")
    return (1, *shape[1:])


def _check_supported(protos: list[onnx.NodeProto], consts: dict) -> None:
    """Collect every unsupported op before raising, listing the supported ones."""
    bad = [f"{p.name or '?'} ({p.op_type})" for p in protos
           if p.domain not in ("", "ai.onnx") or
           (p.op_type not in MAPPERS and p.op_type not in FOLDABLE_OPS and p.op_type != "Constant")]
    if bad:
        raise UnsupportedOpError(f"unsupported op(s) at node(s) {', '.join(bad[:8])}"
                                 f"{' ...' if len(bad) > 8 else ''}; supported: {', '.join(SUPPORTED_OPS)}")


def _all_constant(proto: onnx.NodeProto, ctx: ImportContext) -> bool:
    inputs = [t for t in proto.input if t]
    return proto.op_type in FOLDABLE_OPS and all(t in ctx.consts for t in inputs) and bool(inputs)


def _fold_constant(proto: onnx.NodeProto, ctx: ImportContext) -> None:
    feeds = {t: ctx.consts[t] for t in proto.input if t}
    try:
        results = ReferenceEvaluator(proto).run(None, feeds)
    except Exception as err:
        raise UnsupportedOpError(f"node {ctx.name_of(proto)!r} ({proto.op_type}): cannot evaluate constant "
                                 f"subgraph ({err})") from None
    for out, value in zip(proto.output, results, strict=False):
        ctx.consts[out] = np.asarray(value)
