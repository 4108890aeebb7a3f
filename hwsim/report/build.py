"""The report's numbers: float reference -> quantize -> measure -> map (-> RTL check), gathered
into one JSON-able summary. report.md, report.html and the plots are rendered from this
summary and nothing else, so every figure they show is in summary.json."""
from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from hwsim.analytical import MapResult, map_graph
from hwsim.config import AcceleratorConfig
from hwsim.energy import layer_energy
from hwsim.progress import ProgressFactory, no_progress
from hwsim.report.measure import confusion, measure_predictions, time_float
from hwsim.workload import quantized
from quant.analysis import FLOAT32_BYTES, INT8_BYTES, Summary, summarize
from quant.data import FASHION_CLASSES, Preprocess, fashion_available, load_fashion_mnist
from quant.errors import ConfigError, DataError, ModelFormatError
from quant.evaluate import logits_tensor
from quant.int_exec import quantize_input
from quant.ir import Graph
from quant.onnx_import import load_onnx
from quant.pipeline import QuantJob, calibration_inputs
from quant.torch_exec import TorchModel, pick_device

# (qgraph, int8 inputs, config, where the inputs came from, progress) -> the report's "rtl" section
RtlCheck = Callable[[Graph, np.ndarray, AcceleratorConfig, str, ProgressFactory], dict]


@dataclass(frozen=True)
class ReportJob:
    model: Path
    config: AcceleratorConfig
    data_dir: Path | None = None  # Fashion-MNIST-style IDX folder; default: the Debian package's
    calib_data: Path | None = None  # float calibration inputs for models that are not 1x28x28
    images: int = 10_000  # test images to measure
    preprocess: Preprocess = field(default_factory=Preprocess)
    device: str = "auto"  # torch device for the float reference: auto (CUDA if present) or cpu
    latency_repeats: int = 50
    throughput_batch: int = 256
    rtl_images: int = 0
    command: str = ""

    def validate(self) -> ReportJob:
        if self.model.suffix.lower() == ".npz":
            raise ModelFormatError(f"{self.model}: the report needs the float ONNX model (it measures the float "
                                   "reference), not a quantized .npz")
        if self.images < 1:
            raise ConfigError(f"--images {self.images}: must be at least 1")
        if self.rtl_images < 0:
            raise ConfigError(f"--rtl {self.rtl_images}: must be 0 (off) or a number of images")
        if self.device not in ("auto", "cpu"):
            raise ConfigError(f"--device {self.device!r}: choose auto or cpu")
        return self


@dataclass(frozen=True)
class Inputs:
    x: np.ndarray  # preprocessed float inputs
    labels: np.ndarray | None  # None: no labelled test set for this model
    classes: tuple[str, ...]
    source: str
    note: str = ""


def load_inputs(job: ReportJob, graph: Graph) -> Inputs:
    """The labelled test set when it fits the model (its image size and class count), else the
    calibration inputs (SQNR only). A dataset given with --data that does not fit is an error."""
    n_out = graph.shape_of(logits_tensor(graph))[-1]
    in_shape = graph.input_shape
    if job.data_dir is not None or fashion_available():
        pixels, labels = load_fashion_mnist("test", job.data_dir)
        where = job.data_dir or "the dataset-fashion-mnist package"
        fits = in_shape[1] == 1 and tuple(in_shape[2:]) == pixels.shape[1:]
        if job.data_dir is not None and not fits:
            raise DataError(f"{job.data_dir}: test images are {pixels.shape[1]}x{pixels.shape[2]} grey, the model "
                            f"takes {'x'.join(map(str, in_shape[1:]))} (C x H x W)")
        classes = int(labels.max()) + 1
        if fits and classes != n_out:
            raise DataError(f"{where}: {classes} classes, the model has {n_out} outputs")
        if fits:
            names = FASHION_CLASSES if classes == len(FASHION_CLASSES) else tuple(f"class {i}" for i in range(classes))
            n = min(job.images, len(pixels))
            return Inputs(job.preprocess(pixels[:n]), labels[:n], names,
                          f"Fashion-MNIST test split ({where})")
    x = calibration_inputs(QuantJob(model=job.model, preprocess=job.preprocess, data_dir=job.data_dir,
                                    calib_data=job.calib_data), graph)
    return Inputs(x[:job.images], None, (), f"{min(len(x), job.images):,} calibration inputs",
                  note="accuracy not measured: no labelled test set fits this model (Fashion-MNIST IDX files "
                       "via --data DIR); quantization error measured on the calibration inputs")


TIMING_BUDGET_S = 3.0  # per timed batch size: big models get fewer repeats and a smaller batch


def throughput_batch(wanted: int, single_s: float) -> int:
    """`wanted`, halved until one pass at the batch-1 rate fits the budget: LeNet keeps 256, ResNet-18
    on a 2-core CPU gets 64."""
    batch = wanted
    while batch > 1 and batch * single_s > TIMING_BUDGET_S:
        batch //= 2
    return batch


def _pct(x: float) -> float:
    return 100.0 * x


