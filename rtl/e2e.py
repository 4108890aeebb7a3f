"""End-to-end RTL check of a quantized CNN: every Conv/Dense GEMM of N images runs through the
generated tile engine (requant in RTL), the rest in quant's integer kernels; the logits are compared
with quant's integer executor and each layer's RTL cycles with hwsim's. Verilator runs the engine
free in a compiled harness (rtl.harness); Icarus runs it under cocotb (rtl.tb.engine_tb)."""
from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.cycle import compile_schedules, gemm_operands
from hwsim.mapping import GEMM_OPS
from quant.errors import ConfigError
from quant.int_exec import run_int
from quant.ir import Graph, Op
from rtl.harness import HarnessDriver, build_harness
from rtl.layout import GemmJob, engine_for, job_for, needs
from rtl.model_run import model_runs
from rtl.params import ArrayParams, EngineParams
from rtl.simulate import build_engine, run_job


@dataclass(frozen=True)
class LayerCycles:
    name: str
    rtl_cycles: tuple[int, ...]  # one per layer run (an image, or a batch of them)
    hwsim_cycles: int

    @property
    def exact(self) -> bool:
        return all(c == self.hwsim_cycles for c in self.rtl_cycles)

    def to_dict(self) -> dict:
        same = len(set(self.rtl_cycles)) == 1
        return {"name": self.name, "rtl_cycles": self.rtl_cycles[0] if same else list(self.rtl_cycles),
                "hwsim_cycles": self.hwsim_cycles}


@dataclass(frozen=True)
class RtlSimResult:
    model: str
    simulator: str
    engine: EngineParams
    images: int
    source: str  # where the images came from
    output: np.ndarray  # the graph output the RTL run produced (int8 logits), images first
    bit_exact: bool  # every logit of every image equals quant's integer executor
    mismatched_images: int
    layers: tuple[LayerCycles, ...]
    wall_s: float  # the simulation itself, build excluded
    build_s: float
    driven_cycles: int  # cycles stepped from Python (loads, result reads)
    free_cycles: int  # cycles the engine ran on its own (layer runs)
    free_s: float = 0.0  # wall seconds of those free runs
    host_ops: tuple[str, ...] = ()  # per image, what the host computes outside the RTL ("im2col <conv>", "<op> <node>")
    hwsim_total_cycles: int = 0  # hwsim's whole-network total (tiled schedule, stalls and vector ops included)
    batch: int = 1  # images per layer run

    @property
    def cycle_exact(self) -> bool:
        return all(layer.exact for layer in self.layers)

    @property
    def rtl_gemm_cycles(self) -> int:
        """The RTL's cycles for one image's GEMM layers (image 0): the only part of the network it runs."""
        return sum(layer.rtl_cycles[0] for layer in self.layers)

    def to_dict(self) -> dict:
        ap = self.engine.array
        return {"model": self.model, "simulator": self.simulator, "array": f"{ap.rows}x{ap.cols}",
                "dataflow": ap.dataflow,
                "images": self.images, "batch": self.batch, "inputs": self.source, "bit_exact": self.bit_exact,
                "cycle_exact": self.cycle_exact, "mismatched_images": self.mismatched_images,
                "layers": [layer.to_dict() for layer in self.layers],
                # the RTL does not run the network start to logits yet (the host does im2col and the vector ops):
                # no whole-network RTL total exists to compare with hwsim's
                "host_ops": len(self.host_ops), "host_op_list": list(self.host_ops), "rtl_total_cycles": None,
                "rtl_gemm_cycles": self.rtl_gemm_cycles, "hwsim_total_cycles": self.hwsim_total_cycles,
                "wall_s": round(self.wall_s, 3), "build_s": round(self.build_s, 3),
                "free_cycles": self.free_cycles, "free_s": round(self.free_s, 3),
                "driven_cycles": self.driven_cycles}


def gemm_jobs(qgraph: Graph, x_q: np.ndarray, batch: int = 1) -> list[GemmJob]:
    """One representative job per GEMM layer (the first `batch` images' operands): sizes the engine's
    memories."""
    jobs, tensors = [], run_int(qgraph, x_q[:batch], intermediate=True)
    for node in qgraph.nodes:
        if node.op in GEMM_OPS:
            x = tensors[node.inputs[0]][:batch]
            a, w, _ = gemm_operands(node, x, batch=batch)
            jobs.append(job_for(node, a[0], w, x))
    return jobs


def host_ops(qgraph: Graph, ws: bool = False) -> tuple[str, ...]:
    """What the host computes per image outside the RTL tile engine: every op that is not a Conv/Dense
    GEMM, and (OS engines; a WS engine's im2col is in hardware) each conv's im2col expansion."""
    return tuple(f"im2col {n.name}" if n.op is Op.CONV else f"{n.op.value} {n.name}" for n in qgraph.nodes
                 if (n.op is Op.CONV and not ws) or n.op not in GEMM_OPS)


