"""The integer executor is integer-only (the README's numbers contract): after the input is quantized
every value it computes is an exact integer and nothing is rounded from a non-integer.

The check does not trust output dtypes (the executor casts them). Every array the
executor computes is an `Exact` ndarray whose ufuncs, numpy functions and casts check
their operands and results: integer dtypes pass; a float value passes only if it is an
integer small enough to be exact (|v| <= 2^24 in float32, 2^53 in float64); a float
GEMM (BLAS as an arithmetic device) passes only if K * max|a| * max|b| stays inside that
bound; a cast must keep every value. The `np` of the executor's modules is wrapped so
that arrays made by np.asarray & co. stay `Exact`. Mutation tests show the check fails
when a float multiply-and-round or a float division is put into the executor.
"""
from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest

import quant.fixedpoint
import quant.int_exec
import quant.kernels
from quant.errors import IRError
from quant.int_exec import quantize_input, run_int
from quant.ir import Op

FLOAT_EXACT = {np.dtype(np.float16): 1 << 11, np.dtype(np.float32): 1 << 24, np.dtype(np.float64): 1 << 53}
RNG = np.random.default_rng(7)


class NotExact(AssertionError):
    pass


def _check(value: object, what: str) -> None:
    """Raise NotExact unless `value` holds only exact integers."""
    if isinstance(value, bool | int | np.bool_ | np.integer):
        return
    if isinstance(value, list | tuple):
        for v in value:
            _check(v, what)
        return
    if isinstance(value, float | np.floating):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return  # dtypes, slices, shapes, strings, None
    arr = value.view(np.ndarray)
    if arr.dtype.kind in "biu":
        return
    if arr.dtype not in FLOAT_EXACT:
        raise NotExact(f"{what}: {arr.dtype} values")
    if arr.size and not (np.all(np.isfinite(arr)) and np.all(arr == np.trunc(arr))):
        raise NotExact(f"{what}: non-integer {arr.dtype} value {arr[arr != np.trunc(arr)].flat[0]!r}")
    if arr.size and np.abs(arr).max() > FLOAT_EXACT[arr.dtype]:
        raise NotExact(f"{what}: {arr.dtype} value {np.abs(arr).max()!r} is past the exact-integer bound")


def _plain(x: object) -> object:
    if isinstance(x, Exact):
        return x.view(np.ndarray)
    if isinstance(x, list | tuple):
        return type(x)(_plain(v) for v in x)
    return x


def _exact(x: object) -> object:
    if isinstance(x, np.ndarray) and not isinstance(x, Exact):
        return x.view(Exact)
    if isinstance(x, tuple):
        return tuple(_exact(v) for v in x)
    return x


def _check_float_gemm(name: str, operands: list, k: int) -> None:
    floats = [np.asarray(o) for o in operands if np.asarray(o).dtype.kind == "f"]
    if not floats:
        return
    bound = min(FLOAT_EXACT[f.dtype] for f in floats)
    a, b = (float(np.abs(np.asarray(o)).max(initial=0)) for o in operands[:2])
    if k * a * b > bound:
        raise NotExact(f"{name}: float GEMM of K={k} with |a| <= {a:g}, |b| <= {b:g} is not exact")


def _einsum_k(subscripts: str, operands: list) -> int:
    ins, out = subscripts.replace(" ", "").split("->")
    sizes = {c: d for spec, op in zip(ins.split(","), operands, strict=True) for c, d in zip(spec, np.shape(op),
                                                                                           strict=True)}
    return math.prod(sizes[c] for c in set(ins) - set(out) - {","})


