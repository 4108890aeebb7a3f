"""cocotb entry point: run the job that rtl.simulate pickled for this simulation, write back what happened.

Two job kinds: "gemms" (a list of GemmJobs, optionally monitored cycle by cycle) and
"model" (a quantized graph run end to end: every Conv/Dense on the engine with requant
in RTL, every other op in quant's integer kernels, layer by layer over all images)."""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import cocotb
import numpy as np

from rtl.layout import job_for, results, words
from rtl.tb.driver import EngineDriver


@cocotb.test()
async def run_job(dut):
    job = pickle.loads(Path(os.environ["HWSIM_RTL_JOB"]).read_bytes())
    engine = job["engine"]
    drv = EngineDriver(dut)
    await drv.start()
    t0 = time.perf_counter()
    if job["kind"] == "gemms":
        out = []
        for gj in job["jobs"]:
            w = words(gj, engine)
            for run in range(job.get("repeat_runs", 1)):  # repeats reuse the loaded memories
                beats, cycles, events = await drv.layer(w, monitor=job.get("monitor", False), weights=run == 0,
                                                        inputs=run == 0)
                out.append({"out": results(beats, gj, engine.array), "cycles": cycles, "events": events})
        report = {"gemms": out}
    else:
        report = await _run_model(drv, job, engine)
    report.update(wall_s=time.perf_counter() - t0, driven_cycles=drv.driven_cycles, free_cycles=drv.free_cycles,
                  driven_s=drv.driven_s, free_s=drv.free_s)
    Path(os.environ["HWSIM_RTL_OUT"]).write_bytes(pickle.dumps(report))


async def _run_model(drv: EngineDriver, job: dict, engine) -> dict:
    from hwsim.cycle import gemm_operands, gemm_result
    from hwsim.mapping import GEMM_OPS
    from quant.int_exec import INT_KERNELS

    graph = job["graph"]
    x = job["images"]
    progress = Path(job["progress"]) if job.get("progress") else None
    gemm_nodes = [n for n in graph.nodes if n.op in GEMM_OPS]
    total, finished = len(gemm_nodes) * x.shape[0], 0
    tensors = {graph.input_name: x}
    layers = []
    for node in graph.nodes:
        inputs = [tensors[t] for t in node.inputs]
        if node.op not in GEMM_OPS:
            tensors[node.output] = INT_KERNELS[node.op].run(node, inputs)
            continue
        a, w, _ = gemm_operands(node, inputs[0], batch=1)  # (images, G, M, K), (G, K, N)
        outs, cycles = [], []
        for img in range(a.shape[0]):
            gj = job_for(node, a[img], w)
            ws = words(gj, engine)
            beats, cyc, _ = await drv.layer(ws, weights=img == 0)
            outs.append(results(beats, gj, engine.array))
            cycles.append(cyc)
            finished += 1
            if progress is not None:
                progress.write_text(f"{finished} {total}\n")
        tensors[node.output] = gemm_result(node, np.stack(outs), batch=1).astype(np.int8)
        layers.append({"name": node.name, "rtl_cycles": cycles})
    return {"output": tensors[graph.output], "layers": layers}
