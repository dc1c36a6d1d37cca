"""The environment around the block controller under cocotb: reset, bus models, host RAM and media.

Host RAM is a `mmiotk.RamSpace` (test drivers allocate from it through a `DmaPool`) and the media a
`hwsim.media.BlockMedia` (a disk image file mapped shared, or anonymous memory), both owned by this
Python process. The simulator reaches them through hwsim_shm, a small C library already loaded into the
simulator process: `ShmLib.attach` hands it the address of our own mmap, so the RTL's DMA and media
accesses land in the very bytes the driver's numpy views show.
The clock runs in HDL (tb_cosim.v); nothing here awaits per cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cocotb.handle import Immediate
from cocotb.triggers import Timer

from hwsim.cosim import AxiLiteMasterBus, Bridge, HdlAxiLiteBus, SimBus, SimInterrupt, SimSpace
from hwsim.cosim.shm import ShmLib
from hwsim.media import SECTOR, BlockMedia
from mmiotk import MmioResource, RamSpace
from mmiotk.dma import DmaPool

HOST_BASE = 0x8000_0000   # tb_cosim's HOST_BASE parameter: the DMA window
HOST_SIZE = 0x0100_0000
REGS_BASE = 0x1000_0000   # where the virtio-mmio registers appear in the SimSpace
REGS_SIZE = 0x200


class VblkEnv:
    """tb_cosim plus host RAM, media, the bus, the register space, the interrupt and the bridge.

    Use `await VblkEnv.create(dut)` in a cocotb test and `env.close()` at the end.
    """

    def __init__(self, dut: Any, media: BlockMedia | None = None, media_sectors: int = 2048,
                 media_range: tuple[int, int] | None = None) -> None:
        self.dut = dut
        self.shm = ShmLib()
        self.ram = RamSpace(HOST_SIZE, base=HOST_BASE, name="host-ram")
        self.media = media if media is not None else BlockMedia(size=media_sectors * SECTOR)
        self.shm.attach(ShmLib.HOST, self.ram.array, HOST_BASE)
        self.shm.attach(ShmLib.MEDIA, self.media.array, 0)
        start, sectors = media_range if media_range is not None else (0, self.media.sectors)
        if start < 0 or sectors <= 0 or start + sectors > self.media.sectors:
            raise ValueError(f"range of {sectors} sectors from sector {start} does not fit media of "
                             f"{self.media.sectors} sectors")
        self.media_range = (start, sectors)
        self.hdl_bus = HdlAxiLiteBus(dut.h.m)
        self.bus: SimBus = self.hdl_bus
        self.space = SimSpace(self.bus, REGS_BASE, REGS_SIZE, name="vblk-sim")
        self.resource = MmioResource(self.space, REGS_BASE, REGS_SIZE)
        self.irq = SimInterrupt(dut.irq, "vblk-irq")
        self.bridge = Bridge()
        self._dma: DmaPool | None = None

    @classmethod
    async def create(cls, dut: Any, media: BlockMedia | None = None, media_sectors: int = 2048,
                     stall: int = 0, readonly: bool = False,
                     media_range: tuple[int, int] | None = None) -> VblkEnv:
        """The environment after a hardware reset. `readonly` drives the controller's read-only input;
        `media_range` = (first sector, sectors) is the device-side range of the media (all of it by default)."""
        env = cls(dut, media, media_sectors, media_range)
        # Verilator applies the HDL's declaration initialisers in its first evaluation, after a test
        # starting at time 0 could have written anything: let that happen first.
        await Timer(1, "ns")
        dut.capacity.value = Immediate(env.media_range[1])
        dut.media_base.value = Immediate(env.media_range[0])
        dut.readonly.value = Immediate(int(readonly))
        dut.stall.value = Immediate(stall)
        dut.bus_sel.value = Immediate(0)
        await env.reset()
        return env

    async def reset(self, cycles: int = 4) -> None:
        """Hardware reset (rst_n low for `cycles` clocks): the write buffer is lost, as on power loss."""
        self.dut.rst_n.value = Immediate(0)
        await Timer(10 * cycles, "ns")
        self.dut.rst_n.value = Immediate(1)
        await Timer(10, "ns")

    def set_media_latency(self, cycles: int, per_sector: int = 0) -> None:
        """The media takes `cycles` + `per_sector` * (first sector mod 256) clocks to get a request ready."""
        self.dut.med_latency.value = Immediate(cycles)
        self.dut.med_latency_step.value = Immediate(per_sector)

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run synchronous driver code `fn(*args, **kwargs)`; its bus accesses await here."""
        return await self.bridge.run(fn, *args, **kwargs)

    def use_axi_master(self) -> AxiLiteMasterBus:
        """Route register accesses through cocotbext-axi's AxiLiteMaster (on the ext_axil_* port)."""
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster

        master = AxiLiteMaster(AxiLiteBus.from_prefix(self.dut, "ext_axil"), self.dut.clk, self.dut.rst_n,
                               reset_active_level=False)
        self.dut.bus_sel.value = Immediate(1)
        bus = AxiLiteMasterBus(master, base=REGS_BASE)
        self.bus = self.space.bus = bus
        return bus

    def use_hdl_bus(self) -> None:
        self.dut.bus_sel.value = Immediate(0)
        self.bus = self.space.bus = self.hdl_bus

    # --- host memory for DMA -------------------------------------------------------------------------
    @property
    def dma(self) -> DmaPool:
        """A DMA pool over all of host RAM, made on first use (a driver bound through a bus with
        `memory=env.ram` makes its own pool instead: use one or the other)."""
        if self._dma is None:
            self._dma = DmaPool.from_space(self.ram, name="host-dma")
        return self._dma

    def alloc(self, size: int, align: int = 16) -> int:
        """The physical address of `size` fresh, zeroed bytes of host RAM from `dma` (the test driver's
        allocator: it keeps addresses, not buffers)."""
        return int(self.dma.alloc(size, align).paddr)

    def host(self, paddr: int, size: int) -> np.ndarray:
        """A uint8 view of host RAM [paddr, paddr + size)."""
        off = paddr - HOST_BASE
        if off < 0 or off + size > HOST_SIZE:
            raise IndexError(f"[{paddr:#x}, {paddr + size:#x}) is not host RAM")
        return self.ram.array[off:off + size]

    @property
    def cycles(self) -> int:
        return int(self.dut.cycles.value)

    def close(self) -> None:
        """Detach memory from the simulator first (it holds raw pointers), then release it."""
        self.shm.detach(ShmLib.HOST)
        self.shm.detach(ShmLib.MEDIA)
        if self._dma is not None:
            self._dma.close()
        self.media.close()
        self.ram.close()
