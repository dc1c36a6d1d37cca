"""The HDL masters on slow slaves (tb_slow.v: plain Verilog, Icarus and Verilator): many wait states
before a request is taken and before it is answered still cost exactly one Python await per access;
every error response of every bus kind (SLVERR, DECERR, PSLVERR, ERR_O, RTY_O, each Avalon-MM `response`
code) raises BusError from a bridged driver and from a coroutine alike; the 64-bit bus carries a 64-bit
access in one transaction."""

from __future__ import annotations

import re
from typing import Any

import cocotb
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_time

from hwsim.cosim import Bridge, BusError, HdlApbBus, HdlAvalonBus, HdlAxiLiteBus, HdlWishboneBus, SimSpace
from mmiotk import CachePolicy, MmioResource, MmioValueError


class Counted:
    """Every wait for the master's completion, counted: an await of its trigger (a coroutine awaiting the
    bus) or a callback a bridged driver parks on; either is one wake-up of Python per transaction."""

    def __init__(self, bus: Any) -> None:
        self.trigger, self.register, self.waits = bus._done, bus._register, 0
        bus._done, bus._register = self, self._counted_register

    def __await__(self):  # type: ignore[no-untyped-def]
        self.waits += 1
        return self.trigger.__await__()

    def _counted_register(self, *args: Any) -> Any:
        self.waits += 1
        return self.register(*args)


async def reset(dut: Any, wait_states: int) -> None:
    await Timer(1, "ns")
    dut.wait_states.value = Immediate(wait_states)
    dut.rst.value = Immediate(1)
    await Timer(40, "ns")
    dut.rst.value = Immediate(0)
    await Timer(10, "ns")


