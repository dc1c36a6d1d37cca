"""The shim memory slaves (tb_mem.v, plain Verilog: Icarus and Verilator): DUTs that master AXI4 (bursts),
AXI4-Lite, Avalon-MM and Wishbone (classic and pipelined) copy between DmaPool buffers, their writes landing in the
driver's numpy views with no Python per beat; an access outside the pool answers the bus's error response,
is counted and changes nothing; latency and back-pressure slow a copy down without changing its result.
The HDL masters (64-bit AXI4-Lite, Avalon-MM, Wishbone pipelined and classic) on the same slaves: every
error response raises BusError, one await per access however late the answer."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout
from cocotb.utils import get_sim_time

from hwsim.cosim import Bridge, BusError, HdlAvalonBus, HdlAxiLiteBus, HdlWishboneBus, SimSpace
from hwsim.cosim.shm import ShmLib
from mmiotk import CachePolicy, DmaPool, MmioResource, RamSpace

BASE, SIZE = 0x8000_0000, 0x4000


class Pool:
    """A DmaPool over a RamSpace, its memory served by one shim space."""

    def __init__(self, space: int) -> None:
        self.shm, self.space = ShmLib(), space
        self.ram = RamSpace(SIZE, base=BASE, name=f"dma-{space}")
        self.shm.attach(space, self.ram.array, BASE)
        region = MmioResource(self.ram, BASE, SIZE).create_region(BASE, SIZE, "dma", memory=True)
        self.pool = DmaPool(region)

    def stat(self, which: int) -> int:
        return self.shm.stat(self.space, which)

    def close(self) -> None:
        self.shm.detach(self.space)
        self.pool.close()
        self.ram.close()


async def reset(dut: Any) -> None:
    await Timer(1, "ns")
    dut.rst.value = Immediate(1)
    await Timer(40, "ns")
    dut.rst.value = Immediate(0)
    await Timer(10, "ns")


async def copy(dut: Any, dma: str, src: int, dst: int, words: int) -> tuple[bool, int]:
    """One copy by the copier `dma` (its go/src/dst/words ports): (error response seen, clocks taken)."""
    getattr(dut, f"{dma}_src").value = Immediate(src)
    getattr(dut, f"{dma}_dst").value = Immediate(dst)
    getattr(dut, f"{dma}_words").value = Immediate(words)
    getattr(dut, f"{dma}_go").value = Immediate(1)
    start = get_sim_time("ns")
    await with_timeout(RisingEdge(getattr(dut, f"{dma}_done")), 200_000, "ns")   # the one await of a copy
    took = int(get_sim_time("ns") - start) // 10
    err = bool(int(getattr(dut, f"{dma}_err").value))
    getattr(dut, f"{dma}_go").value = Immediate(0)
    await ClockCycles(dut.clk, 2)
    return err, took


async def dut_masters_the_bus(dut: Any, dma: str, mem: str, space: int, beats_bad: tuple[int, int] = (1, 1)) -> None:
    """`beats_bad`: the error responses the copy past the end and the copy from outside answer (a burst
    answers each of its beats outside the pool)."""
    await reset(dut)
    pool = Pool(space)
    try:
        src, dst = pool.pool.alloc(1024, align=64), pool.pool.alloc(1024, align=64)
        src[:] = np.random.default_rng(space).integers(0, 256, 1024, dtype=np.uint8)
        err, fast = await copy(dut, dma, src.dma_addr, dst.dma_addr, 256)
        assert not err and np.array_equal(dst, src) and pool.stat(ShmLib.ERRORS) == 0
        assert pool.stat(ShmLib.WRITES) == 256

        tail_bad, outside_bad = beats_bad
        # a write past the pool's end: two words land, the third answers an error and the DUT stops
        tail = pool.ram.array[SIZE - 8:]     # the memory's last 8 bytes
        tail[:] = 0
        err, _ = await copy(dut, dma, src.dma_addr, BASE + SIZE - 8, 4)
        assert err and np.array_equal(tail, src[:8]) and pool.stat(ShmLib.ERRORS) == tail_bad
        # a read from outside the pool: an error, nothing written
        dst[:] = 0
        err, _ = await copy(dut, dma, BASE - 0x100, dst.dma_addr, 4)
        assert err and not dst.any() and pool.stat(ShmLib.ERRORS) == tail_bad + outside_bad

        # latency and back-pressure: slower, the same bytes
        slave = getattr(dut, mem)
        slave.latency.value = Immediate(4)
        slave.stall.value = Immediate(160)
        err, slow = await copy(dut, dma, src.dma_addr, dst.dma_addr, 256)
        assert not err and np.array_equal(dst, src) and pool.stat(ShmLib.ERRORS) == tail_bad + outside_bad
        assert slow >= 1.5 * fast, (fast, slow)
        slave.latency.value = Immediate(0)
        slave.stall.value = Immediate(0)
    finally:
        pool.close()


@cocotb.test()
async def axi4_burst_dut_writes_land_in_numpy_views_errors_counted_per_beat(dut):
    await dut_masters_the_bus(dut, "cx", "mem_axi", 11, beats_bad=(2, 4))


@cocotb.test()
async def axi4lite_dut_writes_land_in_numpy_views_errors_counted(dut):
    await dut_masters_the_bus(dut, "ca", "mem_axil", 3)


@cocotb.test()
async def avalon_dut_writes_land_in_numpy_views_errors_counted(dut):
    await dut_masters_the_bus(dut, "cv", "mem_avmm", 4)


@cocotb.test()
async def wishbone_classic_dut_writes_land_in_numpy_views_errors_counted(dut):
    await dut_masters_the_bus(dut, "cw", "mem_wb", 5)


@cocotb.test()
async def wishbone_pipelined_dut_writes_land_in_numpy_views_errors_counted(dut):
    await dut_masters_the_bus(dut, "cp", "mem_wbp", 6)


async def master_on_memory(dut: Any, bus: Any, mem: str, space: int, response: str) -> None:
    """The HDL master `bus` on a shim memory slave: accesses land in the pool's numpy views; outside the
    pool, reads and writes raise BusError naming the response, counted by the slave; a late slave still
    costs one await per access."""
    await reset(dut)
    pool = Pool(space)
    try:
        buf = pool.pool.alloc(64, align=64)
        buf[:] = 0
        window = SIZE + 0x100   # the bus reaches past the pool
        regs = MmioResource(SimSpace(bus, BASE, window), BASE, window).create_region(BASE, window, "mem").map(
            CachePolicy.UNCACHED)
        off = buf.dma_addr - BASE
        limit = BASE + SIZE

        def run() -> list[int]:
            regs.write32(off, 0xCAFE_F00D)
            regs.write8(off + 5, 0x12)
            regs.write16(off + 6, 0x3456)
            values = [regs.read32(off), regs.read32(off + 4), regs.read8(off + 1)]
            with pytest.raises(BusError, match=f"{bus.protocol} read at {limit:#x}, width 32 bits: {response}"):
                regs.read32(SIZE)
            with pytest.raises(BusError, match=f"{bus.protocol} write at {limit + 8:#x}, width 32 bits: {response}"):
                regs.write32(SIZE + 8, 1)
            return values

        assert await Bridge().run(run) == [0xCAFE_F00D, 0x3456_1200, 0xF0]
        assert buf.view(np.uint32)[0] == 0xCAFE_F00D and bytes(buf[4:8]) == bytes([0, 0x12, 0x56, 0x34])
        assert pool.stat(ShmLib.ERRORS) == 2 and bus.error_responses == 2

        getattr(dut, mem).latency.value = Immediate(30)
        before, start = bus.transactions, get_sim_time("ns")
        assert await Bridge().run(regs.read32, off) == 0xCAFE_F00D
        assert bus.transactions - before == 1 and get_sim_time("ns") - start >= 300
        getattr(dut, mem).latency.value = Immediate(0)
    finally:
        pool.close()


@cocotb.test()
async def axi4lite_64bit_master_on_memory_one_transaction_per_64bit_access(dut):
    bus = HdlAxiLiteBus(dut.m_axil64)
    await master_on_memory(dut, bus, "mem_axil64", 7, "SLVERR")
    pool = Pool(7)
    try:
        buf = pool.pool.alloc(16, align=16)
        regs = MmioResource(SimSpace(bus, BASE, SIZE), BASE, SIZE).create_region(BASE, SIZE, "mem").map(
            CachePolicy.UNCACHED)
        before = bus.transactions
        await Bridge().run(regs.write64, buf.dma_addr - BASE, 0x0123_4567_89AB_CDEF)
        assert bus.transactions - before == 1
        assert buf.view(np.uint64)[0] == 0x0123_4567_89AB_CDEF
    finally:
        pool.close()


@cocotb.test()
async def avalon_master_on_memory_errors_raise_buserror(dut):
    await master_on_memory(dut, HdlAvalonBus(dut.m_avmm), "mem_xavmm", 8, r"SLVERR \(SLAVEERROR\)")


@cocotb.test()
async def wishbone_pipelined_master_on_memory_errors_raise_buserror(dut):
    await master_on_memory(dut, HdlWishboneBus(dut.m_wbp), "mem_xwbp", 9, "ERR_O")


@cocotb.test()
async def wishbone_classic_master_on_memory_errors_raise_buserror(dut):
    await master_on_memory(dut, HdlWishboneBus(dut.m_wb), "mem_xwb", 10, "ERR_O")
