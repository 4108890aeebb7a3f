"""Fuzzing: mutated ONNX models, saved graphs, calibration arrays and TOML configs through
`hwsim summary`, `quantize` and `map`, in-process in a worker with a per-file time limit and a
memory cap. Every run must end with exit 0/1 or a one-line error (exit 2): no traceback, no
hang, no allocation past the cap; an ONNX mutant hwsim accepts must run in onnxruntime and give
the same float output. HWSIM_FUZZ_ONNX / HWSIM_FUZZ_OTHER (.npz and TOML, half each) /
HWSIM_FUZZ_CALIB / HWSIM_FUZZ_SEED change the counts and the seed (CI runs the defaults)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.conftest import LENET
from tests.fuzz.harness import Findings, Worker, check
from tests.fuzz.mutate import mutate_array, mutate_model, mutate_npz, mutate_toml
from tests.fuzz.seeds import calib_inputs, seed_models

ONNX_MUTANTS = int(os.environ.get("HWSIM_FUZZ_ONNX", "300"))
OTHER_MUTANTS = int(os.environ.get("HWSIM_FUZZ_OTHER", "100"))
CALIB_MUTANTS = int(os.environ.get("HWSIM_FUZZ_CALIB", "40"))
SEED = int(os.environ.get("HWSIM_FUZZ_SEED", "0"))
BASE_TOML = 'preset = "edge8"\nrows = 8\ncols = 8\ndataflow = "ws"\nclock_mhz = 200.0\n'


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, tuple[onnx.ModelProto, Path, Path]]:
    """name -> (model, model file, calibration .npy)."""
    folder = tmp_path_factory.mktemp("fuzz_seeds")
    models = {**seed_models(SEED), "lenet": onnx.load(str(LENET))}
    out = {}
    for name, model in models.items():
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        np.save(folder / f"{name}_calib.npy", calib_inputs(model))
        out[name] = (model, path, folder / f"{name}_calib.npy")
    return out


def _report(kind: str, findings: Findings) -> None:
    oracle = (f"{findings.refused} refused, {findings.accepted_equal} accepted and equal to onnxruntime, "
              if findings.refused + findings.accepted_equal else "")
    print(f"\nfuzz {kind}: {findings.files} files, {oracle}{len(findings.problems)} problems")
    assert not findings.problems, "\n".join(findings.problems[:40])


def test_onnx_mutants(worker, seeds, tmp_path):
    rng = np.random.default_rng(SEED)
    names = sorted(seeds)
    weights = np.array([0.1 if n == "lenet" else 1.0 for n in names])
    findings = Findings()
    for i in range(ONNX_MUTANTS):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        model, _, calib = seeds[name]
        path = tmp_path / f"m{i:04d}_{name}.onnx"
        path.write_bytes(mutate_model(model, rng))
        out = tmp_path / f"q{i:04d}.int8.npz"
        check(worker, path, [["summary", str(path)],
                             ["quantize", str(path), "--calib-data", str(calib), "--no-eval", "--no-ort",
                              "--out", str(out), "--json"],
                             ["map", str(path), "--json"]], findings, oracle=True)
        path.unlink()
    _report("onnx", findings)
    assert findings.refused + findings.accepted_equal == findings.files
    assert findings.accepted_equal >= ONNX_MUTANTS // 20, "mutations too destructive to test the accepted path"


def test_npz_calibration_and_toml_mutants(worker, seeds, tmp_path):
    from quant.calibrate import collect_ranges
    from quant.onnx_import import load_onnx
    from quant.quantize import quantize
    from quant.serialize import save_graph
    rng = np.random.default_rng(SEED + 1)
    findings = Findings()
    saved = {}
    for name in ("lenet_like", "resnet_like"):
        _, path, calib = seeds[name]
        graph = load_onnx(path)
        saved[name] = save_graph(quantize(graph, collect_ranges(graph, np.load(calib))), tmp_path / f"{name}.int8.npz")
    kinds = ["npz", "toml"] * (OTHER_MUTANTS // 2) + ["calib"] * CALIB_MUTANTS  # 100 .npz/TOML + arrays
    for i, kind in enumerate(kinds):
        name = ("lenet_like", "resnet_like")[int(rng.integers(2))]
        model, onnx_path, _ = seeds[name]
        if kind == "npz":
            path = tmp_path / f"g{i:04d}.int8.npz"
            path.write_bytes(mutate_npz(saved[name].read_bytes(), rng))
            commands = [["map", str(path)], ["map", str(path), "--json"]]
        elif kind == "calib":
            dims = tuple(d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim)
            suffix, data = mutate_array(dims, rng)
            path = tmp_path / f"c{i:04d}{suffix}"
            path.write_bytes(data)
            commands = [["quantize", str(onnx_path), "--calib-data", str(path), "--no-eval", "--no-ort",
                         "--out", str(tmp_path / "q.int8.npz"), "--json"]]
        else:
            path = tmp_path / f"t{i:04d}.toml"
            path.write_bytes(mutate_toml(BASE_TOML, rng))
            commands = [["map", str(onnx_path), "--config", str(path)], ["map", str(onnx_path), "--config",
                                                                          str(path), "--json"]]
        check(worker, path, commands, findings, oracle=False)
    _report("npz/calibration/toml", findings)
