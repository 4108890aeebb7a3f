"""cocotb entry point: drive the combinational requant unit with every vector of the job, read `out`."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Timer

from rtl.tb.driver import resolved

PORTS = ("acc", "bias", "m0", "shift", "zero_point", "qmin", "qmax")


@cocotb.test()
async def drive(dut):
    vectors = pickle.loads(Path(os.environ["HWSIM_RTL_JOB"]).read_bytes())["vectors"]
    columns = {name: np.asarray(vectors[name]).tolist() for name in PORTS}
    ports = {name: getattr(dut, name) for name in PORTS}
    out = []
    for i in range(len(columns["acc"])):
        for name, port in ports.items():
            port.value = columns[name][i]
        await Timer(1, unit="ns")
        out.append(resolved(dut.out.value, f"out of vector {i}", signed=True))
    Path(os.environ["HWSIM_RTL_OUT"]).write_bytes(pickle.dumps({"out": np.array(out, np.int64)}))
