"""Sweep runners when things go wrong: the parent killed (SIGKILL, SIGTERM, Ctrl-C to it alone)
must take its pool workers with it; a dead worker, or a Dask cluster that loses its last worker or
its scheduler, is one error line with the finished rows kept. The subprocess tests find the
sweep's child processes through /proc (Linux)."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hwsim.sweep import runners
from hwsim.sweep.run import SweepJob, run_sweep
from hwsim.sweep.runners import RunnerError
from hwsim.sweep.space import parse_space
from tests.conftest import LENET, ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")

# 18 bit-width pairs, each quantized and run on 10,000 test images by a worker: seconds per task on
# any machine, so the pool is busy when the signal comes.
SLOW_SPACE = """
[space]
array = ["4x4", "8x8"]
weight_bits = [8, 7, 6, 5, 4, 3]
act_bits = [8, 7, 6]
[accuracy]
images = 10000
"""
HANG_GUARD_S = 60  # generous: only a hang takes this long


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on: state, ppid, ..., starttime at [19]


def children(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of the live child processes of pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[1] == str(pid) \
                and fields[0] not in "ZX":
            found.add((int(entry.name), fields[19]))
    return found


def alive(proc: tuple[int, str]) -> bool:
    fields = _stat(proc[0])
    return fields is not None and fields[0] not in "ZX" and fields[19] == proc[1]  # not a reused pid


def is_worker(proc: tuple[int, str]) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{proc[0]}/cmdline").read_bytes()
    except OSError:
        return False


def is_ready(proc: tuple[int, str]) -> bool:
    """A pool worker past its initializer: it ignores SIGINT from then on."""
    try:
        status = Path(f"/proc/{proc[0]}/status").read_text()
    except OSError:
        return False
    ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def start_sweep(tmp_path: Path, ready: bool = False) -> tuple[subprocess.Popen, set[tuple[int, str]]]:
    """A pool sweep in a subprocess, and its children once both workers exist (and run, if ready)."""
    space = tmp_path / "space.toml"
    space.write_text(SLOW_SPACE)
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", "sweep", str(LENET), "--space", str(space),
                             "--out", str(tmp_path / "s"), "--workers", "2", "--json"], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_GUARD_S * 2
    while time.monotonic() < deadline and proc.poll() is None:
        kids = children(proc.pid)
        if sum(is_worker(k) and (is_ready(k) or not ready) for k in kids) >= 2:
            return proc, kids
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no two pool workers appeared (exit {proc.poll()}): {proc.communicate()[1][-2000:]}")


def assert_all_gone(kids: set[tuple[int, str]]) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline and any(map(alive, kids)):
        time.sleep(0.05)
    assert not any(map(alive, kids)), f"orphaned: {[k for k in kids if alive(k)]}"


def test_sigkill_of_the_sweep_takes_its_workers_along(tmp_path, fashion_test):
    proc, kids = start_sweep(tmp_path)
    proc.kill()
    proc.wait(timeout=HANG_GUARD_S)  # not communicate(): orphans would hold its pipes open
    assert_all_gone(kids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_to_the_parent_alone_stops_the_sweep_in_one_line(tmp_path, fashion_test, sig):
    proc, kids = start_sweep(tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "interrupted" in err and "rerun the same command to resume" in err, err
    assert_all_gone(kids)


def test_a_killed_worker_is_one_error_line(tmp_path, fashion_test):
    # once running: a worker killed while it reads its start-up data hangs Python's pool (its parent
    # blocks writing to it), a CPython limitation
    proc, kids = start_sweep(tmp_path, ready=True)
    os.kill(next(pid for pid, start in kids if is_worker((pid, start))), signal.SIGKILL)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith("hwsim: error: a sweep worker process died") and "rerun the same command" in err
    assert_all_gone(kids)


def test_workers_exit_when_their_parent_is_gone():
    """The watcher half of die_with_parent, where prctl does not exist: a worker whose parent changed exits."""
    code = ("import os, time; from hwsim.sweep.runners import die_with_parent; "
            "die_with_parent(os.getppid() + 1 if os.getppid() != 1 else 2); time.sleep(30)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=HANG_GUARD_S)
    assert done.returncode == 1


DASK_SPACE = """
[space]
array = ["2x2", "4x4", "8x8", "16x16"]
dataflow = ["os", "ws", "is"]
sram_kib = [4, 8, 16, 32, 64]
batch = [1, 2, 4, 8]
[accuracy]
images = 0
"""  # 240 points, one per task


@pytest.mark.parametrize("loss", ["last worker", "scheduler"])
def test_dask_losing_its_last_worker_or_scheduler_is_one_error_line(tmp_path, monkeypatch, loss):
    from distributed import LocalCluster
    monkeypatch.setattr(runners.DaskRunner, "no_workers_grace_s", 1.0)
    monkeypatch.setattr(runners.DaskRunner, "poll_s", 0.2)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)

    def progress(label, total, unit=None):
        def advance(n):
            if label == "points" and cluster.status.name == "running":  # after the first task's rows
                cluster.scale(0) if loss == "last worker" else cluster.close()
        return advance

    address = cluster.scheduler_address
    job = SweepJob(model=LENET, space=parse_space(__import__("tomllib").loads(DASK_SPACE)), out=tmp_path / "s",
                   dask=address, chunk=1)
    outcome: list[BaseException | None] = []

    def sweep():
        try:
            run_sweep(job, progress)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=sweep, daemon=True)  # a hang fails the test instead of hanging it
    thread.start()
    thread.join(HANG_GUARD_S)
    cluster.close()
    assert outcome, "the sweep hung"
    assert isinstance(outcome[0], RunnerError), outcome
    assert f"--dask {address}: " in str(outcome[0]) and "finished points are saved" in str(outcome[0])
    rows = (tmp_path / "s" / "results.csv").read_text().count("\n") - 1
    assert 1 <= rows < 240
