"""Energy per inference from hwsim's access counts and a cited per-access table. Pure functions.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
45 nm at 0.9 V (the table Eyeriss, SCALE-Sim users and most accelerator papers quote):

    8-bit integer multiply  0.2 pJ        8-bit add   0.03 pJ       32-bit add  0.1 pJ
    SRAM, 64-bit read:  8 KB 10 pJ,  32 KB 20 pJ,  1 MB 100 pJ
    DRAM, 64-bit access: 1.3-2.6 nJ  (we take the midpoint, 1.95 nJ)

How hwsim uses it:
  * a MAC is one b-bit multiply plus one 32-bit accumulate; multiplier energy scales with the
    square of the operand width (an array multiplier's partial products): 0.2 * (b / 8)^2 pJ.
  * a vector-unit element-op (pool compare/add, activation, add) is one 8-bit add; a layer's
    element-ops are counted as lanes x its vector cycles (idle lanes of the last cycle included).
  * SRAM energy per byte is interpolated log-log in the buffer's size between the three
    points (and extrapolated outside them); every byte read from or written to a buffer pays it.
  * DRAM costs 1.95 nJ / 8 B per byte moved.
Leakage, clock tree, control and wires are not modelled: this is the dynamic energy of
arithmetic and data movement, for comparing design points, not a sign-off number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.analytical import LayerResult, MapResult
from hwsim.config import AcceleratorConfig

MULT8_PJ = 0.2
ADD8_PJ = 0.03
ADD32_PJ = 0.1
SRAM_64BIT_READ_PJ = ((8, 10.0), (32, 20.0), (1024, 100.0))  # (KiB, pJ per 64-bit access)
DRAM_64BIT_PJ = 1950.0


def mac_pj(bits: int = 8) -> float:
    return MULT8_PJ * (bits / 8) ** 2 + ADD32_PJ


def sram_pj_per_byte(kib: float) -> float:
    """Log-log interpolation of the 64-bit access energy in the buffer size, per byte."""
    pts = SRAM_64BIT_READ_PJ
    if kib <= pts[1][0]:
        (k0, e0), (k1, e1) = pts[0], pts[1]
    else:
        (k0, e0), (k1, e1) = pts[1], pts[2]
    slope = math.log(e1 / e0) / math.log(k1 / k0)
    return e0 * (kib / k0) ** slope / 8


def dram_pj_per_byte() -> float:
    return DRAM_64BIT_PJ / 8


@dataclass(frozen=True)
class Energy:
    mac_pj: float
    vector_pj: float
    sram_pj: float
    dram_pj: float

    @property
    def total_pj(self) -> float:
        return self.mac_pj + self.vector_pj + self.sram_pj + self.dram_pj

    def to_dict(self) -> dict:
        return {"mac_uj": self.mac_pj / 1e6, "vector_uj": self.vector_pj / 1e6, "sram_uj": self.sram_pj / 1e6,
                "dram_uj": self.dram_pj / 1e6, "total_uj": self.total_pj / 1e6}


def layer_energy(layer: LayerResult, cfg: AcceleratorConfig, bits: int = 8) -> Energy:
    """One layer's dynamic energy; vector element-ops are counted as lanes x cycles."""
    t = layer.traffic
    sram = sum((getattr(t, f"{b}_sram_read") + getattr(t, f"{b}_sram_write")) *
               sram_pj_per_byte(getattr(cfg, f"{b}_sram_kib")) for b in ("ifmap", "filter", "ofmap"))
    return Energy(mac_pj=layer.macs * mac_pj(bits) if layer.unit == "array" else 0.0,
                  vector_pj=layer.compute_cycles * cfg.vector_lanes * ADD8_PJ if layer.unit == "vector" else 0.0,
                  sram_pj=sram, dram_pj=(layer.dram_read_bytes + layer.dram_write_bytes) * dram_pj_per_byte())


def inference_energy(result: MapResult, bits: int = 8) -> Energy:
    """Dynamic energy of one mapped run (all `result.batch` images) with `bits`-bit operands."""
    parts = [layer_energy(layer, result.config, bits) for layer in result.layers]
    return Energy(*(sum(getattr(p, f) for p in parts) for f in ("mac_pj", "vector_pj", "sram_pj", "dram_pj")))
