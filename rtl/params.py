"""Parameters of the generated hardware, validated before any Verilog is written.

MyHDL conversion bakes parameters into the netlist, so every distinct
`ArrayParams` / `EngineParams` is one Verilog file (its `tag` names it).
"""
from __future__ import annotations

from dataclasses import dataclass

from quant.errors import ConfigError

SHIFT_BITS = 8  # signed right shift of the requant multiplier (negative = left shift)
M0_BITS = 32  # unsigned mantissa in [0, 2^31)
BIAS_BITS = 32
PARAM_BITS = BIAS_BITS + M0_BITS + SHIFT_BITS  # one word of the per-channel parameter memory
COUNT_BITS = 20  # width of the M/K/N/tile-count configuration registers


def product_bits(data_bits: int) -> int:
    """Signed bits that hold any product of two signed data_bits values (-2^(d-1))^2 = 2^(2d-2)."""
    return 2 * data_bits


def required_acc_bits(k: int, data_bits: int = 8) -> int:
    """Signed accumulator bits that hold any sum of k products, whatever the operands."""
    if k < 1:
        raise ConfigError(f"reduction length K must be a positive integer, not {k}")
    # the largest sum is k * (-2^(d-1))^2 = k * 2^(2d-2); a signed register needs one bit more
    return (k << (2 * data_bits - 2)).bit_length() + 1


@dataclass(frozen=True)
class ArrayParams:
    """An R x C output-stationary PE grid with input skew and column drain."""
    rows: int
    cols: int
    data_bits: int = 8
    acc_bits: int = 32

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"array {name} must be a positive integer, not {value!r}")
        if self.rows > 256 or self.cols > 256:
            raise ConfigError(f"array {self.rows}x{self.cols} is larger than the generator's 256x256 limit")
        if not isinstance(self.data_bits, int) or not 2 <= self.data_bits <= 16:
            raise ConfigError(f"data_bits must be an integer in 2..16, not {self.data_bits!r}")
        need = product_bits(self.data_bits)
        if not isinstance(self.acc_bits, int) or not need <= self.acc_bits <= 48:
            raise ConfigError(f"acc_bits must be an integer in {need}..48 to hold a {self.data_bits}-bit "
                              f"product, not {self.acc_bits!r}")

    @property
    def tag(self) -> str:
        return f"{self.rows}x{self.cols}_d{self.data_bits}_a{self.acc_bits}"

    def check_reduction(self, k: int, layer: str = "layer") -> None:
        """An accumulator too narrow for K is refused before anything is generated."""
        need = required_acc_bits(k, self.data_bits)
        if need > self.acc_bits:
            raise ConfigError(f"{layer}: K = {k} needs a {need}-bit accumulator in the worst case; "
                              f"the array has {self.acc_bits} bits (raise --acc-bits)")


@dataclass(frozen=True)
class EngineParams:
    """The tile engine: the array plus operand, parameter and result memories (depths in words)."""
    array: ArrayParams
    a_depth: int  # words of R lanes: row tiles x K per group
    b_depth: int  # words of C lanes: column tiles x K per group
    out_depth: int  # words per result bank (one bank per column): groups x column tiles x M
    param_depth: int  # output channels

    def __post_init__(self) -> None:
        for name in ("a_depth", "b_depth", "out_depth", "param_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value > 1 << COUNT_BITS:
                raise ConfigError(f"{name} must be an integer in 1..{1 << COUNT_BITS}, not {value!r}")
        if self.array.acc_bits > 32:
            raise ConfigError(f"the requant unit takes accumulators of at most 32 bits, not {self.array.acc_bits}")

    @property
    def load_bits(self) -> int:
        a = self.array
        return max(a.rows * a.data_bits, a.cols * a.data_bits, PARAM_BITS)

    @property
    def tag(self) -> str:
        return f"{self.array.tag}_a{self.a_depth}_b{self.b_depth}_o{self.out_depth}_p{self.param_depth}"
