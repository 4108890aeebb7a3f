"""Energy per inference from hwsim's access counts, its latency and cited per-access and leakage
tables. Pure functions.

Dynamic energy. M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, 45 nm at 0.9 V (the table Eyeriss, SCALE-Sim users and most accelerator papers quote):

    8-bit integer multiply  0.2 pJ        8-bit add   0.03 pJ       32-bit add  0.1 pJ
    SRAM, 64-bit read:  8 KB 10 pJ,  32 KB 20 pJ,  1 MB 100 pJ
    DRAM, 64-bit access: 1.3-2.6 nJ  (we take the midpoint, 1.95 nJ)

PE registers and PE leakage. Aladdin's 40 nm tables, 1 ns cycle (Y. S. Shao et al., "Aladdin: a
pre-RTL, power-performance accelerator simulator", ISCA 2014), as Accelergy carries them:
Accelergy-Project/hwcomponents-library, hwcomponents_library/library/aladdin.py, and the earlier
Accelergy Aladdin plug-in's data/*.csv (repository tanner-andrulis/accelergy-aladdin-plug-in):

    register (1 bit, 1 stage)  0.009 pJ per bit read or written (AladdinRegister; reg.csv)
                               leakage 7e-05 mW per bit (reg.csv; aladdin.py lists 0)
    32x32-bit multiplier       leakage 0.08 mW  (AladdinMultiplier leak_power 8.00e-5 W; multiplier.csv)
    32-bit adder               leakage 0.0024 mW (AladdinAdder leak_power 2.40e-6 W)

SRAM leakage. CACTI 7 (built from the source Accelergy ships in hwcomponents-cacti 1.0.40), run at 45 nm with
Accelergy's default CACTI settings (its default_cfg.cfg: itrs-lstp cells and peripherals, 300 K,
no power gating), a "ram" of one bank, one read-write port, 64-bit block and bus; "Total leakage
power of a bank":

    8 KiB 1.715e-4 mW    32 KiB 6.367e-4 mW    64 KiB 1.166e-3 mW    1 MiB 1.765e-2 mW
    i.e. 17-21 nW per KiB; we take the 64 KiB point, 1.822e-5 mW (18.2 nW) per KiB.

(The same runs give 6.1/17.0/93.5 pJ per 64-bit read at 8 KB/32 KB/1 MB, close to Horowitz's
10/20/100 pJ. Caveat: leakage depends on the transistor flavour far more than on anything else;
the same CACTI runs with itrs-lop cells give 4.6e-3 mW per KiB and with itrs-hp 0.46-0.54 mW
per KiB, 250x and 25,000x the figure used. We follow the Accelergy/Timeloop default.)

How hwsim uses them:
  * a MAC is one b-bit multiply plus one 32-bit accumulate; multiplier energy scales with the
    square of the operand width (an array multiplier's partial products): 0.2 * (b / 8)^2 pJ.
  * PE registers: each MAC latches and reads its two b-bit operands (the systolic pipeline
    registers that feed the multiplier and forward the operand) and reads and writes its 32-bit
    accumulator: 2 * (2b) + 2 * 32 register bits, at 0.009 pJ a bit (0.864 pJ per 8-bit MAC).
    The same count is used for every dataflow (under WS the moving partial sum replaces the
    moving weight). Aladdin's arithmetic is about 2x Horowitz's (its 32-bit add is 0.21 pJ), so
    read this part as an upper estimate next to the MAC.
  * a vector-unit element-op (pool compare/add, activation, add) is one 8-bit add; a layer's
    element-ops are counted as lanes x its vector cycles (idle lanes of the last cycle included).
  * SRAM energy per byte is interpolated log-log in the buffer's size between the three
    points (and extrapolated outside them); every byte read from or written to a buffer pays it.
  * DRAM costs 1.95 nJ / 8 B per byte moved.
  * leakage: every PE (a b-bit multiplier, leakage scaled by (b / 32)^2 as Accelergy scales
    Aladdin's multiplier, a 32-bit adder and its 2b + 32 register bits; 10.8 uW at b = 8) and
    every KiB of the four SRAM buffers leak for as long as the layer runs, total_cycles / clock,
    so a layer's leakage is its share of the run and the run's is power x `latency_s`.
    Aladdin's 40 nm figures are used as they are for 45 nm (no node scaling).
Clock tree, control, wires and the vector unit's leakage are not modelled: this is for comparing
design points, not a sign-off number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.analytical import LayerResult, MapResult
from hwsim.config import AcceleratorConfig
from hwsim.memory import Traffic

MULT8_PJ = 0.2
ADD8_PJ = 0.03
ADD32_PJ = 0.1
SRAM_64BIT_READ_PJ = ((8, 10.0), (32, 20.0), (1024, 100.0))  # (KiB, pJ per 64-bit access)
DRAM_64BIT_PJ = 1950.0
REG_PJ_PER_BIT = 0.009  # Aladdin 40 nm register, per bit read or written
ACC_REG_BITS = 32
MULT32_LEAK_W = 8.00e-5  # Aladdin 40 nm 32x32-bit multiplier
ADD32_LEAK_W = 2.40e-6  # Aladdin 40 nm 32-bit adder
REG_LEAK_W_PER_BIT = 7e-8  # Aladdin 40 nm register, 7e-05 mW per bit
SRAM_LEAK_W_PER_KIB = 1.822e-8  # CACTI 7, 45 nm, itrs-lstp, 64 KiB bank: 1.166e-3 mW / 64


def mac_pj(bits: int = 8) -> float:
    return MULT8_PJ * (bits / 8) ** 2 + ADD32_PJ


def register_bits_per_mac(bits: int = 8) -> int:
    """Two b-bit operand registers written and read, the accumulator read and written."""
    return 2 * (2 * bits) + 2 * ACC_REG_BITS


def register_pj_per_mac(bits: int = 8) -> float:
    return register_bits_per_mac(bits) * REG_PJ_PER_BIT


def pe_leak_w(bits: int = 8) -> float:
    """Static power of one PE: a b-bit multiplier, a 32-bit adder, 2b + 32 register bits."""
    return MULT32_LEAK_W * (bits / 32) ** 2 + ADD32_LEAK_W + REG_LEAK_W_PER_BIT * (2 * bits + ACC_REG_BITS)


def leak_w(cfg: AcceleratorConfig, bits: int = 8) -> float:
    """Static power of the accelerator: its PEs and every KiB of its SRAM buffers."""
    kib = sum(getattr(cfg, f"{b}_sram_kib") for b in Traffic.BUFFERS)
    return cfg.pes * pe_leak_w(bits) + kib * SRAM_LEAK_W_PER_KIB


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


PARTS = ("mac_pj", "register_pj", "vector_pj", "sram_pj", "dram_pj", "leakage_pj")


@dataclass(frozen=True)
class Energy:
    mac_pj: float
    vector_pj: float
    sram_pj: float
    dram_pj: float
    register_pj: float = 0.0
    leakage_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        return sum(getattr(self, p) for p in PARTS)

    def to_dict(self) -> dict:
        return {**{f"{p[:-3]}_uj": getattr(self, p) / 1e6 for p in PARTS}, "total_uj": self.total_pj / 1e6}


def layer_energy(layer: LayerResult, cfg: AcceleratorConfig, bits: int = 8) -> Energy:
    """One layer's energy: dynamic parts from its counts (vector element-ops as lanes x cycles),
    leakage from the whole accelerator's static power over the layer's total_cycles."""
    t = layer.traffic
    sram = sum((getattr(t, f"{b}_sram_read") + getattr(t, f"{b}_sram_write")) *
               sram_pj_per_byte(getattr(cfg, f"{b}_sram_kib")) for b in Traffic.BUFFERS)
    array = layer.unit == "array"
    return Energy(mac_pj=layer.macs * mac_pj(bits) if array else 0.0,
                  vector_pj=(layer.compute_cycles if layer.unit == "vector" else layer.pool_cycles)
                  * cfg.vector_lanes * ADD8_PJ,  # an array layer's vector work: a pool fused on its stores
                  sram_pj=sram, dram_pj=(layer.dram_read_bytes + layer.dram_write_bytes) * dram_pj_per_byte(),
                  register_pj=layer.macs * register_pj_per_mac(bits) if array else 0.0,
                  leakage_pj=leak_w(cfg, bits) * layer.total_cycles / (cfg.clock_mhz * 1e6) * 1e12)


def inference_energy(result: MapResult, bits: int = 8) -> Energy:
    """Energy of one mapped run (all `result.batch` images) with `bits`-bit operands; its leakage is
    leak_w(config) x result.latency_s (the layers' shares add up to it)."""
    parts = [layer_energy(layer, result.config, bits) for layer in result.layers]
    return Energy(**{f: sum(getattr(p, f) for p in parts) for f in PARTS})
