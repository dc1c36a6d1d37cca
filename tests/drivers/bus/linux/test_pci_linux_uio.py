"""The PCI bus over a real kernel's /sys/bus/pci, UIO backend (machine BACKENDS, no IOMMU): edu on
uio_pci_generic, BAR0 through sysfs resource0, config space through sysfs config, INTx through /dev/uioN
re-armed through config, DMA from the bus's pool of RAM reserved at boot; unbind revokes it all."""

from __future__ import annotations

import numpy as np
import pytest
from edu_driver import EduDriver
from edu_regs import DMA_TO_RAM, EDU_BUFFER, IRQ_ACK, IRQ_RAISE, edu_copy

from drivers.bus.pci_linux import LinuxPciBus
from hwsim.linux.guest import pci_driver
from hwsim.linux.machines import BACKENDS, RESERVED_BASE, RESERVED_SIZE
from mmiotk.bus import NoResourceError
from mmiotk.errors import RevokedError
from mmiotk.irq import IrqTimeoutError
from mmiotk.physmem import reserved_ram_pool

pytestmark = pytest.mark.linux_guest(BACKENDS)


def test_edu_on_uio_gets_bar_config_intx_and_the_bus_dma_pool(edu: str) -> None:
    dma = reserved_ram_pool(RESERVED_BASE, RESERVED_SIZE)
    bus = LinuxPciBus(backend="uio", dma=dma)
    try:
        bus.scan()
        bus.register_driver(EduDriver)
        driver = bus.bind(edu)
        assert isinstance(driver, EduDriver) and pci_driver(edu) == "uio_pci_generic"
        assert "resource0" in driver.regs.mechanism
        src, dst = driver.pool.alloc(2048), driver.pool.alloc(2048)
        assert RESERVED_BASE <= src.dma_addr < RESERVED_BASE + RESERVED_SIZE  # no IOMMU: physical addresses
        src[:] = np.random.default_rng(9).integers(0, 256, 2048, dtype=np.uint8)
        edu_copy(driver.regs, src.dma_addr, EDU_BUFFER, 2048, 0)
        edu_copy(driver.regs, EDU_BUFFER, dst.dma_addr, 2048, DMA_TO_RAM)
        assert (dst == src).all()
        for bit in (1, 2):  # the kernel masks INTx on each interrupt; ack() clears INTx-disable in config
            driver.regs.write32(IRQ_RAISE, bit)
            assert driver.irq.wait(5.0) >= 1
            driver.regs.write32(IRQ_ACK, bit)
            driver.irq.ack()
        with pytest.raises(IrqTimeoutError):
            driver.irq.wait(0.2)
        device = bus.device(edu)
        with pytest.raises(NoResourceError, match="INTx only, no MSI-X"):
            device.enable_msix(1)  # type: ignore[attr-defined]
        regs, config, pool = driver.regs, driver.config, driver.pool
        bus.unbind(edu)
        with pytest.raises(RevokedError):
            regs.read32(0)
        with pytest.raises(RevokedError):
            config.read16(0)
        assert pool.closed and src.freed
    finally:
        bus.close()
        dma.close()