def simulate_model(qgraph: Graph, x_q: np.ndarray, array: ArrayParams, simulator: str = "icarus",
                   source: str = "", build_root: Path | None = None,
                   advance: Callable[[int], None] | None = None, cfg: AcceleratorConfig | None = None,
                   sram_sized: bool = False, batch: int = 1, waves: Path | None = None) -> RtlSimResult:
    """cfg: the accelerator whose tiler schedules each layer (default: edge8 at the array's size); the RTL
    runs every GEMM layer as the mapper's chunks and takes their compute cycles, K chunks accumulating
    in the engine's accumulator memory. The array's dataflow (OS or WS) is the one the tiler schedules for.
    sram_sized (WS): the engine's memories are cfg's SRAMs byte for byte (EngineParams.from_config), and a
    layer that does not fit them is refused; else they are sized for the model's largest layer.
    batch: images per layer run (GEMM M = batch x output pixels, tiled and timed by hwsim at that batch);
    the number of images must be a multiple of it. waves (Verilator): a VCD file of every cycle."""
    if waves is not None and simulator != "verilator":
        raise ConfigError("--waves dumps from the Verilator harness: add --simulator verilator")
    if batch < 1 or len(x_q) % batch:
        raise ConfigError(f"--batch {batch}: the {len(x_q)} images must be a whole number of batches")
    base = cfg or AcceleratorConfig()
    cfg = dataclasses.replace(base, rows=array.rows, cols=array.cols, dataflow=Dataflow(array.dataflow),
                              acc_bits=array.acc_bits, fuse_pool=False)
    schedules = compile_schedules(qgraph, cfg, batch=batch)
    chunks = {s.node.name: list(s.steps) for s in schedules}
    jobs = gemm_jobs(qgraph, x_q, batch)
    engine = engine_for(jobs, array, chunks)
    if sram_sized:
        sized = EngineParams.from_config(cfg)
        for job in jobs:  # refuse up front, before a build, what the memories cannot hold
            need = needs(job, array, chunks.get(job.name), sized.banks)
            for key, value in need.items():
                have = sized.acc_words if key == "acc_depth" else getattr(sized, key)
                if value > have:
                    raise ConfigError(f"{job.name}: needs {value:,} words of {key.removesuffix('_depth')} memory; "
                                      f"the {cfg.name} SRAMs hold {have:,} (the RTL holds whole layers until its "
                                      "DMA streams tiles)")
        engine = sized
    hwsim_cycles = {s.node.name: s.mapping.compute_cycles for s in schedules}
    if simulator == "verilator":
        binary, build_s = build_harness(engine, Path(build_root) if build_root else None, waves=waves is not None)
        report = _run_harness(binary, qgraph, x_q, engine, advance, chunks, batch, waves)
    else:
        with tempfile.TemporaryDirectory(prefix="hwsim-rtl-progress-") as tmp:
            progress_file = Path(tmp) / "progress"
            job = {"kind": "model", "engine": engine, "graph": qgraph, "images": x_q, "progress": str(progress_file),
                   "chunks": chunks, "batch": batch}
            t0 = time.perf_counter()
            build_engine(engine, simulator, Path(build_root) if build_root else None)
            build_s = time.perf_counter() - t0
            report = _run_watching(job, simulator, build_root, progress_file, advance)
    expected = run_int(qgraph, x_q)
    mismatched = int(np.sum(np.any(report["output"].reshape(len(x_q), -1) != expected.reshape(len(x_q), -1), axis=1)))
    layers = tuple(LayerCycles(row["name"], tuple(row["rtl_cycles"]), hwsim_cycles[row["name"]])
                   for row in report["layers"])
    return RtlSimResult(model=qgraph.name, simulator=simulator, engine=engine, images=len(x_q), source=source,
                        output=report["output"], bit_exact=mismatched == 0, mismatched_images=mismatched, layers=layers,
                        wall_s=report["wall_s"], build_s=build_s, driven_cycles=report["driven_cycles"],
                        free_cycles=report["free_cycles"], free_s=report["free_s"], host_ops=host_ops(qgraph, array.ws),
                        hwsim_total_cycles=map_graph(qgraph, cfg, batch=batch).total_cycles, batch=batch)


def _run_harness(binary: Path, qgraph: Graph, x_q: np.ndarray, engine: EngineParams,
                 advance: Callable[[int], None] | None, chunks: dict, batch: int = 1,
                 waves: Path | None = None) -> dict:
    """Drive the network's layer runs through the compiled Verilator harness."""
    t0 = time.perf_counter()
    with HarnessDriver(binary, waves) as drv:
        runs = model_runs(qgraph, x_q, engine, (lambda: advance(1)) if advance is not None else None, chunks, batch)
        try:
            ws, load_weights = next(runs)
            while True:
                ws, load_weights = runs.send(drv.layer(ws, weights=load_weights))
        except StopIteration as stop:
            report = stop.value
        driven, free, free_s = drv.stats()
    return report | {"wall_s": time.perf_counter() - t0, "driven_cycles": driven, "free_cycles": free, "free_s": free_s}


def _run_watching(job, simulator, build_root, progress_file: Path, advance) -> dict:
    """Run the simulation in a thread and turn the testbench's progress file into advance() calls."""
    box: dict = {}

    def target():
        try:
            box["report"] = run_job(job, simulator, build_root)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    seen = 0
    while thread.is_alive():
        thread.join(0.2)
        if advance is not None and progress_file.exists():
            try:
                done = int(progress_file.read_text().split()[0])
            except (ValueError, IndexError):
                continue
            if done > seen:
                advance(done - seen)
                seen = done
    if "error" in box:
        raise box["error"]
    return box["report"]


def report_check(simulator: str = "verilator", build_root: Path | None = None):
    """The `hwsim report --rtl N` hook: run N images through the engine sized for hwsim's array and
    return the report's "rtl" section (the config's dataflow: OS or WS; IS is refused)."""
    def check(qgraph: Graph, x_q: np.ndarray, cfg: AcceleratorConfig, source: str, progress) -> dict:
        layers = sum(1 for n in qgraph.nodes if n.op in GEMM_OPS)
        advance = progress(f"RTL {simulator}", layers * len(x_q), "layer runs")
        array = ArrayParams(cfg.rows, cfg.cols, acc_bits=cfg.acc_bits, dataflow=cfg.dataflow.value)
        result = simulate_model(qgraph, x_q, array, simulator,
                                source, build_root, advance=advance, cfg=cfg)
        return result.to_dict()
    return check
