"""Where sweep tasks run: in this process, a local process pool, or a Dask distributed cluster.
One interface: `imap_unordered(fn, tasks)` calls fn(shared, *task) for every task and yields
results as they complete; `shared` (the model graph) is sent to each worker once."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from quant.errors import ConfigError

_SHARED: Any = None


def _init_worker(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


def _call(fn: Callable, task: tuple) -> Any:
    return fn(_SHARED, *task)


class SerialRunner:
    name = "1 worker (in-process)"

    def __init__(self, shared: Any):
        self.shared = shared

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        for task in tasks:
            yield fn(self.shared, *task)

    def close(self) -> None:
        pass


class PoolRunner:
    def __init__(self, shared: Any, workers: int):
        self.name = f"{workers} worker processes"
        # spawn: no fork of a process that may hold threads (progress display, torch)
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(shared,))

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        futures = [self.pool.submit(_call, fn, task) for task in tasks]
        try:
            for f in cf.as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskRunner:
    def __init__(self, shared: Any, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
        try:
            self.client = Client(address, timeout="5s")
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError(f"--dask {address}: cannot reach the scheduler ({err})") from None
        workers = len(self.client.scheduler_info().get("workers", {}))
        self.name = f"Dask cluster at {address} ({workers} workers)"
        self.shared = self.client.scatter(shared, broadcast=True)

    def imap_unordered(self, fn: Callable, tasks: list[tuple]) -> Iterator[Any]:
        from distributed import as_completed
        futures = [self.client.submit(fn, self.shared, *task, pure=False) for task in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()


def make_runner(shared: Any, workers: int, dask: str | None):
    if dask:
        return DaskRunner(shared, dask)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    return SerialRunner(shared) if workers == 1 else PoolRunner(shared, workers)
