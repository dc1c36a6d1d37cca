"""The PCI bus over a real kernel's /sys/bus/pci, VFIO backend (machine IOMMU: an Intel vIOMMU, edu and
virtio-blk-pci disks): enumeration, binding by id, the kernel's own driver unbound only when told to, BARs,
config space, INTx and MSI-X on eventfds, DMA through IOVAs the IOMMU blocks outside of, and revocation and
IOVA unmapping on unbind."""

from __future__ import annotations

import ctypes
import mmap
import subprocess
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from edu_driver import EduDriver
from edu_regs import DMA_TO_RAM, EDU_BUFFER, IRQ_ACK, IRQ_RAISE, edu_copy

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo
from drivers.bus.pci_linux import IOVA_BASE, IOVA_SIZE, LinuxPciBus
from drivers.virtio.blk import VirtioBlkDriver
from hwsim.linux.guest import PCI_DEVICES, load_module, pci_bind, pci_driver
from hwsim.linux.machines import EDU, IOMMU, VIRTIO_BLK_PCI, pci_disk_address
from mmiotk.bus import BindError
from mmiotk.errors import RevokedError
from mmiotk.vfio import VfioError

pytestmark = pytest.mark.linux_guest(IOMMU)
DISK = pci_disk_address(IOMMU, "bus")


@pytest.fixture
def bus() -> Iterator[LinuxPciBus]:
    """A VFIO bus, scanned. Tests taking `edu` list it first: fixtures tear down in reverse, so the bus (and
    the VFIO device it holds open) closes before edu is unbound from vfio-pci, which would wait for it."""
    made = LinuxPciBus(backend="vfio")
    made.scan()
    yield made
    made.close()


def _io(blk: VirtioBlkDriver, command: BlockCommand, vmo: Vmo, blocks: int) -> None:
    done = threading.Event()
    statuses: list[BlockStatus] = []

    def completion(status: BlockStatus, op: BlockOp) -> None:
        statuses.append(status)
        done.set()

    blk.queue(BlockOp(command, blocks, 0, 0, vmo), completion)
    assert blk.wait_for(done, 10.0), f"{command.name} did not complete"
    assert statuses == [BlockStatus.OK]


def test_scan_lists_every_function_with_its_bars_and_kernel_driver(bus: LinuxPciBus) -> None:
    edu = next(d for d in bus if (d.vendor_id, d.device_id) == EDU)
    start, end, _ = (int(w, 16) for w in (PCI_DEVICES / edu.name / "resource").read_text().split("\n")[0].split())
    assert edu.mmio_ranges[0].paddr == start and edu.mmio_ranges[0].size == end - start + 1
    assert edu.properties["iommu_group"] is not None
    disk = bus.device(DISK)
    assert (disk.vendor_id, disk.device_id) == VIRTIO_BLK_PCI
    assert disk.properties["kernel_driver"] == "virtio-pci"
    assert disk.irq_numbers, "virtio-blk-pci has an interrupt pin"


def test_a_function_a_kernel_driver_holds_is_refused_unless_told(bus: LinuxPciBus) -> None:
    bus.register_driver(VirtioBlkDriver)
    with pytest.raises(BindError, match=r"the kernel's virtio-pci driver holds it; .*unbind_kernel_driver=True"):
        bus.bind(DISK)
    assert pci_driver(DISK) == "virtio-pci", "the kernel's driver was unbound although nobody said so"


def test_virtio_blk_binds_over_vfio_with_msix_and_returns_to_the_kernel() -> None:
    load_module("virtio_blk")
    bus = LinuxPciBus(backend="vfio", unbind_kernel_driver=True)
    try:
        bus.scan()
        bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="thread"))
        driver = bus.bind(DISK)
        assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
        assert pci_driver(DISK) == "vfio-pci"
        blk = driver.block
        assert blk.dev.msix_vector == 0 and "msix" in blk.irq.name
        bs = blk.query().block_size
        data = blk.pool.alloc(8 * bs)
        data[:] = np.random.default_rng(5).integers(0, 256, 8 * bs, dtype=np.uint8)
        _io(driver, BlockCommand.WRITE, Vmo(data, data.dma_addr), 8)
        back = blk.pool.alloc(8 * bs)
        _io(driver, BlockCommand.READ, Vmo(back, back.dma_addr), 8)
        assert (back == data).all()
        assert blk.irq.events >= 1, "completions came without a single MSI-X interrupt"
        iova = data.dma_addr
        assert IOVA_BASE <= iova < IOVA_BASE + IOVA_SIZE
        common = blk.dev.common
        bus.unbind(DISK)
        with pytest.raises(RevokedError):
            common.NUM_QUEUES.read()
        after = bus.return_to_kernel(DISK)
        assert after == "virtio-pci" and pci_driver(DISK) == "virtio-pci"
        deadline = time.monotonic() + 10
        while not any((PCI_DEVICES / DISK).glob("virtio*/block/vd*")):
            assert time.monotonic() < deadline, "the kernel's virtio_blk made no disk of the function again"
            time.sleep(0.1)
    finally:
        bus.close()
        if pci_driver(DISK) != "virtio-pci":
            bus.return_to_kernel(DISK)


