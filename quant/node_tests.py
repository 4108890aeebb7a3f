"""ONNX's own backend node tests, run through hwsim's importer and float executor.

The onnx wheel ships the generators of its node tests (onnx.backend.test.case.node); they are
collected here at run time, nothing is downloaded. A case whose graph has several inputs runs with
the first as hwsim's input and the others made constant initializers holding the case's own values
(hwsim maps single-input CNNs); axis 0 of the input and output is made the batch axis, and hwsim
runs the case one batch row at a time (an op that mixes rows must be refused, or it counts as
wrong). Every case ends as one of: pass (all outputs as expected), refused (a one-line
HwsimError), or wrong (a value, a shape, or a crash other than HwsimError).

    python -m quant.node_tests            # the per-op table (supported ops), then the totals
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from quant.errors import HwsimError
from quant.float_exec import run_float
from quant.onnx_import import load_onnx
from quant.onnx_ops import SUPPORTED_OPS


@dataclass(frozen=True)
class CaseResult:
    name: str
    op: str          # the op the case is named for: its graph's last node
    outcome: str     # "pass", "refused" or "wrong"
    detail: str = ""


def collect_cases():
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node
        return node.collect_testcases(None)


def _single_input(model: onnx.ModelProto, inputs: list[np.ndarray]) -> onnx.ModelProto:
    """The model with every graph input after the first turned into an initializer of its test value."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    extra = list(model.graph.input)[1:]
    try:
        inits = [numpy_helper.from_array(np.asarray(array), value_info.name)
                 for value_info, array in zip(extra, inputs[1:], strict=True)]
    except (ValueError, TypeError, NotImplementedError):  # sequences, exotic types: left as inputs
        return model
    for value_info, init in zip(extra, inits, strict=True):
        model.graph.initializer.append(init)
        model.graph.input.remove(value_info)
    for value_info in [*model.graph.input[:1], *model.graph.output]:  # axis 0 is the batch
        dims = value_info.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "N"
    return model


def run_case(case, folder: Path) -> CaseResult:
    op = case.model.graph.node[-1].op_type if case.model.graph.node else "?"
    inputs, outputs = case.data_sets[0]
    path = folder / f"{case.name}.onnx"
    try:
        onnx.save(_single_input(case.model, list(inputs)), str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = load_onnx(path)
    except HwsimError as err:
        return CaseResult(case.name, op, "refused", str(err))
    except Exception as err:
        return CaseResult(case.name, op, "wrong", f"import crashed: {type(err).__name__}: {err}")
    finally:
        path.unlink(missing_ok=True)
    x, want = np.asarray(inputs[0]), np.asarray(outputs[0])
    try:
        got = np.concatenate([run_float(graph, x[i:i + 1]) for i in range(len(x))])
    except Exception as err:
        return CaseResult(case.name, op, "wrong", f"run crashed: {type(err).__name__}: {err}")
    # expected values of a few generators are rounded to 4 decimals
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
        return CaseResult(case.name, op, "wrong", f"{got.shape} vs {want.shape}")
    return CaseResult(case.name, op, "pass")


def run_all(cases=None) -> list[CaseResult]:
    with tempfile.TemporaryDirectory() as folder:
        return [run_case(case, Path(folder)) for case in (cases if cases is not None else collect_cases())]


def table(results: list[CaseResult]) -> str:
    """Per supported op: cases passed / refused / wrong; then the totals over every case."""
    counts = {op: Counter() for op in SUPPORTED_OPS}
    for r in results:
        if r.op in counts:
            counts[r.op][r.outcome] += 1
    lines = ["| op | pass | refused | wrong |", "|---|---:|---:|---:|"]
    lines += [f"| {op} | {c['pass']} | {c['refused']} | {c['wrong']} |" for op, c in counts.items() if sum(c.values())]
    total = Counter(r.outcome for r in results)
    lines.append(f"\n{len(results)} node tests: {total['pass']} pass, {total['refused']} refused, "
                 f"{total['wrong']} wrong")
    return "\n".join(lines)


def main() -> int:
    results = run_all()
    print(table(results))
    wrong = [r for r in results if r.outcome == "wrong"]
    for r in wrong:
        print(f"WRONG {r.name}: {r.detail}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
