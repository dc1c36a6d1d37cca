"""VFIO on a real kernel behind QEMU's Intel vIOMMU: edu bound to vfio-pci, its BAR0 mmapped from the device
file, DMA through IOVAs we map, INTx and MSI on eventfds. (A DMA to an IOVA nobody mapped, MSI-X and the
IOVAs unmapped on unbind are tested through the PCI bus: tests/drivers/bus/linux/test_pci_linux_vfio.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from edu_regs import DMA_TO_RAM, EDU_BUFFER, IRQ_ACK, IRQ_RAISE, IRQ_STATUS, edu_copy

from hwsim.linux.guest import load_module, pci_bind, pci_one
from hwsim.linux.machines import EDU, IOMMU
from mmiotk import CachePolicy, MmioResource
from mmiotk.dma import DmaPool
from mmiotk.irq import IrqTimeoutError
from mmiotk.pci import PCI_COMMAND, PCI_COMMAND_MASTER
from mmiotk.vfio import VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, IovaSpace, VfioDevice

pytestmark = pytest.mark.linux_guest(IOMMU)



@pytest.fixture(scope="module")
def vfio() -> Iterator[VfioDevice]:
    """edu on vfio-pci for the whole module, never unbound: vfio-pci's unbind blocks for as long as any
    mapping of a BAR survives (one kept alive by a stray reference would hang the guest)."""
    address = pci_one(*EDU)
    load_module("vfio_iommu_type1")
    pci_bind(address, "vfio-pci")
    device = VfioDevice(address)
    yield device
    device.close()


@pytest.fixture
def regs(vfio: VfioDevice):
    start, size, _ = vfio.space.bars[0]
    region = MmioResource(vfio.space, start, size).create_region(start, size, "edu")
    yield region.map(CachePolicy.UNCACHED_DEVICE)
    region.revoke()  # unmaps: vfio-pci's unbind waits (for ever) while a BAR mapping holds the device open




def test_bar0_maps_from_the_device_file(regs) -> None:
    assert "vfio BAR 0" in regs.mechanism
    assert regs.read32(0x00) == 0x010000ED
    regs.write32(0x04, 0x0F0F_0F0F)
    assert regs.read32(0x04) == 0xF0F0_F0F0


def test_dma_goes_through_the_iovas_we_mapped(vfio: VfioDevice, regs) -> None:
    vfio.config_write16(PCI_COMMAND, vfio.config_read16(PCI_COMMAND) | PCI_COMMAND_MASTER)
    iovas = IovaSpace(vfio, 1 << 20, 0x1000_0000)
    pool = DmaPool.from_space(iovas, coherent=True, name="edu-iova")
    try:
        src, dst = pool.alloc(2048), pool.alloc(2048)
        assert 0x1000_0000 <= src.dma_addr < 0x1010_0000
        src[:] = np.random.default_rng(7).integers(0, 256, 2048, dtype=np.uint8)
        edu_copy(regs, src.dma_addr, EDU_BUFFER, 2048, 0)
        edu_copy(regs, EDU_BUFFER, dst.dma_addr, 2048, DMA_TO_RAM)
        assert (dst == src).all()
    finally:
        pool.close()
        iovas.close()  # IOMMU_UNMAP_DMA


def test_intx_arrives_on_its_eventfd_and_ack_unmasks(vfio: VfioDevice, regs) -> None:
    irq = vfio.interrupt(VFIO_PCI_INTX_IRQ_INDEX)
    try:
        for bit in (1, 2):
            regs.write32(IRQ_RAISE, bit)
            assert irq.wait(5.0) == 1
            assert regs.read32(IRQ_STATUS) == bit
            regs.write32(IRQ_ACK, bit)
            irq.ack()
        regs.write32(IRQ_RAISE, 4)
        irq.wait(5.0)  # delivered and masked by the kernel; without ack the next one stays away
        regs.write32(IRQ_ACK, 4)
        regs.write32(IRQ_RAISE, 8)
        with pytest.raises(IrqTimeoutError):
            irq.wait(0.3)
        irq.ack()
        assert irq.wait(5.0) == 1
        regs.write32(IRQ_ACK, 8)
        irq.ack()
    finally:
        irq.revoke()


def test_msi_arrives_on_its_eventfd(vfio: VfioDevice, regs) -> None:
    vfio.config_write16(PCI_COMMAND, vfio.config_read16(PCI_COMMAND) | PCI_COMMAND_MASTER)  # an MSI is a DMA write
    irq = vfio.interrupt(VFIO_PCI_MSI_IRQ_INDEX)
    try:
        for bit in (1, 2, 4):
            regs.write32(IRQ_RAISE, bit)
            assert irq.wait(5.0) == 1
            regs.write32(IRQ_ACK, bit)
        with pytest.raises(IrqTimeoutError):
            irq.wait(0.2)
    finally:
        irq.revoke()
