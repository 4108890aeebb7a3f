"""Parameters of the generated hardware, validated before any Verilog is written.

MyHDL conversion bakes parameters into the netlist, so every distinct
`ArrayParams` / `EngineParams` is one Verilog file (its `tag` names it).

Size limits. MyHDL elaborates every PE and every memory word as Python objects before it
writes a line, so generation time and memory grow with the hardware (measured with MyHDL
0.11 on the 2-core development VM): about 128 KiB and 45 ms per PE, and about 4 KiB per
memory word (a, b and parameter memories, plus one result bank per column). The limits
below (MAX_PES, about 0.5 GiB; MAX_MEMORY_WORDS, about 2 GiB) bound one generation to about
2.5 GiB; past them the parameters are refused up front with the size they would need, instead
of the generator exhausting the machine.
"""
from __future__ import annotations

from dataclasses import dataclass

from hwsim.config import check_acc_bits
from quant.errors import ConfigError

SHIFT_BITS = 8  # signed right shift of the requant multiplier (negative = left shift)
M0_BITS = 32  # unsigned mantissa in [0, 2^31)
BIAS_BITS = 32
PARAM_BITS = BIAS_BITS + M0_BITS + SHIFT_BITS  # one word of the per-channel parameter memory
COUNT_BITS = 20  # width of the M/K/N/tile-count configuration registers
DATAFLOWS = ("os", "ws")
WS_MIN_ROWS = 3  # the accumulator memory's read and output register plus its write: 3 cycles per address
MAX_SIDE = 256  # rows or cols
MAX_ACC_BITS = 48  # PE accumulator register (the requant unit takes at most 32)
MAX_PES = 4096  # rows x cols: a 64x64 array converts in about 3 min and 0.5 GiB
PE_CONVERT_BYTES = 128 << 10  # measured MyHDL memory per PE while converting
MAX_MEMORY_WORDS = 1 << 19  # all engine memory words together: about 2 GiB to convert
WORD_CONVERT_BYTES = 4 << 10  # measured MyHDL memory per memory word while converting


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 30):,.1f} GiB"


