"""The report's plots, drawn with matplotlib from the summary alone and returned as PNG
bytes. Figures are built without pyplot (no global state, no display needed)."""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

COMPUTE, STALL, FLOAT, INT8, DRAM = "#3b75af", "#e58a2b", "#9aa5b1", "#3b75af", "#c44e52"
DPI = 110


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


FEW_LAYERS = 12  # up to this many, bars get wide labels ("name\nop"); more: rotated names, capped width


def _bar_axes(n: int, height: float = 3.6, per_layer: float = 1.2):
    width = max(6.5, per_layer * n + 2) if n <= FEW_LAYERS else min(16.0, 0.28 * per_layer * n + 2)
    fig = Figure(figsize=(width, height + (0 if n <= FEW_LAYERS else 1.2)))
    return fig, fig.add_subplot()


def _layer_ticks(ax, x, layers: list[dict]) -> None:
    if len(layers) <= FEW_LAYERS:
        ax.set_xticks(x, [f"{r['name']}\n{r['op']}" for r in layers], fontsize=8)
    else:
        ax.set_xticks(x, [r["name"] for r in layers], fontsize=6, rotation=90)
        ax.set_xlim(-0.7, len(layers) - 0.3)


def _finish_bars(fig: Figure, ax, x, layers: list[dict], ylabel: str, title: str) -> bytes:
    """What every per-layer bar plot ends with: layer ticks, labels, a light y grid, PNG bytes."""
    _layer_ticks(ax, x, layers)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_cycles(s: dict) -> bytes:
    layers = [r for r in s["layers"] if r["total_cycles"]]
    x = np.arange(len(layers))
    fig, ax = _bar_axes(len(layers))
    compute = [r["compute_cycles"] for r in layers]
    ax.bar(x, compute, color=COMPUTE, label="compute")
    ax.bar(x, [r["stall_cycles"] for r in layers], bottom=compute, color=STALL, label="DRAM stall")
    ax.legend(frameon=False)
    return _finish_bars(fig, ax, x, layers, "cycles per image",
                        f"cycles per layer: {s['totals']['total_cycles']:,} in all")


def plot_utilization(s: dict) -> bytes:
    layers = [r for r in s["layers"] if r["unit"] == "array"]
    x = np.arange(len(layers))
    fig, ax = _bar_axes(len(layers))
    ax.bar(x, [r["utilization_pct"] for r in layers], color=COMPUTE)
    ax.axhline(s["totals"]["utilization_pct"], color="k", lw=1, ls="--",
               label=f"whole model {s['totals']['utilization_pct']:.1f} %")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False)
    return _finish_bars(fig, ax, x, layers, "array utilization (%)",
                        f"utilization of the {s['config']['rows']}x{s['config']['cols']} array per GEMM layer")


def plot_memory(s: dict) -> bytes:
    layers = [r for r in s["layers"] if r["op"] != "Flatten"]
    x = np.arange(len(layers))
    fig, ax = _bar_axes(len(layers), 4.0, per_layer=1.4)
    w = 0.16
    series = (("params fp32", "param_bytes_fp32", FLOAT, None), ("params int8", "param_bytes_int8", INT8, None),
              ("acts fp32", "act_bytes_fp32", FLOAT, "//"), ("acts int8", "act_bytes_int8", INT8, "//"),
              ("DRAM rd+wr", None, DRAM, None))
    for i, (label, key, color, hatch) in enumerate(series):
        values = [r["dram_read_bytes"] + r["dram_write_bytes"] if key is None else r[key] for r in layers]
        heights = [v if v > 0 else np.nan for v in values]  # log axis: leave zero-byte bars out
        ax.bar(x + (i - 2) * w, heights, w, color=color, hatch=hatch, label=label,
               edgecolor="white" if hatch else None)
    ax.set_yscale("log")
    ax.legend(frameon=False, ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(axis="y", alpha=0.3, which="minor")  # the log axis' minor lines too
    return _finish_bars(fig, ax, x, layers, "bytes per image (log)",
                        "memory per layer: float32 vs int8, and DRAM traffic")


def plot_sqnr(s: dict) -> bytes:
    layers = [r for r in s["layers"] if r["sqnr_db"] is not None]
    x = np.arange(len(layers))
    fig, ax = _bar_axes(len(layers))
    ax.bar(x, [r["sqnr_db"] for r in layers], color=COMPUTE)
    if len(layers) <= FEW_LAYERS:
        for xi, r in zip(x, layers, strict=True):
            ax.text(xi, r["sqnr_db"], f"{r['sqnr_db']:.1f}", ha="center", va="bottom", fontsize=8)
    return _finish_bars(fig, ax, x, layers, "SQNR (dB), higher is better",
                        "int8 output vs float32 output, per layer (error accumulates left to right)")


def plot_roofline(s: dict) -> bytes:
    roof = s["roofline"]
    peak, bw = roof["peak_mac_per_cycle"], roof["dram_bytes_per_cycle"]
    layers = [r for r in s["layers"] if r["unit"] == "array" and r["intensity_mac_per_byte"]]
    fig = Figure(figsize=(7, 4.6))
    ax = fig.add_subplot()
    xs = [r["intensity_mac_per_byte"] for r in layers]
    lo = min([*xs, roof["ridge_mac_per_byte"]]) / 4
    hi = max([*xs, roof["ridge_mac_per_byte"]]) * 4
    grid = np.geomspace(lo, hi, 200)
    ax.plot(grid, np.minimum(peak, bw * grid), color="k", lw=1.5,
            label=f"roof: min({peak:,} MAC/cycle, {bw:g} B/cycle x intensity)")
    ax.axvline(roof["ridge_mac_per_byte"], color="k", lw=0.8, ls=":")
    for i, r in enumerate(layers):
        ax.scatter(r["intensity_mac_per_byte"], r["mac_per_cycle"], s=40 if len(layers) <= FEW_LAYERS else 14,
                   zorder=3)
        if len(layers) <= FEW_LAYERS:  # beyond that, names would only overprint each other
            ax.annotate(r["name"], (r["intensity_mac_per_byte"], r["mac_per_cycle"]), fontsize=8,
                        xytext=(6, 4 if i % 2 == 0 else -11), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
    ax.set_ylabel("attained MACs per cycle")
    ax.set_title("roofline: each GEMM layer at batch 1")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def plot_confusion(s: dict) -> bytes:
    acc = s["accuracy"]
    counts = np.asarray(acc["confusion_int8"])
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(counts)
    fig = Figure(figsize=(0.55 * k + 3, 0.55 * k + 2))
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), acc["classes"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), acc["classes"], fontsize=8)
    ax.set_xlabel("predicted (int8)")
    ax.set_ylabel("true class")
    ax.set_title(f"int8 confusion matrix, {acc['images']:,} images (top-1 {acc['int8_top1_pct']:.2f} %)")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _png(fig)


FIGURES: dict[str, Callable[[dict], bytes]] = {
    "cycles": plot_cycles, "utilization": plot_utilization, "memory": plot_memory, "sqnr": plot_sqnr,
    "roofline": plot_roofline, "confusion": plot_confusion,
}
