"""Drives fuzz workers: writes mutants, runs hwsim on each through `worker.py` with a per-file
time limit and a memory cap, and classifies every outcome."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_CAP_BYTES = 3 << 30   # address space a worker may add past its imports
TIME_LIMIT_S = 60.0          # per file, all its commands together (a hang, not a slow run)


@dataclass
class Findings:
    files: int = 0
    refused: int = 0
    accepted_equal: int = 0
    problems: list[str] = field(default_factory=list)


class Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker.py")),
                                      str(MEMORY_CAP_BYTES)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT, env=env)
        if self._readline(300.0) != "ready":
            raise RuntimeError("fuzz worker did not start")

    def _readline(self, timeout: float) -> str | None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line.strip() if line else None

    def run(self, job: dict, timeout: float = TIME_LIMIT_S) -> dict | None:
        """The job's result, or None when the worker hung or died (it is then restarted)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout)
        if line is None:
            self.stop()
            return None
        return json.loads(line)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _one_line_problem(cmd: dict) -> str | None:
    if "crash" in cmd:
        return f"traceback: {cmd['crash'].strip().splitlines()[-1]}"
    if cmd["rc"] not in (0, 1, 2):
        return f"exit {cmd['rc']}"
    lines = [ln for ln in cmd["stderr"].splitlines() if ln.strip()]
    bad = [ln for ln in lines if not ln.startswith("hwsim: ")]
    if bad:
        return f"stderr not one-line hwsim messages: {bad[0][:200]!r}"
    if cmd["rc"] == 2 and not any(ln.startswith("hwsim: error: ") for ln in lines):
        return "exit 2 without an error line"
    return None


def check(worker: Worker, path: Path, commands: list[list[str]], findings: Findings, oracle: bool) -> None:
    findings.files += 1
    result = worker.run({"commands": commands, "oracle": str(path) if oracle else None})
    if result is None:
        findings.problems.append(f"{path.name}: hang (> {TIME_LIMIT_S:.0f} s) or worker died")
        return
    for cmd in result["commands"]:
        problem = _one_line_problem(cmd)
        if problem:
            findings.problems.append(f"{path.name}: {' '.join(cmd['argv'][:1])}: {problem}")
    ora = result.get("oracle")
    if ora is None:
        return
    if "crash" in ora:
        findings.problems.append(f"{path.name}: oracle: {ora['crash'].strip().splitlines()[-1]}")
    elif not ora["accepted"]:
        findings.refused += 1
    elif "ort_refused" in ora:
        findings.problems.append(f"{path.name}: hwsim accepts a model onnxruntime refuses: {ora['ort_refused']}")
    elif not ora["same"]:
        findings.problems.append(f"{path.name}: float output differs from onnxruntime {ora['shapes']}")
    else:
        findings.accepted_equal += 1
