"""cocotb testbenches (loaded by the simulator through cocotb_tools.runner, not by pytest)."""
