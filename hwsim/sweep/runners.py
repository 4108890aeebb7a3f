"""Where sweep tasks run: in this process, a local process pool, or a Dask distributed cluster.
One interface: `imap_unordered(fn, tasks)` calls fn(shared, *task) for every task and yields
results as they complete; `shared` (the model graph) is sent to each worker once. `close()` ends a
finished sweep, `abort()` an interrupted one at once.

Pool workers die with their parent: on Linux each asks the kernel for SIGKILL when its parent dies
(prctl PR_SET_PDEATHSIG), and a watcher thread exits it when its parent changes (everywhere). They
ignore SIGINT, so a Ctrl-C on the terminal reaches only the parent, which kills them.
A dead pool worker, or a Dask cluster that loses its scheduler or its last worker, is one
RunnerError line; the rows finished before it stay in results.csv."""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from quant.errors import ConfigError, HwsimError

_SHARED: Any = None
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_S = 0.5


class RunnerError(HwsimError):
    """The workers or the cluster went away mid-sweep (finished rows are kept)."""


def _init_worker(shared: Any, parent_pid: int) -> None:
    global _SHARED
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # held back while it was spawned
    _SHARED = shared


def die_with_parent(parent_pid: int) -> None:
    """Exit this process when the process parent_pid (its parent) dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="hwsim-watch-parent", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _call(fn: Callable, task: tuple) -> Any:
    return fn(_SHARED, *task)


_HELD = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back while workers are spawned, so an interrupt cannot cut a worker's
    start-up data short (the worker would die with a traceback): this thread blocks them, which the
    workers inherit (as multiprocessing's resource tracker does; a Ctrl-C on the terminal then reaches
    only the parent), and their Python handlers only note them (another thread may take the signal
    and have them run in this one). A signal that came meanwhile is raised again on exit."""
    noted: list[int] = []
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum)) for sig in _HELD}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if noted:
            signal.raise_signal(noted[0])


class SerialRunner:
    name = "1 worker (in-process)"

    def __init__(self, shared: Any):
        self.shared = shared

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        for task in tasks:
            yield fn(self.shared, *task)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


# multiprocessing's resource tracker (its own process, started with the interpreter's -W options)
# warns on stderr about the semaphores of a pool that Ctrl-C or SIGTERM stopped; it releases them
# itself, and its warnings would break the one-line message of an interrupted sweep.
_QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"


class PoolRunner:
    def __init__(self, shared: Any, workers: int):
        self.name = f"{workers} worker processes"
        if _QUIET_TRACKER not in sys.warnoptions:
            sys.warnoptions.append(_QUIET_TRACKER)
        # spawn: no fork of a process that may hold threads (progress display, torch)
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(shared, os.getpid()))

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        with _signals_held():  # submit spawns the workers
            futures = [self.pool.submit(_call, fn, task) for task in tasks]
        try:
            for f in cf.as_completed(futures):
                try:
                    result = f.result()
                except cf.process.BrokenProcessPool:
                    raise RunnerError("a sweep worker process died (killed, or out of memory); finished points "
                                      "are saved: rerun the same command to resume (--workers 1 runs in-process)"
                                      ) from None
                yield result
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop now: kill the workers (a task may run for minutes), then let the pool wind down. The
        queue of tasks is not waited for: its feeder thread may be stuck writing a task that no dead
        worker will read, and joining it hung the exit (Python 3.11's pool joins it when broken)."""
        call_queue = getattr(self.pool, "_call_queue", None)
        if call_queue is not None:
            call_queue.cancel_join_thread()
        kill = getattr(self.pool, "kill_workers", None)  # Python 3.14+
        if kill is not None:
            kill()
        else:
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    process.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)


class DaskRunner:
    no_workers_grace_s = 30.0  # a cluster without workers this long is given up on
    poll_s = 1.0

    def __init__(self, shared: Any, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
        self.address = address
        # distributed logs its own multi-line complaints when the scheduler goes; ours is one line
        self._log = logging.getLogger("distributed")
        self._log_level = self._log.level
        try:
            self.client = Client(address, timeout="5s")
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError(f"--dask {address}: cannot reach the scheduler ({err})") from None
        self._log.setLevel(logging.CRITICAL)
        workers = len(self.client.scheduler_info().get("workers", {}))
        self.name = f"Dask cluster at {address} ({workers} workers)"
        self.shared = self.client.scatter(shared, broadcast=True)

    def _lost(self, what: str) -> RunnerError:
        return RunnerError(f"--dask {self.address}: {what}; finished points are saved: rerun the same command "
                           "to resume")

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        from distributed import KilledWorker, wait
        lost = (cf.CancelledError, KilledWorker, OSError)  # cancelled when the scheduler goes; CommClosedError
        futures = [self.client.submit(fn, self.shared, *task, pure=False) for task in tasks]
        pending, idle_since = set(futures), None
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=self.poll_s, return_when="FIRST_COMPLETED")
                    results = [f.result() for f in done]
                except TimeoutError:
                    results = []
                    idle_since = self._check_workers(idle_since)
                except lost as err:
                    raise self._lost(f"lost the scheduler or a worker mid-sweep ({_why(err)})") from None
                yield from results
        finally:
            with contextlib.suppress(Exception):
                self.client.cancel(futures)

    def _check_workers(self, idle_since: float | None) -> float | None:
        """None while the cluster has workers; else since when it has none (past the grace: an error)."""
        try:
            workers = len(self.client.nthreads())
        except (OSError, TimeoutError) as err:
            raise self._lost(f"lost the scheduler ({type(err).__name__})") from None
        if workers:
            return None
        now = time.monotonic()
        if idle_since is not None and now - idle_since >= self.no_workers_grace_s:
            raise self._lost(f"the cluster has had no workers for {self.no_workers_grace_s:g} s")
        return idle_since if idle_since is not None else now

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        self._log.setLevel(self._log_level)

    def abort(self) -> None:
        self.close()


def _why(err: BaseException) -> str:
    """The exception in a few words: its type, its first line, and Dask's reason for cancelling."""
    text = str(err)
    reason = text.split("for reason: ", 1)[1].split()[0].rstrip(".") if "for reason: " in text else ""
    first = text.splitlines()[0] if text else "no detail"
    return f"{type(err).__name__}: {first[:120]}" + (f"; reason {reason}" if reason else "")


def make_runner(shared: Any, workers: int, dask: str | None):
    if dask:
        return DaskRunner(shared, dask)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    return SerialRunner(shared) if workers == 1 else PoolRunner(shared, workers)
