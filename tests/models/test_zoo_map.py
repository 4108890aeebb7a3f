"""Today's CNNs on the accelerator: every zoo model maps on edge8 and tpu128 (both exporters), and
the cycle engine runs them bit-exact with the integer executor, its compute and stall cycles equal
to the analytical engine's per layer. The inception and squeeze-excitation blocks run in the default
suite; the ImageNet models are marked `zoo` (pytest -m zoo)."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim.analytical import map_graph
from hwsim.config import override, preset
from hwsim.cycle import run_cycle
from quant.calibrate import collect_ranges
from quant.int_exec import quantize_input, run_int
from quant.onnx_import import load_onnx
from quant.quantize import quantize
from tests.models.test_zoo_cnns import EXPORTERS, LARGE, SMALL

pytestmark = pytest.mark.filterwarnings("ignore::quant.onnx_ops.ShapeWarning")
CYCLE_LARGE = ("googlenet", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5")


def _quantized(name: str, exporter: str, folder):
    from models.zoo import ZOO, build
    graph = load_onnx(build(name, folder, exporter))
    calib = np.random.default_rng(2).standard_normal((4, *ZOO[name][1]), dtype=np.float32)
    return quantize(graph, collect_ranges(graph, calib))


@pytest.mark.parametrize("name,exporter", [pytest.param(n, e, id=f"{n}-{e}", marks=[pytest.mark.zoo] if n in LARGE
                                                        else []) for n in (*SMALL, *LARGE) for e in EXPORTERS])
def test_maps_on_edge8_and_tpu128(name, exporter, tmp_path):
    qgraph = _quantized(name, exporter, tmp_path)
    for p in ("edge8", "tpu128"):
        result = map_graph(qgraph, preset(p))  # a refusal raises ConfigError
        assert result.total("macs") == qgraph.total_macs and result.total_cycles > result.total("compute_cycles") > 0
        assert result.peak_footprint_bytes <= 1024 * preset(p).sram_kib_total


@pytest.mark.parametrize("name,exporter,array", [
    *[pytest.param(n, e, "8x8", id=f"{n}-{e}") for n in SMALL for e in EXPORTERS],
    *[pytest.param(n, "dynamo", "32x32", id=n, marks=pytest.mark.zoo) for n in CYCLE_LARGE]])
def test_cycle_engine_is_bit_exact_and_agrees_with_the_analytical_engine(name, exporter, array, tmp_path):
    from models.zoo import ZOO
    qgraph = _quantized(name, exporter, tmp_path)
    rows, cols = (int(v) for v in array.split("x"))
    cfg = override(preset("edge8"), rows=rows, cols=cols)
    x = quantize_input(np.random.default_rng(3).standard_normal((1, *ZOO[name][1])), qgraph.input_quant)
    run = run_cycle(qgraph, x, cfg)
    np.testing.assert_array_equal(run.output, run_int(qgraph, x))
    for sim, ana in zip(run.result.layers, map_graph(qgraph, cfg).layers, strict=True):
        assert (sim.compute_cycles, sim.stall_cycles) == (ana.compute_cycles, ana.stall_cycles), sim.name
