"""A sweep from start to resume: expand the space, skip points results.csv already holds,
compute the shared tables (top-1 per bit width, FPGA cost per array), evaluate the remaining
points in chunks on the chosen runner, append each chunk's rows as it completes, then list and
plot the Pareto front."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hwsim.progress import ProgressFactory, no_progress
from hwsim.sweep.evaluate import (
    COLUMNS,
    Tables,
    bits_key,
    data_bits,
    evaluate_chunk,
    measure_quality,
    synth_key,
)
from hwsim.sweep.pareto import pareto_front, plot_pareto, usable_objectives
from hwsim.sweep.runners import make_runner
from hwsim.sweep.space import DEFAULT_MAXIMIZE, DEFAULT_MINIMIZE, Point, Space, points
from hwsim.sweep.store import ResultStore, format_value, write_atomic
from quant.data import fashion_available, load_fashion_mnist
from quant.errors import ConfigError, DataError, ModelFormatError
from quant.evaluate import logits_tensor
from quant.ir import Graph
from quant.onnx_import import load_onnx
from quant.pipeline import FASHION_SHAPE, QuantJob, calibration_inputs

TABLES = "tables.json"


@dataclass(frozen=True)
class SweepJob:
    model: Path
    space: Space
    out: Path
    workers: int = 1
    dask: str | None = None
    synth: str | None = None  # FPGA target for Yosys cost per array, or None
    data_dir: Path | None = None
    calib_data: Path | None = None
    chunk: int | None = None  # points per task (default: about 8 tasks per worker, at most 100)


@dataclass(frozen=True)
class SweepResult:
    runner: str
    total_points: int
    evaluated: int  # this run
    resumed: int  # already in results.csv
    rows: list[dict]
    front: list[dict]
    minimize: tuple[str, ...]
    maximize: tuple[str, ...]
    dropped_objectives: list[str]
    points_wall_s: float  # evaluating the points (tables excluded)
    files: list[Path] = field(default_factory=list)
    accuracy_note: str = ""

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.points_wall_s if self.points_wall_s > 0 else 0.0


def _accuracy_inputs(job: SweepJob, graph: Graph) -> tuple[np.ndarray, np.ndarray | None, dict, str] | str:
    """(x, labels or None, calibration ranges, source) for quality per bit width, or why there is none.
    Labelled: the Fashion-MNIST test set when it fits the model (top-1 and logits SQNR); otherwise the
    calibration inputs (logits SQNR only)."""
    if job.space.images == 0:
        return "accuracy off ([accuracy] images = 0)"
    from quant.calibrate import collect_ranges
    from quant.data import Preprocess
    fits = graph.input_shape == FASHION_SHAPE and graph.shape_of(logits_tensor(graph))[-1] == 10
    qjob = QuantJob(model=job.model, data_dir=job.data_dir, calib_data=job.calib_data)
    if job.data_dir is not None or (fits and fashion_available()):
        pixels, labels = load_fashion_mnist("test", job.data_dir)
        if not fits or tuple(pixels.shape[1:]) != FASHION_SHAPE[2:]:
            raise DataError(f"{job.data_dir}: test images are {pixels.shape[1]}x{pixels.shape[2]} with "
                            f"{int(labels.max()) + 1} classes; the model takes "
                            f"{'x'.join(map(str, graph.input_shape[1:]))}")
        n = min(job.space.images, len(pixels))
        ranges = collect_ranges(graph, calibration_inputs(qjob, graph))
        return Preprocess()(pixels[:n]), labels[:n], ranges, f"first {n:,} Fashion-MNIST test images"
    try:
        calib = calibration_inputs(qjob, graph)
    except DataError:
        return ("accuracy not measured: no labelled test set and no calibration inputs for this model "
                "(--calib-data FILE.npy, or Fashion-MNIST via --data DIR)")
    n = min(job.space.images, len(calib))
    return calib[:n], None, collect_ranges(graph, calib), f"{n:,} calibration inputs (logits SQNR, no labels)"


def _quality_task(graph, x, labels, ranges, float_logits, weight_bits, act_bits):
    return bits_key(weight_bits, act_bits), measure_quality(graph, ranges, x, labels, float_logits, weight_bits,
                                                            act_bits)


def _chunks(todo: list[Point], size: int) -> list[tuple]:
    return [(todo[i:i + size],) for i in range(0, len(todo), size)]


def signature(job: SweepJob, accuracy_source: str) -> dict:
    return {"model": job.model.name, "model_sha256": hashlib.sha256(job.model.read_bytes()).hexdigest(),
            "space": job.space.to_dict(), "synth": job.synth, "accuracy": accuracy_source}


def run_sweep(job: SweepJob, progress: ProgressFactory = no_progress, synth_fn: Callable | None = None) -> SweepResult:
    if job.model.suffix.lower() == ".npz":
        raise ModelFormatError(f"{job.model}: a sweep needs the float ONNX model (it re-quantizes per bit width)")
    graph = load_onnx(job.model)
    grid = points(job.space)
    acc_inputs = _accuracy_inputs(job, graph)
    acc_note = acc_inputs if isinstance(acc_inputs, str) else ""
    store = ResultStore(job.out, signature(job, acc_note or acc_inputs[3]), COLUMNS)
    with _sigterm_as_interrupt():
        done = store.open()
        try:
            todo = [p for p in grid if p.key not in done]
            tables = _load_tables(job.out)
            runner = make_runner(graph, job.workers if todo else 1, job.dask if todo else None)
            finished = False
            try:
                tables = _fill_tables(runner, tables, todo, acc_inputs, job, graph, progress, synth_fn)
                write_atomic(job.out / TABLES, (json.dumps(_tables_doc(tables), indent=2) + "\n").encode())
                size = job.chunk or max(1, min(100, math.ceil(len(todo) / (8 * max(job.workers, 1)))))
                advance = progress("points", len(todo), "points")
                t0 = time.perf_counter()
                for rows in runner.imap_unordered(evaluate_chunk, [(*c, tables) for c in _chunks(todo, size)]):
                    store.append(rows)
                    advance(len(rows))
                wall = time.perf_counter() - t0
                finished = True
            finally:
                runner.close() if finished else runner.abort()  # interrupted or failed: stop the workers now
        finally:
            store.close()
    return _finish(job, store, grid, len(todo), wall, runner.name, acc_note)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the sweep like Ctrl-C (KeyboardInterrupt: workers stopped, rows kept, exit 130);
    a second SIGTERM kills at once. Only the main thread can take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load_tables(out: Path) -> Tables:
    """The shared tables of an earlier run; a cache: if it cannot be read it is recomputed."""
    try:
        doc = json.loads((out / TABLES).read_bytes())
        return Tables(dict(doc["accuracy"]), doc["float_top1_pct"], dict(doc["sqnr_db"]), dict(doc["synth"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Tables()


def _tables_doc(t: Tables) -> dict:
    return {"accuracy": t.accuracy, "float_top1_pct": t.float_top1, "sqnr_db": t.sqnr, "synth": t.synth}


def _fill_tables(runner, tables: Tables, todo: list[Point], acc_inputs, job: SweepJob, graph: Graph,
                 progress: ProgressFactory, synth_fn: Callable | None) -> Tables:
    accuracy, sqnr, synth, float_top1 = dict(tables.accuracy), dict(tables.sqnr), dict(tables.synth), tables.float_top1
    if not isinstance(acc_inputs, str):
        from quant.evaluate import predict_float, top1
        x, labels, ranges, _ = acc_inputs
        pairs = sorted({(p.weight_bits, p.act_bits) for p in todo}, reverse=True)
        bits = [b for b in pairs if bits_key(*b) not in sqnr]
        if bits:
            float_logits = predict_float(graph, x)
            if labels is not None and float_top1 is None:
                float_top1 = 100.0 * top1(float_logits, labels)
            advance = progress("accuracy", len(bits), "bit widths")
            tasks = [(x, labels, ranges, float_logits, w, a) for w, a in bits]
            for key, (top1_pct, sqnr_db) in runner.imap_unordered(_quality_task, tasks):
                accuracy[key], sqnr[key] = top1_pct, sqnr_db
                advance(1)
    if job.synth and synth_fn is not None:
        arrays = sorted({(p.config.rows, p.config.cols, p.config.acc_bits, data_bits(p)) for p in todo})
        arrays = [a for a in arrays if synth_key(*a) not in synth]
        advance = progress(f"synthesis ({job.synth})", len(arrays), "arrays")
        for key, cost in runner.imap_unordered(synth_fn, [(*a, job.synth) for a in arrays]):
            synth[key] = cost
            advance(1)
    return replace(tables, accuracy=accuracy, sqnr=sqnr, synth=synth, float_top1=float_top1)


def _finish(job: SweepJob, store: ResultStore, grid: list[Point], evaluated: int, wall: float, runner: str,
            acc_note: str) -> SweepResult:
    keys = {p.key for p in grid}
    rows = [r for r in store.rows() if r["point"] in keys]
    ok = [r for r in rows if r["status"] == "ok"]
    minimize = job.space.minimize
    if job.synth and minimize == DEFAULT_MINIMIZE:
        minimize = tuple("luts" if k == "pes" else k for k in minimize)  # area from Yosys, not a PE count
    maximize = job.space.maximize
    if maximize == DEFAULT_MAXIMIZE and all(r["int8_top1_pct"] is None for r in ok):
        maximize = ("logits_sqnr_db",)  # no labels: fidelity to the float model instead of accuracy
    minimize, maximize, dropped = usable_objectives(ok, minimize, maximize)
    front = sorted(pareto_front(ok, minimize, maximize), key=lambda r: r["latency_us"])
    files = [store.path]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    writer.writerows([format_value(r[c]) for c in COLUMNS] for r in front)
    write_atomic(job.out / "pareto.csv", buf.getvalue().encode())
    files.append(job.out / "pareto.csv")
    if ok:
        cost_key = next((k for k in minimize if k != "latency_us"), "pes")
        color = next(iter(maximize), None)
        png = plot_pareto(ok, front, cost_key, color, f"{job.model.stem}: {len(ok):,} feasible of {len(rows):,} "
                          f"points, Pareto front over {', '.join((*minimize, *maximize))}")
        write_atomic(job.out / "pareto.png", png)
        files.append(job.out / "pareto.png")
    parquet = _write_parquet(job.out, rows)
    if parquet:
        files.append(parquet)
    return SweepResult(runner, len(grid), evaluated, len(grid) - evaluated, rows, front, minimize, maximize, dropped,
                       wall, files, acc_note)


def _write_parquet(out: Path, rows: list[dict]) -> Path | None:
    """results.parquet when pyarrow is installed (optional)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    buf = pa.BufferOutputStream()
    try:
        pq.write_table(pa.Table.from_pylist(rows), buf)
    except pa.ArrowException as err:
        raise ConfigError(f"{out / 'results.parquet'}: cannot convert results.csv ({err}); "
                          "it was edited by hand? use another --out") from None
    write_atomic(out / "results.parquet", buf.getvalue().to_pybytes())
    return out / "results.parquet"
