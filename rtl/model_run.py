"""The host's walk of a quantized network over the tile engine, written once as a generator and driven
by either simulation path: the cocotb driver (rtl.tb.engine_tb) or the compiled Verilator harness
(rtl.harness).

Every Conv/Dense runs on the engine (requant in RTL), image by image, weights loaded with the first
image; every other op runs in quant's integer kernels (the host ops of rtl.e2e.host_ops). The
generator yields (Words, load_weights) per layer run and is sent back (result beats, engine cycles of
each of the layer's runs).
"""
from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from hwsim.cycle import gemm_operands, gemm_result
from hwsim.mapping import GEMM_OPS
from quant.int_exec import INT_KERNELS
from quant.ir import Graph
from rtl.layout import Words, chunk_runs, job_for, results, words
from rtl.params import EngineParams

LayerRun = Generator[tuple[Words, bool], tuple[list[int], list[int]], dict]


def model_runs(graph: Graph, images: np.ndarray, engine: EngineParams,
               on_layer_run: Callable[[], None] | None = None, chunks: dict | None = None,
               batch: int = 1) -> LayerRun:
    """Yield each GEMM layer run; return {"output": the graph output, "layers": [{name, rtl_cycles}]}.
    chunks: per layer name, the tiler's steps (hwsim.tiling.Step): the layer then runs as those chunks
    (rtl.layout.chunk_runs) and its cycles are their sum; without, each layer runs whole. batch: images
    per layer run (M = batch x output pixels; len(images) a multiple of it)."""
    tensors = {graph.input_name: images}
    layers = []
    for node in graph.nodes:
        inputs = [tensors[t] for t in node.inputs]
        if node.op not in GEMM_OPS:
            tensors[node.output] = INT_KERNELS[node.op].run(node, inputs)
            continue
        a, w, _ = gemm_operands(node, inputs[0], batch=batch)  # (runs, G, batch x M, K), (G, K, N)
        outs, cycles = [], []
        for run in range(a.shape[0]):
            job = job_for(node, a[run], w, inputs[0][run * batch:(run + 1) * batch])
            layer_words = words(job, engine)
            if chunks and node.name in chunks:
                layer_words = chunk_runs(layer_words, job, engine, chunks[node.name])
            beats, run_cycles = yield layer_words, run == 0
            outs.append(results(beats, job, engine.array))
            cycles.append(sum(run_cycles))
            if on_layer_run is not None:
                on_layer_run()
        tensors[node.output] = gemm_result(node, np.stack(outs), batch=batch).astype(np.int8)
        layers.append({"name": node.name, "rtl_cycles": cycles})
    return {"output": tensors[graph.output], "layers": layers}