def test_edu_gets_bar_config_intx_and_iova_dma_and_unbind_unmaps_them(edu: str, bus: LinuxPciBus) -> None:
    bus.register_driver(EduDriver)
    driver = bus.bind(edu)
    assert isinstance(driver, EduDriver)
    assert "vfio BAR 0" in driver.regs.mechanism
    src, dst = driver.pool.alloc(2048), driver.pool.alloc(2048)
    src[:] = np.random.default_rng(3).integers(0, 256, 2048, dtype=np.uint8)
    edu_copy(driver.regs, src.dma_addr, EDU_BUFFER, 2048, 0)
    edu_copy(driver.regs, EDU_BUFFER, dst.dma_addr, 2048, DMA_TO_RAM)
    assert (dst == src).all()
    driver.regs.write32(IRQ_RAISE, 1)
    assert driver.irq.wait(5.0) == 1
    driver.regs.write32(IRQ_ACK, 1)
    driver.irq.ack()
    vfio = bus.vfio_device(edu)
    scratch = mmap.mmap(-1, mmap.PAGESIZE)
    vaddr = ctypes.addressof(ctypes.c_char.from_buffer(scratch))
    with pytest.raises(VfioError, match="File exists"):
        vfio.map_dma(vaddr, IOVA_BASE, mmap.PAGESIZE)  # the pool's IOVAs are mapped while bound
    regs, irq = driver.regs, driver.irq
    bus.unbind(edu)
    with pytest.raises(RevokedError):
        regs.read32(0)
    assert irq.revoked
    vfio.map_dma(vaddr, IOVA_BASE, mmap.PAGESIZE)  # free again: unbind unmapped the pool
    vfio.unmap_dma(IOVA_BASE, mmap.PAGESIZE)


def _dmesg() -> str:
    return subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30, check=True).stdout


def test_dma_to_an_unmapped_iova_is_blocked_by_the_iommu(edu: str, bus: LinuxPciBus) -> None:
    bus.register_driver(EduDriver)
    driver = bus.bind(edu)
    assert isinstance(driver, EduDriver)
    inside = driver.pool.alloc(4096, align=4096)
    inside[:] = 0x11
    before = driver.pool.alloc(4096, align=4096)
    before[:] = 0x22
    edu_copy(driver.regs, before.dma_addr, EDU_BUFFER, 2048, 0)  # edu's buffer now holds 0x22s
    outside = IOVA_BASE + IOVA_SIZE + 0x4000  # past the pool: nobody mapped it
    edu_copy(driver.regs, EDU_BUFFER, outside, 2048, DMA_TO_RAM)
    log = _dmesg()
    assert f"fault addr {outside:#x}" in log and f"[{edu[5:]}]" in log, log[-2000:]
    assert (inside == 0x11).all(), "memory inside the mapping changed"
    edu_copy(driver.regs, EDU_BUFFER, inside.dma_addr, 2048, DMA_TO_RAM)  # the device still works
    assert (inside[:2048] == 0x22).all() and (inside[2048:] == 0x11).all()


def test_unbinding_vfio_pci_while_the_device_is_open_times_out_then_completes(edu: str) -> None:
    """The hang the bound is for: vfio-pci's unbind waits until the device file is closed."""
    from mmiotk.sysfs import PciDrivers, SysfsTimeoutError
    from mmiotk.vfio import VfioDevice

    pci_bind(edu, "vfio-pci")
    device = VfioDevice(edu)
    with pytest.raises(SysfsTimeoutError, match=r"/sys/bus/pci/drivers/vfio-pci/unbind did not return within 2 s"):
        PciDrivers(timeout=2.0).unbind(edu)
    device.close()  # the kernel's wait ends; the write still in flight completes
    deadline = time.monotonic() + 20
    while pci_driver(edu) is not None:
        assert time.monotonic() < deadline, "vfio-pci still bound 20 s after the device was closed"
        time.sleep(0.1)
