"""rtl: MyHDL generators, Verilog emission and cocotb verification (planned)."""
