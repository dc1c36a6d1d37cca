"""dmacopy under cocotb: its registers through the HDL AXI4-Lite master, a DmaPool in a RamSpace that the
AXI4 memory slave serves (shim space 2), the interrupt, the bridge."""

from __future__ import annotations

from typing import Any

from cocotb.handle import Immediate
from cocotb.triggers import Timer

from hwsim.cosim import Bridge, HdlAxiLiteBus, SimInterrupt, SimSpace
from hwsim.cosim.shm import ShmLib
from mmiotk import CachePolicy, DmaPool, MmioBuffer, MmioResource, RamSpace

REGS_BASE, REGS_SIZE = 0x4000_0000, 0x40
DMA_BASE, DMA_SIZE = 0x8000_0000, 0x0010_0000
DMA_SPACE = 2   # tb_dmacopy's hwsim_axi_mem SPACE


class DmacopyEnv:
    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.shm = ShmLib()
        self.ram = RamSpace(DMA_SIZE, base=DMA_BASE, name="dma-ram")
        self.shm.attach(DMA_SPACE, self.ram.array, DMA_BASE)
        self.pool = DmaPool(MmioResource(self.ram, DMA_BASE, DMA_SIZE).create_region(DMA_BASE, DMA_SIZE, "dma",
                                                                                    memory=True))
        self.bus = HdlAxiLiteBus(dut.sys.m_axil)
        self.space = SimSpace(self.bus, REGS_BASE, REGS_SIZE, name="dmacopy")
        self.regs: MmioBuffer = MmioResource(self.space, REGS_BASE, REGS_SIZE).create_region(
            REGS_BASE, REGS_SIZE, "dmacopy").map(CachePolicy.UNCACHED)
        self.irq = SimInterrupt(dut.irq, "dmacopy-irq")
        self.bridge = Bridge()

    @classmethod
    async def create(cls, dut: Any) -> DmacopyEnv:
        env = cls(dut)
        await Timer(1, "ns")
        dut.rst.value = Immediate(1)
        await Timer(40, "ns")
        dut.rst.value = Immediate(0)
        await Timer(10, "ns")
        return env

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.bridge.run(fn, *args, **kwargs)

    @property
    def errors(self) -> int:
        """Error responses the memory slave answered (beats outside the pool)."""
        return self.shm.stat(DMA_SPACE, ShmLib.ERRORS)

    def close(self) -> None:
        self.shm.detach(DMA_SPACE)
        self.pool.close()
        self.ram.close()
