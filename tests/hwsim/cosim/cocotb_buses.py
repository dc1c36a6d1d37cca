"""Every bus master on PeakRDL-regblock register blocks (tb_byod_regs.sv, Verilator, HDL clock).

Runs inside the simulator. Each test drives one bus kind through a SimSpace and the bridge, as a driver
would: register values, byte lanes, error responses (unmapped, write to RO, read of WO) raising BusError
with address, width and response, and no access returning in the ReadOnly phase (a plain signal write
after every access would raise there).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import First, Timer

from hwsim.cosim import (
    AxiLiteMasterBus,
    Bridge,
    BusError,
    HdlApbBus,
    HdlAvalonBus,
    HdlAxiLiteBus,
    HdlWishboneBus,
    SimBus,
    SimInterrupt,
    SimSpace,
)
from hwsim.cosim.ext_buses import ApbMasterBus, AvalonMasterBus, WishboneMasterBus
from mmiotk import AccessError, CachePolicy, IrqTimeoutError, MmioBuffer, MmioResource, MmioValueError, regmap

RDL = Path(__file__).resolve().parent / "rtl" / "byod_regs.rdl"
BASE = 0x4000_0000          # where each block sits in its SimSpace (the bus sees offsets from 0)
SIZE = 0x20
SCRATCH, IDENT, STATUS, EVENT, CTRL, CMD, SCRATCH2, UNMAPPED = range(0, 0x20, 4)


async def reset(dut: Any) -> None:
    await Timer(1, "ns")
    dut.rst.value = Immediate(1)
    await Timer(40, "ns")
    dut.rst.value = Immediate(0)
    await Timer(10, "ns")


def mapped(bus: SimBus, base: int = BASE, size: int = SIZE) -> MmioBuffer:
    space = SimSpace(bus, base, size, name="byod")
    return MmioResource(space, base, size).create_region(base, size, "regs").map(CachePolicy.UNCACHED)


async def registers_and_errors(dut: Any, bus: Any, ident: int, protocol: str, *, bytes_ok: bool = True) -> None:
    """The register semantics every bus must carry, and its error responses."""
    regs = mapped(bus)

    def check() -> list[str]:
        regs.write32(SCRATCH, 0x1234_5678)
        assert regs.read32(SCRATCH) == 0x1234_5678
        dut.ev_set.value = 0            # a plain write: raises if the access returned in ReadOnly
        if bytes_ok:
            regs.write8(SCRATCH + 1, 0xAB)
            regs.write16(SCRATCH + 2, 0xCDEF)
            assert regs.read32(SCRATCH) == 0xCDEF_AB78
            assert regs.read8(SCRATCH + 3) == 0xCD and regs.read16(SCRATCH + 2) == 0xCDEF
        assert regs.read32(IDENT) == ident
        assert regs.read64(SCRATCH) == regs.read32(SCRATCH) | ident << 32   # two words, low first
        seen = []
        for op in (lambda: regs.read32(UNMAPPED), lambda: regs.write32(UNMAPPED, 1),
                   lambda: regs.write32(IDENT, 1), lambda: regs.read32(CMD)):
            with pytest.raises(BusError) as info:
                op()
            seen.append(str(info.value))
            dut.ev_set.value = 0
        regs.write32(SCRATCH2, 7)                   # the bus still works after errors
        assert regs.read32(SCRATCH2) == 7
        return seen

    errors = await Bridge().run(check)
    assert errors[0].startswith(f"{protocol} read at {BASE + UNMAPPED:#x}, width 32 bits: "), errors
    assert errors[1].startswith(f"{protocol} write at {BASE + UNMAPPED:#x}, width 32 bits: "), errors
    assert f"write at {BASE + IDENT:#x}" in errors[2] and f"read at {BASE + CMD:#x}" in errors[3]
    assert bus.error_responses == 4


@cocotb.test()
async def hdl_axi4lite_registers_and_slverr(dut):
    await reset(dut)
    bus = HdlAxiLiteBus(dut.h.m_axil)
    await registers_and_errors(dut, bus, 0x1D00_0001, "AXI4-Lite")
    before = bus.transactions
    start = cocotb.utils.get_sim_time("ns")
    for _ in range(20):
        await bus.read(BASE + SCRATCH)     # regblock answers a cycle late: still one await each
    assert bus.transactions - before == 20
    assert cocotb.utils.get_sim_time("ns") - start <= 20 * 3 * 10


@cocotb.test()
async def hdl_axi4lite_64bit_bus_takes_a_64bit_access_in_one_transaction(dut):
    await reset(dut)
    bus = HdlAxiLiteBus(dut.h.m_axil64)
    assert bus.width == 8
    regs = mapped(bus, size=0x10)

    def check() -> None:
        regs.write64(0, 0x1122_3344_5566_7788)
        assert bus.transactions == 1
        assert regs.read64(0) == 0x1122_3344_5566_7788
        assert bus.transactions == 2
        regs.write32(4, 0xAABB_CCDD)                # upper lanes only
        regs.write8(0, 0x00)
        assert regs.read64(0) == 0xAABB_CCDD_5566_7700
        assert regs.read32(4) == 0xAABB_CCDD and regs.read16(2) == 0x5566
        assert regs.read64(8) == 0x0123_4567_89AB_CDEF
        with pytest.raises(BusError, match="width 64 bits: SLVERR"):
            regs.write64(8, 1)                      # RO

    await Bridge().run(check)


@cocotb.test()
async def hdl_apb4_registers_and_pslverr(dut):
    await reset(dut)
    await registers_and_errors(dut, HdlApbBus(dut.h.m_apb4), 0x1D00_0002, "APB")


@cocotb.test()
async def hdl_apb3_whole_words_and_pslverr(dut):
    await reset(dut)
    bus = HdlApbBus(dut.h.m_apb3, apb3=True)
    await registers_and_errors(dut, bus, 0x1D00_0003, "APB3", bytes_ok=False)
    regs = mapped(bus)
    before = bus.transactions
    with pytest.raises(MmioValueError, match="APB3 has no byte strobes"):
        await Bridge().run(regs.write8, SCRATCH, 1)
    assert bus.transactions == before                # refused before the bus


@cocotb.test()
async def hdl_wishbone_pipelined_registers_and_err(dut):
    await reset(dut)
    await registers_and_errors(dut, HdlWishboneBus(dut.h.m_wb), 0x1D00_0004, "Wishbone")


@cocotb.test()
async def hdl_avalon_registers_and_slverr(dut):
    await reset(dut)
    await registers_and_errors(dut, HdlAvalonBus(dut.h.m_avmm), 0x1D00_0005, "Avalon-MM")


@cocotb.test()
async def regmap_driver_semantics_on_the_rtl(dut):
    """W1C is not cleared by modify, read-to-clear reads only when asked, enums decode, RO/WO misuse is
    refused before any bus access — on the regblock RTL through the fast path."""
    await reset(dut)
    bus = HdlAxiLiteBus(dut.h.m_axil)
    rmap = regmap.load(RDL)
    r = rmap.bind(mapped(bus))

    def check() -> None:
        assert int(r.STATUS.read().PEND) == 0xA5
        r.CTRL.modify(MODE="FAST", LEN=3)
        assert r.CTRL.read().MODE.name == "FAST" and int(r.CTRL.read().LEN) == 3
        r.CTRL.modify(LEN=9)                         # a read-modify-write keeps MODE
        assert r.CTRL.read().MODE.name == "FAST"
        r.STATUS.write(PEND=0x05)                    # W1C: clears bits 0 and 2
        assert int(r.STATUS.read().PEND) == 0xA0
        n = bus.transactions
        with pytest.raises(AccessError):
            r.IDENT.write(ID=1)                      # RO
        with pytest.raises(AccessError):
            r.CMD.read()                             # WO
        with pytest.raises(AccessError):
            r.EVENT.modify(SEEN=0)                   # RC: its read would clear
        assert bus.transactions == n                 # nothing reached the bus
        assert int(r.IDENT.read().ID) == 0x1D00_0001

    await Bridge().run(check)
    dut.ev_set.value = Immediate(1)
    await Timer(20, "ns")
    dut.ev_set.value = Immediate(0)
    await Timer(20, "ns")

    def read_to_clear() -> tuple[int, int]:
        first = int(r.EVENT.read().SEEN)
        return first, int(r.EVENT.read().SEEN)

    assert await Bridge().run(read_to_clear) == (1, 0)


async def bounded(coro: Any, sim_ns: int, wall_s: float = 20.0) -> Any:
    """Await `coro` for at most `sim_ns` of simulated time; None when it did not finish."""
    task = cocotb.start_soon(coro)
    t0 = time.monotonic()
    while not task.done():
        await First(task, Timer(1000, "ns"))
        sim_ns -= 1000
        if sim_ns <= 0 or time.monotonic() - t0 > wall_s:
            task.cancel()
            return None
    return task.result()


@cocotb.test()
async def cocotbext_axi4lite_registers_and_slverr(dut):
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    await reset(dut)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "ext_axil"), dut.clk, dut.rst)
    bus = AxiLiteMasterBus(master, base=BASE)
    await registers_and_errors(dut, bus, 0x1E00_0001, "AXI4-Lite")
    with pytest.raises(MmioValueError, match="outside the master's 5-bit window"):
        await Bridge().run(mapped(bus, size=0x40).read32, 0x20)   # no silent aliasing


@cocotb.test()
async def cocotbext_apb4_registers_and_pslverr(dut):
    from cocotbext.apb import ApbBus, ApbMaster

    await reset(dut)
    master = ApbMaster(ApbBus.from_prefix(dut, "ext_apb"), dut.clk)
    await registers_and_errors(dut, ApbMasterBus(master, base=BASE), 0x1E00_0002, "APB")


@cocotb.test()
async def cocotbext_wishbone_registers_and_err(dut):
    from cocotbext.wishbone.driver import WishboneMaster

    await reset(dut)
    master = WishboneMaster(dut, "ext_wb", dut.clk, width=32, timeout=100)
    await registers_and_errors(dut, WishboneMasterBus(master, base=BASE), 0x1E00_0004, "Wishbone")


@cocotb.test()
async def cocotbext_avalon_registers_and_slverr(dut):
    from cocotbext.avalon import AvalonMMMasterBFM

    await reset(dut)
    master = AvalonMMMasterBFM.from_prefix(dut, "ext_avmm", dut.clk)
    master.start()
    await registers_and_errors(dut, AvalonMasterBus(master, base=BASE, word_address=True), 0x1E00_0005,
                               "Avalon-MM")


@cocotb.test()
async def cocotbext_axi4lite_hdl_clock_needs_the_keeper(dut):
    """With the HDL clock under Verilator, cocotbext-axi's first read stalls unless RisingEdge(clk) stays
    armed (ClockKeeper, on by default in AxiLiteMasterBus): the same read, bounded, both ways."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    await reset(dut)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "ext_axil"), dut.clk, dut.rst)
    kept = AxiLiteMasterBus(master, base=BASE)
    assert await bounded(kept.read(BASE + IDENT), sim_ns=2000) == 0x1E00_0001
    bare = AxiLiteMasterBus(master, base=BASE, keep_clock=False)
    assert await bounded(bare.read(BASE + IDENT), sim_ns=2000) is None     # stalls: the beat is missed


