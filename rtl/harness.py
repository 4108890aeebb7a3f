"""The tile engine free in Verilator: a compiled C++ harness (rtl/harness.cpp) runs the engine, the
host drives it through a line protocol on a pipe, one command per layer load or run, never a Python
call per cycle. Built once per engine and generator version (cached beside the cocotb builds).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from rtl.emit import generator_digest, write_engine
from rtl.layout import CONFIG_PORTS, Words
from rtl.params import EngineParams
from rtl.simulate import SimulationError, default_build_root, tool_env

HARNESS_SOURCE = Path(__file__).with_name("harness.cpp")
# -O3 and fast X handling in Verilator, -O3 -march=native in GCC: about 0.8 M engine cycles/s for an 8x8
# engine on the 2-core VM (benchmarks/rtl_bench.py), against about 0.14 M through cocotb's clock.
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint",
                   "-Wno-style"]
MAKE_FLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O3 OPT_SLOW=-O1"
CXX_FLAGS = "-std=c++20 -march=native"


def build_harness(engine: EngineParams, build_root: Path | None = None) -> tuple[Path, float]:
    """The harness binary for this engine (built unless cached) and the seconds the build took."""
    env = tool_env("verilator")
    key = hashlib.sha256((generator_digest() + HARNESS_SOURCE.read_text() + repr(VERILATOR_FLAGS) + MAKE_FLAGS +
                          CXX_FLAGS).encode()).hexdigest()[:16]
    folder = (build_root or default_build_root()) / f"harness_{engine.tag}_{key}"
    binary = folder / "obj_dir" / "Vtop"
    if binary.exists():
        return binary, 0.0
    t0 = time.perf_counter()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    source = write_engine(engine, tmp)
    shutil.copy(HARNESS_SOURCE, tmp / "harness.cpp")
    cmd = ["verilator", "--cc", "--exe", "--build", *VERILATOR_FLAGS, "--top-module", source.stem, "--prefix", "Vtop",
           source.name, "harness.cpp", "-MAKEFLAGS", MAKE_FLAGS, "-CFLAGS", CXX_FLAGS]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    (tmp / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SimulationError(f"verilator failed to build the harness (see {tmp / 'build.log'})")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return binary, time.perf_counter() - t0


class HarnessDriver:
    """One running harness process: load words, run layers, read results (rtl.tb.driver's calls, synchronous)."""

    def __init__(self, binary: Path):
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1 << 20)

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(text)
        except (BrokenPipeError, ValueError, OSError):  # the harness exited: its last line says why
            self._answer("")

    def _answer(self, tag: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
        line = self.proc.stdout.readline().split()
        if not line or line[0] != tag:
            why = " ".join(line[1:]) if line and line[0] == "E" else "it exited"
            raise SimulationError(f"the Verilator harness failed: {why}")
        return line[1:]

    def load(self, sel: int, words: list[int]) -> None:
        self._send(f"L {sel} {len(words)} " + " ".join(f"{w:x}" for w in words) + "\n")

    def layer(self, w: Words, weights: bool = True, inputs: bool = True) -> tuple[list[int], list[int]]:
        """Load (weights and params unless already there, inputs), run each of the layer's runs (one, or
        the tiler's chunks), read back: (result beats, cycles per run)."""
        if weights:
            self.load(1, w.b)
            self.load(2, w.params)
        if inputs:
            self.load(0, w.a)
        for c in w.run_configs:
            self._send("R " + " ".join(str(c[k]) for k in CONFIG_PORTS) + "\n")
        cycles, data = [], []
        for c in w.run_configs:
            ran, beats, *words = self._answer("C")
            if int(beats) != c["cfg_beats"]:
                raise SimulationError(f"the engine streamed {beats} result words, not {c['cfg_beats']}")
            cycles.append(int(ran))
            data += words
        return [int(x, 16) for x in data], cycles

    def stats(self) -> tuple[int, int, float]:
        """(driven cycles, free-run engine cycles, seconds of free running) so far."""
        self._send("S\n")
        driven, free, seconds = self._answer("S")
        return int(driven), int(free), float(seconds)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("Q\n")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> HarnessDriver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
