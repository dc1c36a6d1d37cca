"""The ECAM host-bridge bus on a real one: QEMU's virt machine with a virtio-blk-pci function (one QEMU for
the module). Enumeration, BAR sizing and assignment as firmware does it, config space handed to the driver
and revoked on unbind, INTx delivered through the GIC, and MSI-X through the GICv2m frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo
from drivers.bus.pci import Bar, PciBus, PciFunction
from drivers.bus.pci_config import PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY
from drivers.bus.pci_ecam import EcamPciBus, ecam_offset
from drivers.bus.pci_msi import MsiController
from drivers.virtio.blk import VirtioBlkDriver
from mmiotk import RamSpace
from mmiotk.bus import NoResourceError
from mmiotk.dma import DmaPool
from mmiotk.errors import RevokedError

MiB = 1 << 20


@pytest.fixture(scope="module")
def qemu() -> Iterator[Any]:
    from hwsim.qemu import QemuSpace

    with QemuSpace(transport="pci", ram_size=64 * MiB) as space:
        yield space


def make_bus(qemu: Any, msi: bool) -> Iterator[EcamPciBus]:
    dma = DmaPool.from_space(qemu, qemu.dma_base, qemu.dma_size, name="test-dma")
    controller = MsiController(qemu.msi_doorbell, *qemu.msi_intids, qemu.msi_interrupt) if msi else None
    with EcamPciBus(qemu, ecam=(qemu.ecam_base, qemu.ecam_size), mem_window=qemu.pci_mmio_window,
                    intx=qemu.pci_intx, msi=controller, irq_factory=qemu.irq_factory, dma=dma) as pci:
        yield pci
    dma.close()


@pytest.fixture
def bus(qemu: Any) -> Iterator[EcamPciBus]:
    """A bus without an MSI controller: interrupts are INTx."""
    yield from make_bus(qemu, msi=False)


@pytest.fixture
def msi_bus(qemu: Any) -> Iterator[EcamPciBus]:
    yield from make_bus(qemu, msi=True)


def ecam_read(qemu: Any, dev: int, offset: int) -> int:
    return int(qemu.qtest.read(qemu.ecam_base + ecam_offset(0, dev, 0) + offset, 4))


def test_scan_finds_the_host_bridge_and_the_virtio_function(bus: EcamPciBus) -> None:
    found = {f.name: (f.vendor_id, f.device_id, f.properties["class_code"]) for f in bus.scan()}
    assert found == {"0000:00:00.0": (0x1B36, 0x0008, 0x060000), "0000:00:01.0": (0x1AF4, 0x1042, 0x010000)}


def test_bars_are_sized_assigned_in_the_window_and_written_back(bus: EcamPciBus, qemu: Any) -> None:
    fn = {f.name: f for f in bus.scan()}["0000:00:01.0"]
    sizes = {i: (r.size, r.prefetchable) for i, r in fn.mmio_ranges.items()}
    assert sizes == {1: (0x1000, False), 4: (0x4000, True)}  # MSI-X table; the 64-bit virtio BAR
    base, size = qemu.pci_mmio_window
    for reg in fn.mmio_ranges.values():
        assert base <= reg.paddr and reg.end <= base + size and reg.paddr % reg.size == 0
    bar4 = fn.mmio_ranges[4].paddr
    assert ecam_read(qemu, 1, 0x20) & ~0xF == bar4 and ecam_read(qemu, 1, 0x24) == bar4 >> 32
    assert ecam_read(qemu, 1, 0x14) & ~0xF == fn.mmio_ranges[1].paddr
    command = ecam_read(qemu, 1, 0x04) & 0xFFFF
    assert command & PCI_COMMAND_MEMORY and not command & PCI_COMMAND_MASTER  # the driver asks for mastering


def test_intx_is_swizzled_by_slot(bus: EcamPciBus, qemu: Any) -> None:
    fn = {f.name: f for f in bus.scan()}["0000:00:01.0"]
    assert fn.irq_numbers == (qemu.pci_intx[1],)  # device 1, INTA: the second line (GIC SPI 4)


def test_the_driver_gets_config_space_which_unbind_revokes(bus: EcamPciBus, qemu: Any) -> None:
    bus.scan()
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll"))
    driver = bus.bind("0000:00:01.0")
    assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
    config = bus.device("0000:00:01.0").config()  # type: ignore[attr-defined]
    assert (config.vendor_id, config.device_id) == (0x1AF4, 0x1042)
    assert ecam_read(qemu, 1, 0x04) & PCI_COMMAND_MASTER  # VirtioPci.from_device set bus mastering
    bus.unbind("0000:00:01.0")
    with pytest.raises(RevokedError):
        config.read16(0)


def reads_complete_by_interrupt(bus: EcamPciBus) -> Any:
    """Bind with an IRQ thread, read 4 blocks one at a time; the bound VirtioBlk."""
    bus.scan()
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="thread"))
    driver = bus.bind("0000:00:01.0")
    blk = driver.block
    assert blk.irq is not None
    rises = blk.irq.rises
    buf = blk.pool.alloc(4096, align=4096)
    done = threading.Event()
    statuses: list[BlockStatus] = []
    for sector in range(4):
        done.clear()
        blk.queue(BlockOp(BlockCommand.READ, 1, sector, 0, Vmo(buf, buf.dma_addr)),
                  lambda status, op: (statuses.append(status), done.set()))
        assert done.wait(10.0)
    assert statuses == [BlockStatus.OK] * 4
    assert blk.irq.rises >= rises + 4  # each completion raised the line; the IRQ thread delivered it
    return blk


def test_completions_arrive_by_intx(bus: EcamPciBus, qemu: Any) -> None:
    blk = reads_complete_by_interrupt(bus)
    assert blk.dev.msix_vector is None and blk.irq.line == qemu.pci_intx[1] - 32


def msix_control(qemu: Any) -> int:
    return ecam_read(qemu, 1, 0x98) >> 16  # MSI-X capability at 0x98: Message Control is its upper half


def test_completions_arrive_by_msix_and_unbind_turns_it_off(msi_bus: EcamPciBus, qemu: Any) -> None:
    blk = reads_complete_by_interrupt(msi_bus)
    first, _ = qemu.msi_intids
    assert blk.dev.msix_vector == 0 and blk.irq.line == first - 32  # the GICv2m's first SPI
    assert msix_control(qemu) & 0x8000 and not msix_control(qemu) & 0x4000  # enabled, not function-masked
    assert ecam_read(qemu, 1, 0x04) & 0x0400  # INTx disabled while MSI-X is on
    table = qemu.qtest.read(msi_bus.device("0000:00:01.0").mmio_ranges[1].paddr, 4)
    assert table == qemu.msi_doorbell  # entry 0's address: the GICv2m MSI_SETSPI_NS register
    msi_bus.unbind("0000:00:01.0")
    assert not msix_control(qemu) & 0x8000 and not ecam_read(qemu, 1, 0x04) & 0x0400
    driver = msi_bus.bind("0000:00:01.0")  # the vector went back to the bus: the next bind gets it again
    assert driver.block.irq.line == first - 32


def test_msix_needs_an_msi_controller(bus: EcamPciBus) -> None:
    bus.scan()
    with pytest.raises(NoResourceError, match=r"has no MSI controller: '0000:00:01\.0' cannot use MSI-X"):
        bus.device("0000:00:01.0").enable_msix(1)  # type: ignore[attr-defined]


def test_a_declared_function_has_no_config_space() -> None:
    with RamSpace(1 * MiB, name="mem") as space, PciBus(space, mem_window=(0, 1 * MiB)) as pci:
        (fn,) = pci.enumerate([PciFunction("nic0", 0x8086, 0x100E, (Bar(0x1000),))])
        with pytest.raises(NoResourceError, match="'nic0' was declared, not found in config space"):
            fn.config()
