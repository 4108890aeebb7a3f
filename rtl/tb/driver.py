"""A reusable cocotb driver for the tile engine: load memories, run a layer, monitor writes, read results."""
from __future__ import annotations

import time

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, with_timeout

from rtl.layout import Words

SEL_A, SEL_B, SEL_PARAMS = 0, 1, 2


def _bits(value) -> int:
    """A bus value as an int; lanes past the matrix edge were never written (X) and read as 0."""
    return int(str(value).replace("X", "0").replace("x", "0").replace("Z", "0").replace("z", "0"), 2)


class EngineDriver:
    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.period_ns = period_ns
        self.driven_cycles = 0  # cycles the Python side stepped one by one (loads, monitored runs, reads)
        self.free_cycles = 0  # cycles the simulator ran on its own (unmonitored layer runs)
        self.driven_s = 0.0  # wall seconds of each kind
        self.free_s = 0.0

    async def start(self) -> None:
        dut = self.dut
        clock = Clock(dut.clk, self.period_ns, unit="ns")
        clock.start()
        for name in ("ld_valid", "start", "out_ready"):
            getattr(dut, name).value = 0
        dut.ld_sel.value = 0
        dut.ld_addr.value = 0
        dut.ld_data.value = 0
        dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def load(self, sel: int, words: list[int]) -> None:
        t0 = time.perf_counter()
        dut = self.dut
        dut.ld_sel.value = sel
        dut.ld_valid.value = 1
        for addr, word in enumerate(words):
            dut.ld_addr.value = addr
            dut.ld_data.value = word
            await RisingEdge(dut.clk)
            assert int(dut.ld_ready.value) == 1, "engine refused a load while idle"
        dut.ld_valid.value = 0
        self.driven_cycles += len(words)
        self.driven_s += time.perf_counter() - t0

    async def run(self, w: Words, monitor: bool = False) -> tuple[int, list[tuple[int, int]]]:
        """Start a layer; return (the engine's cycle count, [(cycle, column) of every result write] if monitored)."""
        t0 = time.perf_counter()
        dut = self.dut
        limit = w.limit_cycles
        for name, value in w.config.items():
            getattr(dut, name).value = value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        events: list[tuple[int, int]] = []
        if monitor:
            t = 0
            while True:
                await FallingEdge(dut.clk)  # mid-cycle t: obs_write = the writes of the coming edge
                if int(dut.done.value):
                    break
                bits = int(dut.obs_write.value)
                events += [(t, j) for j in range(len(dut.obs_write)) if bits >> j & 1]
                t += 1
                assert t <= limit, f"the engine did not finish within {limit} cycles ({w.config})"

            self.driven_cycles += t
        else:
            await with_timeout(RisingEdge(dut.done), limit * self.period_ns, "ns")
            await FallingEdge(dut.clk)
        cycles = int(dut.cycles.value)
        if monitor:
            self.driven_s += time.perf_counter() - t0
        else:
            self.free_cycles += cycles
            self.free_s += time.perf_counter() - t0
        return cycles, events

    async def read(self, beats: int) -> list[int]:
        """Called mid-cycle (after a falling edge): sample each beat, then let the rising edge take it."""
        t0 = time.perf_counter()
        dut = self.dut
        dut.out_ready.value = 1
        out = []
        while len(out) < beats:
            if int(dut.out_valid.value):
                out.append(_bits(dut.out_data.value))
                last = int(dut.out_last.value)
                assert last == (len(out) == beats), f"out_last at beat {len(out)} of {beats}"
            await FallingEdge(dut.clk)
        dut.out_ready.value = 0
        assert not int(dut.out_valid.value), "the engine streamed more beats than the layer has"
        self.driven_cycles += beats
        self.driven_s += time.perf_counter() - t0
        return out

    async def layer(self, w: Words, monitor: bool = False, weights: bool = True, inputs: bool = True):
        """Load (weights and params unless already there, inputs unless already there), run, read back."""
        if weights:
            await self.load(SEL_B, w.b)
            await self.load(SEL_PARAMS, w.params)
        if inputs:
            await self.load(SEL_A, w.a)
        cycles, events = await self.run(w, monitor)
        return await self.read(w.beats), cycles, events