class Exact(np.ndarray):
    """An ndarray whose every operation checks that it stays in exact integers."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        args = [_plain(x) for x in inputs]
        _check(args, f"{ufunc.__name__} operand")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        if ufunc is np.matmul and method == "__call__":
            _check_float_gemm("matmul", args, np.shape(args[0])[-1])
        result = getattr(ufunc, method)(*args, **kwargs)
        _check(result, f"{ufunc.__name__} result")
        return out[0] if out is not None and len(out) == 1 else _exact(result)

    def __array_function__(self, func, types_, args, kwargs):
        plain_args, plain_kwargs = _plain(args), {k: _plain(v) for k, v in kwargs.items()}
        _check(list(plain_args) + list(plain_kwargs.values()), f"{func.__name__} operand")
        if func is np.einsum:
            _check_float_gemm("einsum", list(plain_args[1:]), _einsum_k(plain_args[0], list(plain_args[1:])))
        elif func in (np.dot, np.tensordot, np.inner, np.vdot, np.kron):
            if any(np.asarray(a).dtype.kind == "f" for a in plain_args[:2]):
                raise NotExact(f"{func.__name__} on floats: use matmul/einsum, whose exactness is checked")
        result = func(*plain_args, **plain_kwargs)
        _check(result, f"{func.__name__} result")
        return _exact(result)

    def astype(self, dtype, *args, **kwargs):
        base = self.view(np.ndarray)
        _check(base, "astype operand")
        result = base.astype(dtype, *args, **kwargs)
        _check(result, "astype result")
        if result.shape == base.shape and not np.array_equal(result, base):
            raise NotExact(f"astype({np.dtype(dtype)}) changed a value (wrapped or rounded)")
        return result.view(Exact)


def _exact_numpy() -> types.SimpleNamespace:
    """numpy whose functions check operands and results and return Exact arrays."""

    def wrap(fn):
        def checked(*args, **kwargs):
            _check([*args, *kwargs.values()], f"np.{fn.__name__} operand")
            result = fn(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})
            _check(result, f"np.{fn.__name__} result")
            if fn in (np.asarray, np.array, np.asanyarray) and isinstance(result, np.ndarray) and \
                    np.shape(args[0]) == result.shape and not np.array_equal(result, _plain(args[0])):
                raise NotExact(f"np.{fn.__name__} to {result.dtype} changed a value")
            return _exact(result)
        return checked

    class ExactNumpy(types.SimpleNamespace):
        def __getattr__(self, name):
            attr = getattr(np, name)
            return wrap(attr) if callable(attr) and not isinstance(attr, type) else attr

    return ExactNumpy()


@pytest.fixture
def exact(monkeypatch):
    """run(graph, x_q): the integer executor with every computed value checked."""
    def run(graph, x_q):
        with monkeypatch.context() as m:
            for module in (quant.int_exec, quant.fixedpoint, quant.kernels):
                m.setattr(module, "np", _exact_numpy())
            return run_int(_exact_graph(graph), np.asarray(x_q).view(Exact), intermediate=True)
    return run


def _exact_graph(graph):
    """The graph with every integer parameter an Exact array, so that values taken from them
    (table look-ups, weights) stay checked too."""
    def exact_fields(obj):
        changes = {f.name: _exact(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if isinstance(getattr(obj, f.name), np.ndarray)}
        return dataclasses.replace(obj, **changes)

    nodes = []
    for node in graph.nodes:
        q = exact_fields(node.quant)
        if q.requant is not None:
            q = dataclasses.replace(q, requant=exact_fields(q.requant))
        q = dataclasses.replace(q, input_requants=tuple(exact_fields(r) for r in q.input_requants))
        nodes.append(dataclasses.replace(node, quant=q))
    return dataclasses.replace(graph, nodes=tuple(nodes))


def _small_cnn_q(tmp_path):
    import torch

    from quant.calibrate import collect_ranges
    from quant.onnx_import import load_onnx
    from quant.quantize import quantize
    from tests.helpers import small_cnn
    path = tmp_path / "small_cnn.onnx"
    torch.onnx.export(small_cnn(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17)
    graph = load_onnx(path)
    return quantize(graph, collect_ranges(graph, RNG.random((32, 3, 16, 16), dtype=np.float32)))


@pytest.mark.parametrize("model", ["lenet", "small_cnn", "every_op"])
def test_integer_executor_is_integer_only(model, exact, lenet_q, every_op_q, tmp_path):
    graph = lenet_q if model == "lenet" else every_op_q if model == "every_op" else _small_cnn_q(tmp_path)
    x = quantize_input(RNG.random((4, *graph.input_shape[1:])), graph.input_quant)
    expected = run_int(graph, x, intermediate=True)
    checked = exact(graph, x)
    assert checked.keys() == expected.keys()
    for name, t in checked.items():
        assert isinstance(t, Exact) or name == graph.input_name, name  # the check followed every tensor
        assert t.dtype == np.int8 and np.array_equal(t.view(np.ndarray), expected[name]), name
    if model == "every_op":
        assert {n.op for n in graph.nodes} == set(Op)


def test_float_input_is_refused(lenet_q):
    x = quantize_input(RNG.random((1, 1, 28, 28)), lenet_q.input_quant)
    with pytest.raises(IRError, match="integer executor got a float"):
        run_int(lenet_q, x.astype(np.float32))


# --- the check fails when the executor stops being integer-only ----------------------------------

def _float_requant(acc, plan):
    real = np.asarray(plan.m0) / 2.0 ** 31 * 2.0 ** -np.asarray(plan.shift)
    return np.clip(np.round(acc * real) + plan.zero_point, plan.qmin, plan.qmax).astype(np.int64)


def _float_avgpool(self, node, x):
    a = node.attrs
    mean = quant.kernels.windows(quant.kernels.pad_hw(x - node.quant.in_zero_points[0], a.pads, 0), a.kernel,
                                 a.stride).mean(axis=(-1, -2))
    return np.clip(np.floor(mean + 0.5) + node.quant.out.zero_point, -128, 127).astype(np.int64)


def _float_gemm(self, node, x):
    acc = x.astype(np.float32) @ (node.quant.weight.astype(np.float32) * 300).T  # products past 2^24 / K
    return np.clip(acc, -128, 127).astype(np.int64)


def _float_lut_index(self, node, x):
    idx = (x + 128) * 2.0 / 2  # an index computed through floats that stay exact integers: allowed
    return node.quant.lut.astype(np.int64)[idx.astype(np.int64)]


MUTATIONS = {  # (object in quant.int_exec, attribute, replacement, expected complaint)
    "float requantize": (None, "requantize_planned", _float_requant, "non-integer"),
    "float average": ("AvgPoolKernel", "_run", _float_avgpool, "non-integer"),
    "inexact float GEMM": ("DenseKernel", "_run", _float_gemm, "float GEMM"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_check_catches_float_arithmetic(mutation, exact, every_op_q, monkeypatch):
    cls, attr, replacement, match = MUTATIONS[mutation]
    monkeypatch.setattr(getattr(quant.int_exec, cls) if cls else quant.int_exec, attr, replacement)
    x = quantize_input(RNG.random((2, 3, 12, 12)), every_op_q.input_quant)
    with pytest.raises(NotExact, match=match):
        exact(every_op_q, x)


def test_exact_float_arithmetic_is_allowed(exact, every_op_q, monkeypatch):
    table_run = quant.int_exec.ActivationKernel._run
    monkeypatch.setattr(quant.int_exec.ActivationKernel, "_run", lambda self, node, x: (
        _float_lut_index(self, node, x) if node.attrs.kind.value in ("tanh", "sigmoid") else table_run(self, node, x)))
    x = quantize_input(RNG.random((2, 3, 12, 12)), every_op_q.input_quant)
    assert np.array_equal(exact(every_op_q, x)[every_op_q.output], run_int(every_op_q, x))
