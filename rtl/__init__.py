"""rtl: the accelerator in hardware. MyHDL generators of the output-stationary PE array
(`rtl.array`), the requant unit (`rtl.requant`) and the tile engine with its operand,
parameter and result memories (`rtl.engine`), checked before conversion (`rtl.params`)
and written as Verilog (`rtl.emit`); the host-side memory layout (`rtl.layout`); cocotb
testbenches and a reusable engine driver (`rtl.tb`) run on Icarus or Verilator through
cocotb's Python runner (`rtl.simulate`), a quantized model end to end (`rtl.e2e`); Yosys
synthesis and nextpnr Fmax of the array (`rtl.synth`); and the `hwsim rtl generate | sim |
synth` subcommands (`rtl.cli`). Not built yet (the RTL issue's work): im2col address generation,
DMA, the vector unit, the sequencer and weight-/input-stationary arrays; non-GEMM layers run
in quant's integer kernels between engine runs."""
