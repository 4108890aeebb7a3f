"""Shared fixtures: golden seed data, the shipped LeNet (float and quantized),
Fashion-MNIST (a missing dataset fails under CI=true, never skips), zoo exports."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # models/ is not a package on the path

SEEDS = json.loads((ROOT / "tests" / "golden" / "seed_cases.json").read_text())
LENET = ROOT / "models" / "lenet.onnx"


@pytest.fixture(scope="session")
def seeds() -> dict:
    return SEEDS


@pytest.fixture(scope="session")
def fashion_test():
    from quant.data import fashion_available, load_fashion_mnist
    if not fashion_available():
        if os.environ.get("CI"):
            pytest.fail("Fashion-MNIST is missing in CI: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return load_fashion_mnist("test")


@pytest.fixture(scope="session")
def lenet():
    from quant.onnx_import import load_onnx
    return load_onnx(LENET)


@pytest.fixture(scope="session")
def lenet_q(lenet):
    from quant.calibrate import collect_ranges
    from quant.data import Preprocess
    from quant.quantize import quantize
    calib = Preprocess()(np.load(ROOT / "models" / "lenet_calib.npz")["images"])
    return quantize(lenet, collect_ranges(lenet, calib))


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo")


def write_model(path: Path, text: str) -> Path:
    """Write a model given in ONNX text syntax (onnx.parser)."""
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def pytest_collection_modifyitems(config, items):
    """`zoo` tests (whole ImageNet CNNs, minutes each) run only when a -m expression asks for them:
    deselected, not skipped, in the default run."""
    if config.getoption("markexpr", ""):
        return
    keep = [item for item in items if item.get_closest_marker("zoo") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("zoo")])
        items[:] = keep