def _sqnr(value: float) -> float | None:
    return None if math.isinf(value) else value


def environment() -> dict:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(terse=True),
            "cpu_cores": os.cpu_count(), "hwsim": version("hwsim"), "numpy": version("numpy"),
            "torch": version("torch"), "onnx": version("onnx"), "onnxruntime": version("onnxruntime")}


def _accuracy(inputs: Inputs, pred) -> dict | None:
    if inputs.labels is None:
        return None
    labels, k = inputs.labels, len(inputs.classes)
    f_ok, q_ok = pred.float_pred == labels, pred.int8_pred == labels
    per_class = []
    for c, name in enumerate(inputs.classes):
        mask = labels == c
        per_class.append({"class": name, "images": int(mask.sum()), "float_top1_pct": _pct(float(f_ok[mask].mean())),
                          "int8_top1_pct": _pct(float(q_ok[mask].mean())),
                          "drop_pts": _pct(float(f_ok[mask].mean() - q_ok[mask].mean()))})
    return {"images": len(labels), "float_top1_pct": _pct(float(f_ok.mean())),
            "int8_top1_pct": _pct(float(q_ok.mean())), "drop_pts": _pct(float(f_ok.mean() - q_ok.mean())),
            "agreement_pct": _pct(float(np.mean(pred.float_pred == pred.int8_pred))),
            "per_class": per_class, "classes": list(inputs.classes),
            "confusion_int8": confusion(labels, pred.int8_pred, k).tolist(),
            "confusion_float": confusion(labels, pred.float_pred, k).tolist()}


ENERGY_COLUMNS = (("mac", "energy_mac_nj"), ("register", "energy_register_nj"), ("vector", "energy_vector_nj"),
                  ("sram", "energy_sram_nj"), ("dram", "energy_dram_nj"), ("leakage", "energy_leakage_nj"),
                  ("total", "energy_nj"))  # model total <- per-layer column


def _energy_nj(lr, cfg: AcceleratorConfig) -> dict:
    e = layer_energy(lr, cfg)
    return {column: (e.total_pj if part == "total" else getattr(e, f"{part}_pj")) / 1e3
            for part, column in ENERGY_COLUMNS}


def _layers(analysis: Summary, mapped: MapResult, pred) -> list[dict]:
    rows = {r.name: r for r in analysis.layers}
    errors = {e.name: e for e in pred.layer_errors}
    clock = mapped.config.clock_mhz
    out = []
    for lr in mapped.layers:
        a, e = rows[lr.name], errors[lr.name]
        dram = lr.dram_read_bytes + lr.dram_write_bytes
        out.append({
            "name": lr.name, "op": a.op, "unit": lr.unit, "output_shape": list(a.output_shape),
            "macs": lr.macs, "folds": lr.folds, "compute_cycles": lr.compute_cycles, "stall_cycles": lr.stall_cycles,
            "total_cycles": lr.total_cycles, "utilization_pct": _pct(lr.utilization),
            "latency_us": lr.total_cycles / clock,
            "param_bytes_fp32": a.param_bytes_fp32, "param_bytes_int8": a.param_bytes_int8,
            "act_bytes_fp32": a.act_bytes_fp32, "act_bytes_int8": a.act_bytes_int8,
            "sram_read_bytes": lr.sram_read_bytes, "sram_write_bytes": lr.sram_write_bytes,
            "dram_read_bytes": lr.dram_read_bytes, "dram_write_bytes": lr.dram_write_bytes,
            "footprint_bytes": lr.footprint_bytes,
            "sqnr_db": _sqnr(e.sqnr_db), "max_abs_error": e.max_abs_error, "lsb": e.scale,
            "intensity_mac_per_byte": lr.macs / dram if dram and lr.unit == "array" else None,
            "mac_per_cycle": lr.macs / lr.total_cycles if lr.total_cycles else 0.0,
            **_energy_nj(lr, mapped.config),
        })
    return out


def _performance(floats: list, cfg: AcceleratorConfig, device, mapped_by_batch: dict[int, MapResult | str]) -> list:
    rows = [{"engine": "float32 reference (PyTorch)", "device": f"{device.name}: {device.description}",
             "batch": t.batch, "latency_us": 1e3 * t.latency_ms, "throughput_images_per_s": t.throughput,
             "how": f"median of {t.repeats} timed runs"} for t in floats]
    for batch, m in mapped_by_batch.items():
        if isinstance(m, str):
            rows.append({"engine": "int8 accelerator (simulated)", "device": m, "batch": batch,
                         "latency_us": None, "throughput_images_per_s": None, "how": "does not fit"})
            continue
        rows.append({"engine": "int8 accelerator (simulated)",
                     "device": f"{cfg.array} {cfg.dataflow.value.upper()} array at {cfg.clock_mhz:g} MHz",
                     "batch": batch, "latency_us": 1e6 * m.latency_s,
                     "throughput_images_per_s": batch / m.latency_s,
                     "how": f"{m.total_cycles:,} cycles (analytical)"})
    return rows