async def slow(dut: Any, bus: Any, protocol: str, response: str, size: int = 0x40) -> None:
    counted = Counted(bus)
    assert bus.parks, "a bridged driver parks on the master's callback"
    regs = MmioResource(SimSpace(bus, 0, size), 0, size).create_region(0, size, "r").map(CachePolicy.UNCACHED)
    limit = 0x10 * (bus.width // 4)

    def run() -> list[int]:
        regs.write32(0x4, 0xCAFE_F00D)
        regs.write8(0x5, 0x12)
        values = [regs.read32(0x4), regs.read16(0x6)]
        dut.rst.value = 0                            # a plain write: not in the ReadOnly phase
        with pytest.raises(BusError, match=f"{protocol} read at {limit:#x}, width 32 bits: {response}"):
            regs.read32(limit)
        return values

    start = get_sim_time("ns")
    assert await Bridge().run(run) == [0xCAFE_12_0D, 0xCAFE]
    assert counted.waits == bus.transactions == 5     # however long each one took
    assert get_sim_time("ns") - start >= 5 * 7 * 10    # at least the wait states of five accesses


@cocotb.test()
async def axi4lite_slow_slave(dut):
    await reset(dut, 7)
    await slow(dut, HdlAxiLiteBus(dut.p32.m), "AXI4-Lite", "SLVERR")


@cocotb.test()
async def axi4lite_64bit_slow_slave(dut):
    await reset(dut, 7)
    bus = HdlAxiLiteBus(dut.p64.m)
    await slow(dut, bus, "AXI4-Lite", "SLVERR")
    regs = MmioResource(SimSpace(bus, 0, 0x40), 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)
    n = bus.transactions

    def wide() -> int:
        regs.write64(0x8, 0x0123_4567_89AB_CDEF)
        with pytest.raises(BusError, match="write at 0x20, width 64 bits: DECERR"):
            regs.write64(0x20, 1)
        return regs.read64(0x8)

    assert await Bridge().run(wide) == 0x0123_4567_89AB_CDEF
    assert bus.transactions - n == 3


@cocotb.test()
async def apb4_slow_slave(dut):
    await reset(dut, 7)
    await slow(dut, HdlApbBus(dut.m_apb), "APB", "PSLVERR")


@cocotb.test()
async def wishbone_classic_slow_slave(dut):
    await reset(dut, 7)
    await slow(dut, HdlWishboneBus(dut.m_wb), "Wishbone", "ERR_O")


@cocotb.test()
async def apb3_slow_slave_whole_words_and_pslverr(dut):
    await reset(dut, 7)
    bus = HdlApbBus(dut.m_apb3, apb3=True)
    counted = Counted(bus)
    regs = MmioResource(SimSpace(bus, 0, 0x40), 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)

    def run() -> int:
        regs.write32(0x8, 0x1234_5678)
        with pytest.raises(MmioValueError, match="APB3 has no byte strobes"):
            regs.write8(0x9, 0)                      # refused before the bus
        with pytest.raises(BusError, match="APB3 write at 0x10, width 32 bits: PSLVERR"):
            regs.write32(0x10, 1)
        return regs.read32(0x8)

    assert await Bridge().run(run) == 0x1234_5678
    assert counted.waits == bus.transactions == 3


@cocotb.test()
async def parked_driver_mixes_awaits_raises_to_the_task_and_unwinds_when_killed(dut):
    await reset(dut, 7)
    bus = HdlApbBus(dut.m_apb)
    space = SimSpace(bus, 0, 0x40)
    regs = MmioResource(space, 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)

    def fails() -> None:
        regs.write32(0x4, 0x55)
        start = get_sim_time("ns")
        space.sleep(1e-6)                            # an ordinary await between parked accesses
        assert get_sim_time("ns") - start >= 1000
        assert regs.read32(0x4) == 0x55
        raise KeyError("after parked accesses")

    with pytest.raises(KeyError, match="after parked accesses"):
        await Bridge().run(fails)

    unwound = []

    def forever() -> None:
        try:
            while True:
                regs.read32(0x4)
        finally:
            unwound.append(bus.transactions)

    with pytest.raises(SimTimeoutError):
        await with_timeout(Bridge().run(forever), 3000, "ns")
    assert unwound == [bus.transactions]            # unwound at once, no access after the kill
    await Timer(500, "ns")
    assert bus.transactions == unwound[0]
    assert await Bridge().run(regs.read32, 0x4) == 0x55   # and the bus still answers


async def errors_on_every_path(dut: Any, bus: Any, responses: dict[int, str]) -> None:
    """Each error response of `responses` (address: response name) raises BusError naming address, width
    and response, on reads and writes, from a bridged driver and from a coroutine awaiting the bus; the
    refused write changes nothing and the bus answers normally afterwards."""
    regs = MmioResource(SimSpace(bus, 0, 0x40), 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)
    p = re.escape(bus.protocol)
    narrow = 4 if getattr(bus, "apb3", False) else 2   # APB3 has no byte strobes

    def bridged() -> int:
        regs.write32(0x0, 0x600D_CAFE)
        for addr, response in responses.items():
            with pytest.raises(BusError, match=f"^{p} read at {addr:#x}, width 32 bits: {re.escape(response)}$"):
                regs.read32(addr)
            with pytest.raises(BusError, match=f"^{p} write at {addr + 4:#x}, width 32 bits: {re.escape(response)}$"):
                regs.write32(addr + 4, 0xBAD)
        return regs.read32(0x0)

    before = bus.error_responses
    assert await Bridge().run(bridged) == 0x600D_CAFE
    for addr, response in responses.items():
        with pytest.raises(BusError, match=f"^{p} read at {addr + 8:#x}, width 32 bits: {re.escape(response)}$") as err:
            await bus.read(addr + 8, 4)
        assert (err.value.addr, err.value.width_bytes, err.value.response) == (addr + 8, 4, response)
        with pytest.raises(BusError, match=f"^{p} write at {addr + 12:#x}, width {narrow * 8} bits: "
                                           f"{re.escape(response)}$"):
            await bus.write(addr + 12, narrow, 0xBAD)
    assert bus.error_responses - before == 4 * len(responses)
    assert await bus.read(0x0, 4) == 0x600D_CAFE


@cocotb.test()
async def wishbone_classic_err_and_rty_raise_on_every_path(dut):
    await reset(dut, 3)
    await errors_on_every_path(dut, HdlWishboneBus(dut.m_wb), {0x10: "ERR_O", 0x20: "RTY_O"})


@cocotb.test()
async def avalon_slow_slave(dut):
    await reset(dut, 7)
    await slow(dut, HdlAvalonBus(dut.m_avmm), "Avalon-MM", r"SLVERR \(SLAVEERROR\)")


@cocotb.test()
async def avalon_every_response_code_raises_on_every_path(dut):
    await reset(dut, 3)
    await errors_on_every_path(dut, HdlAvalonBus(dut.m_avmm), {0x10: "SLVERR (SLAVEERROR)",
                                                               0x20: "DECODEERROR", 0x30: "RESERVED response"})


@cocotb.test()
async def axi4lite_and_apb_errors_raise_on_every_path(dut):
    await reset(dut, 3)
    await errors_on_every_path(dut, HdlApbBus(dut.m_apb), {0x10: "PSLVERR"})
    await errors_on_every_path(dut, HdlApbBus(dut.m_apb3, apb3=True), {0x10: "PSLVERR"})
    # the slow AXI4-Lite slave answers reads SLVERR and writes DECERR
    bus = HdlAxiLiteBus(dut.p32.m)
    with pytest.raises(BusError, match=r"^AXI4-Lite read at 0x10, width 32 bits: SLVERR$"):
        await bus.read(0x10, 4)
    with pytest.raises(BusError, match=r"^AXI4-Lite write at 0x14, width 32 bits: DECERR$"):
        await bus.write(0x14, 4, 1)