def word_bytes(rows: int) -> int:
    """Bytes per raw-input word of a WS engine's hardware im2col: the next power of two >= R."""
    return 1 << max(0, (rows - 1).bit_length())


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
    dataflow: str = "os"  # "os" (outputs stay in the PEs) or "ws" (weights stay; partial sums flow down)

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(f"the RTL builds the dataflows {', '.join(DATAFLOWS)}, not {self.dataflow!r}")
        if self.dataflow == "ws" and self.rows < WS_MIN_ROWS:
            raise ConfigError(f"a weight-stationary engine needs at least {WS_MIN_ROWS} rows (folds of one "
                              f"output row P = max(M, rows) cycles apart must not overtake the accumulator "
                              f"memory's read-modify-write), not {self.rows}")
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"array {name} must be a positive integer, not {value!r}")
        if self.rows > MAX_SIDE or self.cols > MAX_SIDE:
            raise ConfigError(f"array {self.rows}x{self.cols} is larger than the generator's "
                              f"{MAX_SIDE}x{MAX_SIDE} limit")
        pes = self.rows * self.cols
        if pes > MAX_PES:
            raise ConfigError(f"array {self.rows}x{self.cols} has {pes:,} PEs and would need about "
                              f"{_gib(pes * PE_CONVERT_BYTES)} to generate; the generator's limit is "
                              f"{MAX_PES:,} PEs (e.g. 64x64)")
        if not isinstance(self.data_bits, int) or not 2 <= self.data_bits <= 16:
            raise ConfigError(f"data_bits must be an integer in 2..16, not {self.data_bits!r}")
        check_acc_bits(self.acc_bits, self.data_bits)  # the one rule, the same that `hwsim map` applies
        if self.acc_bits > MAX_ACC_BITS:
            raise ConfigError(f"acc_bits = {self.acc_bits}: the generated PE array holds accumulators of "
                              f"at most {MAX_ACC_BITS} bits")

    @property
    def tag(self) -> str:
        flow = "" if self.dataflow == "os" else f"_{self.dataflow}"
        return f"{self.rows}x{self.cols}_d{self.data_bits}_a{self.acc_bits}{flow}"

    @property
    def ws(self) -> bool:
        return self.dataflow == "ws"

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
    raw_depth: int = 0  # WS: words per raw-input memory (rtl.im2col: 2 x banks of them)
    acc_depth: int = 0  # words per accumulator memory (one per column: a run's output tile); 0: out_depth
    banks: int = 8  # WS: raw-input banks, a power of two: the tallest kernel the hardware im2col reads

    def __post_init__(self) -> None:
        ws = self.array.ws
        names = (("raw_depth",) if ws else ("a_depth",)) + ("b_depth", "out_depth", "param_depth")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value > 1 << COUNT_BITS:
                raise ConfigError(f"{name} must be an integer in 1..{1 << COUNT_BITS}, not {value!r}")
        if ws:
            if self.a_depth != 0:
                raise ConfigError("a weight-stationary engine reads its inputs through the hardware im2col: "
                                  "a_depth must be 0 (raw_depth sizes its memories)")
            if not isinstance(self.banks, int) or self.banks & (self.banks - 1) or not 2 <= self.banks <= 64:
                raise ConfigError(f"banks must be a power of two in 2..64, not {self.banks!r}")
        if self.array.acc_bits > 32:
            raise ConfigError(f"the requant unit takes accumulators of at most 32 bits, not {self.array.acc_bits}")
        words = self.memory_words
        if words > MAX_MEMORY_WORDS:
            a = (f"raw {2 * self.banks} x {self.raw_depth:,}" if self.array.ws else f"a {self.a_depth:,}")
            raise ConfigError(f"engine memories of {words:,} words ({a}, b {self.b_depth:,}, "
                              f"params {self.param_depth:,}, results {self.array.cols} x {self.out_depth:,}, "
                              f"accumulators {self.array.cols} x {self.acc_words:,}) "
                              f"would need about {_gib(words * WORD_CONVERT_BYTES)} to generate; the "
                              f"generator's limit is {MAX_MEMORY_WORDS:,} words")

    @classmethod
    def from_config(cls, cfg, banks: int = 8) -> EngineParams:
        """The WS engine whose memories are the config's SRAMs, byte for byte (rtl.emit.memory_bytes reads
        them back from the generated Verilog): ifmap = the im2col's raw banks (raw input rows, as hwsim's
        ifmap SRAM holds them), filter = B words + channel parameters (1/64 of it, at least a column's
        worth), acc = one accumulator memory per column (acc_bits-wide partial sums), ofmap = one result
        bank per column. Each holds whole layers until the DMA streams tiles (issue 16)."""
        ap = ArrayParams(cfg.rows, cfg.cols, acc_bits=cfg.acc_bits, dataflow=cfg.dataflow.value)
        if not ap.ws:
            raise ConfigError("memories sized from the config need the weight-stationary engine (--dataflow ws): its "
                              "ifmap memory holds raw input rows as hwsim's ifmap SRAM does; the OS engine holds "
                              "the host's im2col expansion")
        R, C = ap.rows, ap.cols
        wb = word_bytes(R)
        ifmap, filt, acc, ofmap = (cfg.sram_bytes(b) for b in ("ifmap", "filter", "acc", "ofmap"))
        acc_bytes = -(-ap.acc_bits // 8)
        param_depth = max(C, filt // 64 // C * C)
        sizes = {"raw_depth": (ifmap, 2 * banks * wb), "b_depth": (filt - PARAM_BITS // 8 * param_depth, C),
                 "acc_depth": (acc, acc_bytes * C), "out_depth": (ofmap, C)}
        depth = {}
        for name, (total, word) in sizes.items():
            if total < word or total % word:
                raise ConfigError(f"{name.removesuffix('_depth')} memory: {total:,} B is not a whole number of "
                                  f"{word}-byte words for a {R}x{C} engine")
            depth[name] = total // word
        return cls(ap, a_depth=0, param_depth=param_depth, banks=banks, **depth)

    @property
    def acc_words(self) -> int:
        return self.acc_depth or self.out_depth

    @property
    def raw_bank_words(self) -> int:
        """The load port's address stride between raw banks (WS): 2 x raw_depth rounded up to a power of two."""
        return 1 << (2 * self.raw_depth - 1).bit_length()

    @property
    def memory_words(self) -> int:
        """Words of all the engine's memories: operands, parameters, a result bank and an accumulator memory per
        column."""
        raw = 2 * self.banks * self.raw_depth if self.array.ws else 0
        columns = self.array.cols * (self.out_depth + self.acc_words)
        return self.a_depth + raw + self.b_depth + self.param_depth + columns

    @property
    def load_bits(self) -> int:
        a = self.array
        raw = word_bytes(a.rows) * a.data_bits
        return max(a.rows * a.data_bits, a.cols * a.data_bits, PARAM_BITS, raw)

    @property
    def tag(self) -> str:
        a = f"r{self.raw_depth}x{2 * self.banks}" if self.array.ws else f"a{self.a_depth}"
        acc = f"_c{self.acc_depth}" if self.acc_words != self.out_depth else ""
        return f"{self.array.tag}_{a}_b{self.b_depth}_o{self.out_depth}{acc}_p{self.param_depth}"
