"""A reusable cocotb driver for the tile engine: load memories, run a layer, monitor writes, read results.

Every value it reads must be resolved: X or Z (a memory word never written, an undriven or
contended net) in a control signal or in a live result lane raises UnresolvedValueError, so a
lane that was never written cannot pass for the 0 it happens to be expected to hold. Only the
lanes past the matrix edge (columns >= N in the last column tile) are never written by design;
they are read as 0. Icarus is four-state and shows X; Verilator is two-state and cannot.
"""
from __future__ import annotations

import time

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, with_timeout

from rtl.layout import Words, run_limit_cycles

SEL_A, SEL_B, SEL_PARAMS = 0, 1, 2
RESOLVED = frozenset("01LH")  # cocotb's is_resolvable: L and H are weak 0 and 1


class UnresolvedValueError(AssertionError):
    """A signal the testbench reads holds X or Z where the engine owes a value."""


def resolved(value, what: str, signed: bool = False) -> int:
    """A cocotb Logic/LogicArray value as an int; any X/Z bit is an error, never read as 0 (whatever
    COCOTB_RESOLVE_X says)."""
    if not value.is_resolvable:
        raise UnresolvedValueError(f"{what} holds X/Z: {value}")
    return value.to_signed() if signed else int(value)


def live_lanes(value, lanes: int, live: int, what: str) -> int:
    """A bus of `lanes` equal lanes (lane 0 in the low bits) as an int. Lanes 0..live-1 must be
    resolved; the lanes past them are past the matrix edge, never written, and read as 0."""
    text = str(value)  # most significant bit first
    bits, rest = divmod(len(text), lanes)
    if rest or not 0 <= live <= lanes:
        raise ValueError(f"{what}: {len(text)} bits do not hold {live} of {lanes} lanes")
    word = 0
    for lane in range(live):
        chunk = text[len(text) - (lane + 1) * bits:len(text) - lane * bits]
        if not RESOLVED.issuperset(chunk):
            raise UnresolvedValueError(f"{what}: live lane {lane} of {lanes} holds X/Z ({chunk}): "
                                       "a result the engine never wrote")
        word |= int(chunk.replace("L", "0").replace("H", "1"), 2) << (lane * bits)
    return word


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
            assert resolved(dut.ld_ready.value, "ld_ready") == 1, "engine refused a load while idle"
        dut.ld_valid.value = 0
        self.driven_cycles += len(words)
        self.driven_s += time.perf_counter() - t0

    async def run(self, config: dict[str, int], monitor: bool = False) -> tuple[int, list[tuple[int, int]]]:
        """Start one run (a layer, or one chunk of it); return (the engine's cycle count, [(cycle, column) of
        every result write] if monitored)."""
        t0 = time.perf_counter()
        dut = self.dut
        limit = run_limit_cycles(config)
        for name, value in config.items():
            port = getattr(dut, name)
            port.value = value & ((1 << len(port)) - 1)  # two's complement on the signed ports
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        events: list[tuple[int, int]] = []
        if monitor:
            t = 0
            while True:
                await FallingEdge(dut.clk)  # mid-cycle t: obs_write = the writes of the coming edge
                if resolved(dut.done.value, "done"):
                    break
                bits = resolved(dut.obs_write.value, "obs_write")
                events += [(t, j) for j in range(len(dut.obs_write)) if bits >> j & 1]
                t += 1
                assert t <= limit, f"the engine did not finish within {limit} cycles ({config})"

            self.driven_cycles += t
        else:
            await with_timeout(RisingEdge(dut.done), limit * self.period_ns, "ns")
            await FallingEdge(dut.clk)
        cycles = resolved(dut.cycles.value, "cycles")
        if monitor:
            self.driven_s += time.perf_counter() - t0
        else:
            self.free_cycles += cycles
            self.free_s += time.perf_counter() - t0
        return cycles, events

    async def read(self, live: list[int]) -> list[int]:
        """Read len(live) result beats, beat b with live[b] live lanes (Words.live_lanes). Called
        mid-cycle (after a falling edge): sample each beat, then let the rising edge take it."""
        t0 = time.perf_counter()
        dut = self.dut
        lanes = len(dut.obs_write)  # one write strobe per column: the result lanes
        beats = len(live)
        dut.out_ready.value = 1
        out = []
        while len(out) < beats:
            if resolved(dut.out_valid.value, "out_valid"):
                out.append(live_lanes(dut.out_data.value, lanes, live[len(out)], f"out_data beat {len(out)}"))
                last = resolved(dut.out_last.value, "out_last")
                assert last == (len(out) == beats), f"out_last at beat {len(out)} of {beats}"
            await FallingEdge(dut.clk)
        dut.out_ready.value = 0
        assert not resolved(dut.out_valid.value, "out_valid"), "the engine streamed more beats than the layer has"
        self.driven_cycles += beats
        self.driven_s += time.perf_counter() - t0
        return out

    async def layer(self, w: Words, monitor: bool = False, weights: bool = True, inputs: bool = True):
        """Load (weights and params unless already there, inputs unless already there), run each of the
        layer's runs (one, or the tiler's chunks), read back: (result beats, cycles per run, write events)."""
        if weights:
            await self.load(SEL_B, w.b)
            await self.load(SEL_PARAMS, w.params)
        if inputs:
            await self.load(SEL_A, w.a)
        cycles, events = [], []
        for config in w.run_configs:
            c, e = await self.run(config, monitor)
            cycles.append(c)
            events.append(e)
        return await self.read(w.live_lanes), cycles, events
