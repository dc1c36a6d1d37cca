"""The cocotbext adapters on the slow plain-Verilog slaves (tb_ext_slow.v: Icarus and Verilator, HDL
clock): registers and byte lanes, every error response of every bus kind raising BusError on the bridged
and the awaited path, and a slave that does not answer in time raising BusError naming address and width
(then the bus is dead: every later access raises at once), never a hang."""

from __future__ import annotations

import re
from typing import Any

import cocotb
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time
from cocotb_slow import errors_on_every_path

from hwsim.cosim import AxiLiteMasterBus, Bridge, BusError, SimSpace
from hwsim.cosim.ext_buses import ApbMasterBus, AvalonMasterBus, WishboneMasterBus
from mmiotk import CachePolicy, MmioResource


async def reset(dut: Any, wait_states: int = 3) -> None:
    await Timer(1, "ns")
    dut.wait_states.value = Immediate(wait_states)
    dut.rst.value = Immediate(1)
    await Timer(40, "ns")
    dut.rst.value = Immediate(0)
    await Timer(10, "ns")


def axil(dut: Any, **kw: Any) -> AxiLiteMasterBus:
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    return AxiLiteMasterBus(AxiLiteMaster(AxiLiteBus.from_prefix(dut, "ext_axil"), dut.clk, dut.rst), **kw)


def apb(dut: Any, **kw: Any) -> ApbMasterBus:
    from cocotbext.apb import ApbBus, ApbMaster

    return ApbMasterBus(ApbMaster(ApbBus.from_prefix(dut, "ext_apb"), dut.clk), **kw)


def wishbone(dut: Any, **kw: Any) -> WishboneMasterBus:
    from cocotbext.wishbone.driver import WishboneMaster

    return WishboneMasterBus(WishboneMaster(dut, "ext_wb", dut.clk, width=32), **kw)


def avalon(dut: Any, **kw: Any) -> AvalonMasterBus:
    from cocotbext.avalon import AvalonMMMasterBFM

    bfm = AvalonMMMasterBFM.from_prefix(dut, "ext_avmm", dut.clk)
    bfm.start()
    return AvalonMasterBus(bfm, **kw)


def registers(bus: Any) -> list[int]:
    """A driver's words and byte lanes through the adapter (the slave's four words at 0x0..0xc)."""
    regs = MmioResource(SimSpace(bus, 0, 0x40), 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)
    regs.write32(0x4, 0xCAFE_F00D)
    regs.write8(0x5, 0x12)
    regs.write16(0xA, 0xBEEF)
    return [regs.read32(0x4), regs.read8(0x7), regs.read32(0x8)]


async def stalls(dut: Any, bus: Any) -> None:
    """The slave takes 255 wait states, the adapter's bound is 1 us: BusError naming address and width,
    within the bound; then the bus is dead and refuses at once."""
    await reset(dut, 255)
    p = re.escape(bus.protocol)
    start = get_sim_time("ns")
    with pytest.raises(BusError, match=f"^{p} read at 0x8, width 32 bits: no answer within 1000 ns"):
        await bus.read(0x8, 4)
    assert 1000 <= get_sim_time("ns") - start <= 1250      # the watchdog wakes every 250 ns
    assert bus.dead and "marked dead" in bus.dead
    start = get_sim_time("ns")

    def again() -> None:
        regs = MmioResource(SimSpace(bus, 0, 0x40), 0, 0x40).create_region(0, 0x40, "r").map(CachePolicy.UNCACHED)
        with pytest.raises(BusError, match=f"^{p} write at 0xc, width 16 bits: no answer"):
            regs.write16(0xC, 1)

    await Bridge().run(again)
    assert get_sim_time("ns") == start      # refused before the bus


ADAPTERS = {"axil": (axil, {0x10: "SLVERR"}), "apb": (apb, {0x10: "PSLVERR"}),
            "wishbone": (wishbone, {0x10: "ERR_O", 0x20: "RTY_O"}),
            "avalon": (avalon, {0x10: "SLVERR (SLAVEERROR)", 0x20: "DECODEERROR", 0x30: "RESERVED response"})}


async def adapter(dut: Any, kind: str) -> None:
    make, responses = ADAPTERS[kind]
    await reset(dut)
    bus = make(dut)
    assert await Bridge().run(registers, bus) == [0xCAFE_120D, 0xCA, 0xBEEF_0000]
    if kind == "axil":   # the slow AXI4-Lite slave answers reads SLVERR and writes DECERR
        with pytest.raises(BusError, match=r"^AXI4-Lite read at 0x10, width 32 bits: SLVERR$"):
            await bus.read(0x10, 4)
        with pytest.raises(BusError, match=r"^AXI4-Lite write at 0x14, width 16 bits: DECERR$"):
            await bus.write(0x14, 2, 1)
    else:
        await errors_on_every_path(dut, bus, responses)
    await stalls(dut, make(dut, timeout_ns=1000))


@cocotb.test()
async def cocotbext_axi4lite_adapter_errors_and_stall_bound(dut):
    await adapter(dut, "axil")


@cocotb.test()
async def cocotbext_apb_adapter_errors_and_stall_bound(dut):
    await adapter(dut, "apb")


@cocotb.test()
async def cocotbext_wishbone_adapter_err_rty_and_stall_bound(dut):
    await adapter(dut, "wishbone")


@cocotb.test()
async def cocotbext_avalon_adapter_every_response_and_stall_bound(dut):
    await adapter(dut, "avalon")