def build_summary(job: ReportJob, progress: ProgressFactory = no_progress, rtl_check: RtlCheck | None = None) -> dict:
    t_start = time.perf_counter()
    job.validate()
    graph = load_onnx(job.model)
    inputs = load_inputs(job, graph)
    step = progress("quantizing", 1, "model")
    qgraph = quantized(graph, job.model, job.calib_data)
    step(1)

    device = pick_device(job.device)
    model = TorchModel(graph, device)
    pred = measure_predictions(graph, qgraph, model, inputs.x, inputs.labels is not None,
                               progress("float vs int8", len(inputs.x)))

    step = progress("timing float", 2, "batch sizes")
    floats = [time_float(model, inputs.x, 1, job.latency_repeats, TIMING_BUDGET_S)]
    step(1)
    big = throughput_batch(job.throughput_batch, floats[0].latency_ms / 1e3)
    floats.append(time_float(model, inputs.x, big, max(3, job.latency_repeats // 5), TIMING_BUDGET_S))
    step(1)

    cfg = job.config
    analysis = summarize(graph)
    mapped = map_graph(graph, cfg, batch=1)
    by_batch: dict[int, MapResult | str] = {1: mapped}
    try:
        by_batch[big] = map_graph(graph, cfg, batch=big)
    except ConfigError as err:
        by_batch[big] = str(err)

    sram = 1024 * cfg.sram_kib_total  # ifmap + filter + ofmap + acc
    layers = _layers(analysis, mapped, pred)
    summary = {
        "report": {"generated_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "command": job.command,
                   "wall_s": None},
        "model": {"name": graph.name, "file": str(job.model), "input_shape": list(graph.input_shape),
                  "params": graph.total_params, "weights": analysis.total_weights, "macs": graph.total_macs,
                  "layers": len(graph.nodes)},
        "environment": environment(),
        "float_device": device.to_dict(),
        "config": cfg.to_dict(),
        "data": {"source": inputs.source, "images": len(inputs.x),
                 "preprocess": f"x = (pixel / 255 - {job.preprocess.mean:g}) / {job.preprocess.std:g}",
                 "note": inputs.note},
        "accuracy": _accuracy(inputs, pred),
        "layers": layers,
        "totals": {"macs": mapped.total("macs"), "compute_cycles": mapped.total("compute_cycles"),
                   "stall_cycles": mapped.total("stall_cycles"), "total_cycles": mapped.total_cycles,
                   "utilization_pct": _pct(mapped.utilization), "latency_us": 1e6 * mapped.latency_s,
                   "throughput_images_per_s": 1 / mapped.latency_s, "clock_mhz": cfg.clock_mhz},
        "performance": _performance(floats, cfg, device, by_batch),
        "memory": {"param_bytes_fp32": analysis.total("param_bytes_fp32"),
                   "param_bytes_int8": analysis.total("param_bytes_int8"),
                   "weight_bytes_fp32": FLOAT32_BYTES * analysis.total_weights,
                   "weight_bytes_int8": INT8_BYTES * analysis.total_weights,
                   "input_bytes_fp32": analysis.layers[0].act_bytes_fp32,
                   "input_bytes_int8": analysis.layers[0].act_bytes_int8,
                   "act_bytes_fp32": analysis.total("act_bytes_fp32"),
                   "act_bytes_int8": analysis.total("act_bytes_int8"),
                   "peak_footprint_bytes": mapped.peak_footprint_bytes, "sram_bytes": sram,
                   "sram_use_pct": _pct(mapped.peak_footprint_bytes / sram),
                   "dram_read_bytes": mapped.total("dram_read_bytes"),
                   "dram_write_bytes": mapped.total("dram_write_bytes")},
        "energy": {**{f"{part}_nj": sum(r[column] for r in layers) for part, column in ENERGY_COLUMNS},
                   "source": "Horowitz, ISSCC 2014 (45 nm): 8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ, "
                             "SRAM 10/20/100 pJ per 64-bit access at 8 KB/32 KB/1 MB, DRAM 1.3-2.6 nJ per 64 bits; "
                             "PE registers 0.009 pJ per bit and PE leakage from Aladdin (Shao et al., ISCA 2014, "
                             "40 nm); SRAM leakage 18.2 nW per KiB from CACTI 7 (45 nm, itrs-lstp)"},
        "roofline": {"peak_mac_per_cycle": cfg.pes, "dram_bytes_per_cycle": cfg.dram_bytes_per_cycle,
                     "ridge_mac_per_byte": cfg.pes / cfg.dram_bytes_per_cycle},
        "rtl": None,
    }
    if job.rtl_images and rtl_check is not None:
        n = min(job.rtl_images, len(inputs.x))
        x_q = quantize_input(inputs.x[:n], qgraph.input_quant)
        summary["rtl"] = rtl_check(qgraph, x_q, cfg, f"the first {n} of the {inputs.source}", progress)
    summary["report"]["wall_s"] = time.perf_counter() - t_start
    return summary
