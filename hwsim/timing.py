"""Compute-cycle formulas of the array: ours (what the cycle engine and the RTL
take) and SCALE-Sim 3.0's, for comparison. Pure functions of a FoldPlan.

Notation: R x C array, T = streamed extent (K for OS, M for WS, N for IS),
F = number of folds (groups x row folds x col folds).

Ours ("hwsim"), one formula for all three dataflows:

    compute_cycles = (F - 1) * max(T, R) + T + 2R + C - 1 + WRITEBACK_CYCLES

Derivation (hwsim.cycle simulates exactly this, register by register):
  * A fold's operands enter skewed: PE (i, j) sees stream element t at cycle
    start + t + i + j, so the last PE does its last MAC R + C - 2 cycles after
    the first PE's last MAC (the fill/skew).
  * Folds issue back to back every P = max(T, R) cycles. The PEs keep a second
    register (double-buffered accumulators for OS, shadow weights/inputs for
    WS/IS, as in Gemmini's PE), so fold f+1 streams while fold f drains: the
    drain of one fold overlaps the fill of the next. P >= R because an OS
    column drains its R results through one port (one per cycle) and a WS/IS
    column loads its R stationary values the same way, while the next fold runs.
    (tests/hwsim/test_cycle.py issues folds at P - 1 and checks the array then fails.)
  * OS: a column's R results are parallel-loaded into a drain chain one cycle
    after its bottom PE finishes and leave the bottom edge in R cycles.
    WS/IS: the first fold's stationary tile is preloaded (R cycles) before
    streaming; each result leaves the bottom PE's register one cycle after its
    MAC. Either way the last result of the layer appears at cycle
    (F - 1) * P + T + 2R + C - 2, counting from 0.
  * Each result then passes the writeback pipeline before it is written to SRAM: two accumulate
    stages (the accumulator memory's read and output register, for the earlier K chunks' partial
    sum) and the requantizer's 8 register stages (rtl.engine, rtl.requant): WRITEBACK_CYCLES = 10
    more cycles after the last result leaves.
  * A 1 x 1 array therefore takes F * T + 2 + 10 = MACs + 12 cycles.

SCALE-Sim 3.0 ("scalesim", its compute model, CALC bandwidth = no stalls):
every fold pays its fill, stream and drain one after another,

    OS:     per_fold = T + R + C - 2
    WS, IS: per_fold = T + 2R + C - 2
    Total Cycles = folds_per_group * per_fold - 1   (per group; groups add)

(the trailing -1 because SCALE-Sim reports the index of the last cycle). Its
OS fold lets outputs leave from cycle T - 1 rather than after the last MAC of
the bottom row, and nothing overlaps between folds, so for many folds it
charges R + C - 2 (OS) or 2R + C - 2 - max(0, R - T) (WS/IS) more per fold than
our array takes.
"""
from __future__ import annotations

from hwsim.config import Dataflow
from hwsim.mapping import FoldPlan

WRITEBACK_CYCLES = 10  # register stages from the array's bottom edge to the SRAM write: accumulate (2) + requant (8)


def compute_cycles(p: FoldPlan) -> int:
    """Cycles from the first operand entering the array to the last result written to SRAM."""
    period = max(p.stream, p.rows)
    return (p.folds - 1) * period + p.stream + 2 * p.rows + p.cols - 1 + WRITEBACK_CYCLES


def fill_drain_cycles(p: FoldPlan) -> int:
    """The part of compute_cycles that is not streaming: skew, drain, writeback and fold-issue bubbles."""
    return compute_cycles(p) - p.folds * p.stream


def scalesim_compute_cycles(p: FoldPlan) -> int:
    """SCALE-Sim 3.0's 'Total Cycles' for this layer (CALC bandwidth mode)."""
    extra = p.rows + p.cols - 2 if p.dataflow is Dataflow.OS else 2 * p.rows + p.cols - 2
    per_group = p.folds // p.gemm.groups
    return p.gemm.groups * (per_group * (p.stream + extra) - 1)


TIMINGS = {"hwsim": compute_cycles, "scalesim": scalesim_compute_cycles}
