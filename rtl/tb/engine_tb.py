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

from rtl.layout import chunk_runs, results, words
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
            if gj.name in job.get("chunks", {}):
                w = chunk_runs(w, gj, engine, job["chunks"][gj.name])
            for run in range(job.get("repeat_runs", 1)):  # repeats reuse the loaded memories
                beats, cycles, events = await drv.layer(w, monitor=job.get("monitor", False), weights=run == 0,
                                                        inputs=run == 0)
                out.append({"out": results(beats, gj, engine.array), "cycles": sum(cycles), "run_cycles": cycles,
                            "events": [e for run_events in events for e in run_events]})
        report = {"gemms": out}
    else:
        report = await _run_model(drv, job, engine)
    report.update(wall_s=time.perf_counter() - t0, driven_cycles=drv.driven_cycles, free_cycles=drv.free_cycles,
                  driven_s=drv.driven_s, free_s=drv.free_s)
    Path(os.environ["HWSIM_RTL_OUT"]).write_bytes(pickle.dumps(report))


async def _run_model(drv: EngineDriver, job: dict, engine) -> dict:
    from rtl.model_run import model_runs

    progress = Path(job["progress"]) if job.get("progress") else None
    finished = 0

    def step() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress.write_text(f"{finished}\n")

    runs = model_runs(job["graph"], job["images"], engine, step, job.get("chunks"), job.get("batch", 1))
    try:
        ws, load_weights = next(runs)
        while True:
            beats, cycles, _ = await drv.layer(ws, weights=load_weights)
            ws, load_weights = runs.send((beats, cycles))
    except StopIteration as stop:
        return stop.value
