"""A test driver for QEMU's edu device that takes every capability a PCI bus hands out."""

from __future__ import annotations

from typing import Any

from edu_regs import EDU_ID

from drivers.bus.pci import PciDevice
from hwsim.linux.machines import EDU
from mmiotk import CachePolicy
from mmiotk.bus import Device, Driver


class EduDriver(Driver):
    """QEMU's edu as a bus driver sees it: BAR0, config space (bus mastering), INTx, a DMA pool."""

    ids = (EDU,)

    def bind(self, device: Device) -> None:
        assert isinstance(device, PciDevice)
        self.regs: Any = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        if self.regs.read32(0x00) != EDU_ID:
            raise ValueError(f"{device.name}: not an edu device (ID {self.regs.read32(0):#x})")
        self.config = device.config()
        self.config.set_master()  # DMA and MSI are writes by the device
        self.irq = device.irq(0)
        self.pool = device.dma_pool()
