"""Pareto fronts of sweep results (pure numpy) and their plot."""
from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

LABELS = {"pes": "processing elements (rows x cols)", "luts": "LUTs", "ffs": "flip-flops", "dsps": "DSP blocks",
          "sram_kib_total": "on-chip SRAM (KiB)", "energy_per_image_uj": "energy per image (µJ)",
          "int8_top1_pct": "int8 top-1 (%)", "latency_us": "latency (µs)", "dram_bytes": "DRAM bytes"}


def usable_objectives(rows: list[dict], minimize: tuple[str, ...], maximize: tuple[str, ...]
                      ) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Drop objectives no row has a value for (accuracy without a test set, LUTs without --synth)."""
    dropped = [k for k in (*minimize, *maximize) if all(r.get(k) is None for r in rows)]
    return (tuple(k for k in minimize if k not in dropped), tuple(k for k in maximize if k not in dropped), dropped)


def pareto_front(rows: list[dict], minimize: tuple[str, ...], maximize: tuple[str, ...]) -> list[dict]:
    """The rows no other row beats on every objective (and strictly on one); rows missing an
    objective take no part. Rows are visited in lexicographic order of their objectives, so a
    dominating row always comes first and each row is checked against the front only:
    O(rows x front), not O(rows^2)."""
    keys = (*minimize, *maximize)
    cand = [r for r in rows if all(r.get(k) is not None for k in keys)]
    if not cand or not keys:
        return []
    sign = np.array([1.0] * len(minimize) + [-1.0] * len(maximize))
    cost = np.array([[float(r[k]) for k in keys] for r in cand]) * sign
    order = np.lexsort(cost.T[::-1])
    front_idx: list[int] = []
    front = np.empty((0, len(keys)))
    for i in order:
        c = cost[i]
        if np.any(np.all(front <= c, axis=1) & np.any(front < c, axis=1)):
            continue
        front_idx.append(i)
        front = np.vstack([front, c])
    return [cand[i] for i in sorted(front_idx)]


def plot_pareto(rows: list[dict], front: list[dict], cost_key: str, color_key: str | None, title: str) -> bytes:
    """Latency vs `cost_key` and latency vs energy; every feasible point grey, the front coloured."""
    fig = Figure(figsize=(12, 4.8))
    panels = ((cost_key, LABELS.get(cost_key, cost_key)), ("energy_per_image_uj", LABELS["energy_per_image_uj"]))
    front_ids = {r["point"] for r in front}
    colors = [r[color_key] for r in front] if color_key else None
    norm = {}
    if color_key:
        values = [r[color_key] for r in rows if r.get(color_key) is not None]
        lo, hi = min(values), max(values)
        norm = {"vmin": lo - 1 if lo == hi else lo, "vmax": hi + 1 if lo == hi else hi}
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        xs = [r["latency_us"] for r in rows if r.get(key) is not None and r["point"] not in front_ids]
        ys = [r[key] for r in rows if r.get(key) is not None and r["point"] not in front_ids]
        ax.scatter(xs, ys, s=8, color="#c5cbd3", label=f"{len(rows):,} feasible points")
        style = {"c": colors, "cmap": "viridis", **norm} if colors else {"color": "#3b75af"}
        sc = ax.scatter([r["latency_us"] for r in front], [r[key] for r in front], s=28, **style,
                        edgecolors="k", linewidths=0.4, zorder=3, label=f"Pareto front ({len(front)})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("latency per inference (µs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=8)
        if color_key and i == 1:
            fig.colorbar(sc, ax=ax, label=LABELS.get(color_key, color_key))
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()