@cocotb.test()
async def interrupts_level_edge_active_low_and_many_lines(dut):
    """Interrupt lines driven by a register of the RTL (SCRATCH2 of the AXI4-Lite block): level and edge,
    active high and low, one signal or each bit of a vector."""
    await reset(dut)
    regs = mapped(HdlAxiLiteBus(dut.h.m_axil))
    level0, *_ = SimInterrupt.lines(dut.irq_vec, "vec")
    edge1 = SimInterrupt(dut.irq_vec, "edge1", bit=1, edge=True)
    low = SimInterrupt(dut.irq_n, "low", active_low=True)
    bits = SimInterrupt.lines(dut.irq_vec, "b", edge=True)

    def drive() -> list[object]:
        out: list[object] = []
        with pytest.raises(IrqTimeoutError):
            level0.wait(1e-6)                        # nothing yet
        regs.write32(SCRATCH2, 0x1)
        out += [level0.wait(1e-6), level0.wait(1e-6)]   # a level stays: every wait sees it
        for _ in range(2):                           # two pulses on bit 1 while nobody waits
            regs.write32(SCRATCH2, 0x2)
            regs.write32(SCRATCH2, 0x0)
        out.append(edge1.wait(1e-6))                 # both latched, consumed by one wait
        with pytest.raises(IrqTimeoutError):
            edge1.wait(1e-6)
        with pytest.raises(IrqTimeoutError):
            low.wait(1e-6)                           # irq_n is high: inactive
        regs.write32(SCRATCH2, 0x10)
        out.append(low.wait(1e-6))
        regs.write32(SCRATCH2, 0x8)
        out.append([b.latched for b in bits])
        return out

    assert await Bridge().run(drive) == [1, 1, 2, 1, [1, 2, 0, 1]]
    for irq in (edge1, *bits):
        irq.close()
