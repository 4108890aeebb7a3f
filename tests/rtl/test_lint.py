"""Generated Verilog is lint-clean: iverilog -Wall prints nothing, and verilator --lint-only -Wall
prints nothing outside three waived MyHDL conversion artefacts:

  WIDTHEXPAND/WIDTHTRUNC  MyHDL sizes intermediate expressions as Python integers and lets Verilog
                          extend or cut them at the assignment (e.g. the requant unit's 80-bit
                          variables, 20-bit counters indexing smaller memories); the simulations on
                          both simulators are bit-exact against numpy, which is what would catch a
                          real width bug.
  UNUSEDSIGNAL            the pass-through outputs of the last PE in each row/column, and high
                          address bits of memories smaller than the 20-bit counters.
"""
import subprocess

import pytest

from rtl.emit import write_array, write_engine, write_requant
from rtl.params import ArrayParams, EngineParams
from rtl.simulate import tool_env

WAIVED = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    out = tmp_path_factory.mktemp("lint")
    ap, ws = ArrayParams(3, 4), ArrayParams(3, 4, dataflow="ws")
    return [write_array(ap, out), write_requant(out), write_engine(EngineParams(ap, 40, 40, 40, 8), out),
            write_array(ws, out), write_engine(EngineParams(ws, 0, 40, 40, 8, raw_depth=32), out)]


def test_iverilog_wall_is_silent(sources):
    for src in sources:
        proc = subprocess.run(["iverilog", "-Wall", "-o", "/dev/null", str(src)], capture_output=True, text=True,
                              env=tool_env("icarus"))
        assert proc.returncode == 0 and proc.stdout + proc.stderr == "", src.name


def test_verilator_lint_is_clean_but_for_waived_conversion_artefacts(sources):
    for src in sources:
        proc = subprocess.run(["verilator", "--lint-only", "-Wall", *WAIVED, str(src)], capture_output=True,
                              text=True, env=tool_env("verilator"))
        assert proc.returncode == 0 and "%Warning" not in proc.stderr and "%Error" not in proc.stderr, proc.stderr


def test_verilator_lint_does_see_a_real_problem(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output b);\n  wire c;\n  assign b = c;\nendmodule\n")
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *WAIVED, str(bad)], capture_output=True, text=True,
                          env=tool_env("verilator"))
    assert "UNDRIVEN" in proc.stderr
