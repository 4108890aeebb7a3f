"""cocotb entry point for tests/rtl/test_driver.py: one layer whose last output channel never gets
its parameter word (so its result lane is X on a four-state simulator) while every output is
expected to be 0. With job["catch"], reports what EngineDriver.read made of it; without, lets the
driver's error fail the simulation as it would in a real run."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import cocotb

from rtl.layout import results, words
from rtl.tb.driver import SEL_A, SEL_B, SEL_PARAMS, EngineDriver, UnresolvedValueError


@cocotb.test()
async def read_unwritten_lane(dut):
    job = pickle.loads(Path(os.environ["HWSIM_RTL_JOB"]).read_bytes())
    gj, engine = job["job"], job["engine"]
    w = words(gj, engine)
    drv = EngineDriver(dut)
    await drv.start()
    await drv.load(SEL_B, w.b)
    await drv.load(SEL_PARAMS, w.params[:job["param_words"]])  # the last channels' words stay X
    await drv.load(SEL_A, w.a)
    await drv.run(w.config)
    try:
        report = {"out": results(await drv.read(w.live_lanes), gj, engine.array)}
    except UnresolvedValueError as err:
        if not job["catch"]:
            raise
        report = {"error": str(err)}
    Path(os.environ["HWSIM_RTL_OUT"]).write_bytes(pickle.dumps(report))
