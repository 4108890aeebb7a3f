"""What `hwsim map` runs on: a model (ONNX, or a quantized .int8.npz from
`hwsim quantize`), quantized on demand, and int8 input images for the cycle engine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from quant.data import Preprocess, fashion_available, load_fashion_mnist
from quant.errors import DataError, ModelFormatError
from quant.int_exec import quantize_input
from quant.ir import Graph
from quant.onnx_import import load_onnx
from quant.pipeline import FASHION_SHAPE, QuantJob, calibration_inputs
from quant.quantize import QuantConfig
from quant.serialize import load_graph

RANDOM_SEED = 0


def load_model(path: str | Path) -> Graph:
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        return load_graph(path)[0]
    return load_onnx(path)


def quantized(graph: Graph, model: Path, calib_data: Path | None = None) -> Graph:
    """The graph itself if already quantized, else int8 with the shipped/--calib-data calibration."""
    if graph.is_quantized:
        return graph
    from quant.calibrate import collect_ranges
    from quant.quantize import quantize
    job = QuantJob(model=model, calib_data=calib_data)
    return quantize(graph, collect_ranges(graph, calibration_inputs(job, graph)), QuantConfig())


def sample_inputs(qgraph: Graph, images: int, data_dir: Path | None = None) -> tuple[np.ndarray, str]:
    """int8 inputs for the cycle engine and where they came from: Fashion-MNIST test images
    for 1x28x28 models when installed, else seeded random int8 tensors."""
    if qgraph.input_shape == FASHION_SHAPE and (data_dir is not None or fashion_available()):
        pixels, _ = load_fashion_mnist("test", data_dir)
        if images > len(pixels):
            raise DataError(f"asked for {images} images, the test set has {len(pixels)}")
        x = Preprocess()(pixels[:images])
        which = "test image 0" if images == 1 else f"test images 0..{images - 1}"
        return quantize_input(x, qgraph.input_quant), f"Fashion-MNIST {which}"
    rng = np.random.default_rng(RANDOM_SEED)
    shape = (images, *qgraph.input_shape[1:])
    return rng.integers(-128, 128, shape, dtype=np.int64).astype(np.int8), f"random int8 inputs (seed {RANDOM_SEED})"
