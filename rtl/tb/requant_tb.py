"""cocotb entry point: stream every vector of the job through the requant pipeline, one per cycle
(valid high, the vector's index as its tag), and collect `out` by tag as each value comes out. The
output zero point and clamp are a layer's constants in the engine; here they change per vector, so
each is presented while its vector's value is in the last stage."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from rtl.requant import REQUANT_STAGES
from rtl.tb.driver import resolved

PORTS = ("acc", "bias", "m0", "shift")  # taken with the value
OUTPUT_PORTS = ("zero_point", "qmin", "qmax")  # the layer's, used by the last stage: presented as the value leaves


@cocotb.test()
async def drive(dut):
    vectors = pickle.loads(Path(os.environ["HWSIM_RTL_JOB"]).read_bytes())["vectors"]
    columns = {name: np.asarray(vectors[name]).tolist() for name in PORTS}
    columns |= {name: np.asarray(vectors[name]).tolist() for name in OUTPUT_PORTS}
    ports = {name: getattr(dut, name) for name in PORTS}
    output_ports = {name: getattr(dut, name) for name in OUTPUT_PORTS}
    n = len(columns["acc"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.valid_in.value = 0
    dut.tag_in.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    out: dict[int, int] = {}
    latency: set[int] = set()
    for t in range(n + REQUANT_STAGES + 2):
        await FallingEdge(dut.clk)  # sample what the last edge produced, then drive the next inputs
        if resolved(dut.valid_out.value, f"valid_out at cycle {t}"):
            tag = resolved(dut.tag_out.value, f"tag_out at cycle {t}")
            assert tag not in out, f"vector {tag} came out twice"
            out[tag] = resolved(dut.out.value, f"out of vector {tag}", signed=True)
            latency.add(t - tag)
        if t < n:
            for name, port in ports.items():
                port.value = columns[name][t]
            dut.tag_in.value = t
            dut.valid_in.value = 1
        else:
            dut.valid_in.value = 0
        leaving = t + 1 - REQUANT_STAGES  # the vector whose result the clamp shows after the next edge
        if 0 <= leaving < n:
            for name, port in output_ports.items():
                port.value = columns[name][leaving]
    assert sorted(out) == list(range(n)), f"{n - len(out)} vectors never came out"
    assert latency == {REQUANT_STAGES}, f"latency {sorted(latency)} edges, not {REQUANT_STAGES}"
    Path(os.environ["HWSIM_RTL_OUT"]).write_bytes(pickle.dumps({"out": np.array([out[i] for i in range(n)],
                                                                                np.int64)}))
