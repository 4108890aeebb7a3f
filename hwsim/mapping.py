"""Layers -> GEMMs -> folds on an R x C array.

Conv and Dense become GEMMs by im2col: out (M x N) = A (M x K) @ B (K x N) with
    M = batch * OH * OW  (Dense: M = batch)
    K = C_in/groups * kh * kw  (the reduction)
    N = C_out/groups
and one such GEMM per group, run one after another (depthwise: groups = C_in,
N = 1, so a depthwise layer uses one array column and shows it).

Each dataflow pins two GEMM dimensions to the array and streams the third:
    OS: rows <- M, cols <- N, stream T = K   (outputs stay in the PEs)
    WS: rows <- K, cols <- N, stream T = M   (weights stay in the PEs)
    IS: rows <- K, cols <- M, stream T = N   (inputs stay in the PEs)
A fold is one (row tile, col tile) pair: folds = groups * ceil(rows_dim / R) * ceil(cols_dim / C).
Every other op runs on the vector unit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.config import AcceleratorConfig, Dataflow
from quant.ir import Node, Op

GEMM_OPS = (Op.CONV, Op.DENSE)


@dataclass(frozen=True)
class Gemm:
    """One layer's GEMM: `groups` independent (m x k) @ (k x n) products."""
    m: int
    k: int
    n: int
    groups: int = 1

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.k * self.n


def gemm_of(node: Node, batch: int = 1) -> Gemm:
    if node.op is Op.CONV:
        c_in = node.in_shape[1]
        kh, kw = node.attrs.kernel
        g = node.attrs.groups
        oh, ow = node.out_shape[2:]
        return Gemm(m=batch * oh * ow, k=c_in // g * kh * kw, n=node.out_shape[1] // g, groups=g)
    if node.op is Op.DENSE:
        return Gemm(m=batch, k=node.in_shape[1], n=node.out_shape[1])
    raise ValueError(f"node {node.name!r} ({node.op.value}) is not a GEMM layer")


@dataclass(frozen=True)
class FoldPlan:
    """How a GEMM tiles onto the array under one dataflow."""
    dataflow: Dataflow
    gemm: Gemm
    rows: int  # array rows R
    cols: int  # array cols C
    row_dim: int  # GEMM extent mapped to rows (M for OS, K for WS/IS)
    col_dim: int  # GEMM extent mapped to cols (N for OS/WS, M for IS)
    stream: int  # T, the extent streamed through time (K, M or N)

    @property
    def row_folds(self) -> int:
        return math.ceil(self.row_dim / self.rows)

    @property
    def col_folds(self) -> int:
        return math.ceil(self.col_dim / self.cols)

    @property
    def folds(self) -> int:
        return self.gemm.groups * self.row_folds * self.col_folds

    @property
    def mapping_efficiency(self) -> float:
        """Mean fraction of PEs holding a real (row, col) pair, over all folds."""
        return (self.row_dim * self.col_dim) / (self.row_folds * self.rows * self.col_folds * self.cols)

    def tiles(self) -> list[tuple[int, int, int, int, int]]:
        """Fold order: (group, row start, row size, col start, col size); col tiles outer, as SCALE-Sim."""
        out = []
        for g in range(self.gemm.groups):
            for c0 in range(0, self.col_dim, self.cols):
                for r0 in range(0, self.row_dim, self.rows):
                    out.append((g, r0, min(self.rows, self.row_dim - r0), c0, min(self.cols, self.col_dim - c0)))
        return out


def plan(gemm: Gemm, cfg: AcceleratorConfig, dataflow: Dataflow | None = None) -> FoldPlan:
    df = dataflow or cfg.dataflow
    row_dim, col_dim, stream = {
        Dataflow.OS: (gemm.m, gemm.n, gemm.k),
        Dataflow.WS: (gemm.k, gemm.n, gemm.m),
        Dataflow.IS: (gemm.k, gemm.m, gemm.n),
    }[df]
    return FoldPlan(df, gemm, cfg.rows, cfg.cols, row_dim, col_dim, stream)
