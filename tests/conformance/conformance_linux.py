"""The conformance suite's targets on a real kernel: the cases run inside a Linux guest (the test items carry
the `linux_guest` marker of their machine, see conftest.py) and drive QEMU's virtio-blk through the kernel's
user-space interfaces, with the same `VirtioBlkDriver` as everywhere.

- `linux-mmio`: virtio-blk-device in a virtio-mmio slot of the microvm board, registers through /dev/mem,
  DMA in RAM reserved at boot (`memmap=`), bound through a `PlatformBus` whose board is the slot found by
  scanning the slots, after loading the kernel's virtio_mmio (which binds every slot) and unbinding it.
- `linux-pci`: virtio-blk-pci behind the Intel vIOMMU, taken from the kernel's virtio-pci by `LinuxPciBus`
  (unbind_kernel_driver=True) onto vfio-pci: BARs mmapped from the VFIO device, DMA through IOVAs, MSI-X.

A machine's devices are fixed at boot, so each case's disk is one of the machine's `GuestDisk`s, chosen by
what the case asks for (size, read-only, a window of the file): its file is filled with the case's image
before the driver binds and copied back into the image after it unbinds (the device wrote through to it).
Neither board can make one virtio-mmio transport legacy and another modern, so no target here offers the
legacy interface.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conformance_cases import MiB, Target

from drivers.bus.pci_linux import LinuxPciBus
from drivers.bus.platform import PlatformBus
from drivers.virtio.blk import VirtioBlk, VirtioBlkDriver
from hwsim.linux.guest import guest_disk
from hwsim.linux.machine import GuestDisk, Machine
from hwsim.linux.machines import IOMMU, MICROVM, MICROVM_SLOTS, RESERVED_BASE, RESERVED_SIZE, pci_disk_address
from mmiotk import CachePolicy, DevMemSpace, MmioResource
from mmiotk.sysfs import sysfs_write

VIRTIO_MMIO_MAGIC = 0x74726976
VIRTIO_ID_BLOCK = 2


class GuestDiskTarget(Target):
    """A target whose disks are the guest machine's `GuestDisk`s."""

    machine: Machine
    offers_legacy_mmio = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._dirty: set[str] = set()  # disks an image was copied onto: zeroed before the next plain use

    def _disk(self, size: int, readonly: bool, media_range: tuple[int, int] | None) -> GuestDisk:
        for disk in self.machine.disks:
            if (disk.size, disk.readonly, disk.window) == (size, readonly, media_range) and disk.name != "bus":
                return disk
        have = ", ".join(f"{d.name} ({d.size} bytes{', ro' if d.readonly else ''}, window {d.window})"
                         for d in self.machine.disks)
        raise AssertionError(f"{self.name}: machine {self.machine.name!r} has no disk of {size} bytes"
                             f"{' read-only' if readonly else ''} with window {media_range}; it has {have}")

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               media_range: tuple[int, int] | None = None, legacy: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        if legacy:
            raise AssertionError(f"{self.name}: the board's virtio transports are all modern")
        disk = self._disk(image.stat().st_size if image is not None else disk_size, readonly, media_range)
        path = guest_disk(disk.name)
        if image is not None:
            shutil.copyfile(image, path)
            self._dirty.add(disk.name)
        elif disk.name in self._dirty:
            with open(path, "r+b") as f:
                f.truncate(0)
                f.truncate(disk.size)
            self._dirty.discard(disk.name)
        with self._bound(disk, options) as blk:
            yield blk
        if image is not None and not readonly:
            shutil.copyfile(path, image)

    def _bound(self, disk: GuestDisk, options: dict[str, Any]) -> Any:
        raise NotImplementedError


class LinuxPciTarget(GuestDiskTarget):
    name = "linux-pci"
    machine = IOMMU

    @contextmanager
    def _bound(self, disk: GuestDisk, options: dict[str, Any]) -> Iterator[VirtioBlk]:
        from hwsim.linux.guest import load_module

        load_module("vfio-pci")
        load_module("vfio_iommu_type1")
        bus = LinuxPciBus(backend="vfio", unbind_kernel_driver=True)
        try:
            bus.scan()
            bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll", **options))
            driver = bus.bind(pci_disk_address(self.machine, disk.name))
            assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
            yield driver.block
        finally:
            bus.close()


class LinuxMmioTarget(GuestDiskTarget):
    name = "linux-mmio"
    machine = MICROVM

    def _slot(self, disk: GuestDisk) -> int:
        """The virtio-mmio slot whose block device has this disk's capacity (every disk's differs)."""
        first, stride, count = MICROVM_SLOTS
        space = DevMemSpace()
        region = MmioResource(space, first, stride * count).create_region(first, stride * count, "virtio-mmio slots")
        regs = region.map(CachePolicy.UNCACHED_DEVICE)
        try:
            sectors = (disk.window[1] if disk.window else disk.size) // 512
            for slot in range(count):
                at = slot * stride
                if regs.read32(at) == VIRTIO_MMIO_MAGIC and regs.read32(at + 8) == VIRTIO_ID_BLOCK and \
                        regs.read32(at + 0x100) | regs.read32(at + 0x104) << 32 == sectors:
                    return first + at
        finally:
            region.revoke()
        raise AssertionError(f"{self.name}: no virtio-mmio slot holds a block device of {sectors} sectors")

    @staticmethod
    def _unbind_virtio_mmio() -> None:
        """Load the kernel's virtio_mmio (it binds every slot, and /dev/mem then refuses their pages), then
        unbind it from every device, as a user-space driver of a real board must."""
        from hwsim.linux.guest import load_module

        load_module("virtio_mmio")
        driver = Path("/sys/bus/platform/drivers/virtio-mmio")
        held = [entry.name for entry in driver.iterdir() if entry.is_symlink() and (entry / "driver").exists()]
        for name in held:
            sysfs_write(driver / "unbind", name, why="freeing the virtio-mmio slot for /dev/mem")
        still = [entry.name for entry in driver.iterdir() if entry.is_symlink() and entry.name in held]
        assert not still, f"virtio_mmio still holds {still}"

    @contextmanager
    def _bound(self, disk: GuestDisk, options: dict[str, Any]) -> Iterator[VirtioBlk]:
        self._unbind_virtio_mmio()
        base = self._slot(disk)
        board = {"name": "microvm", "memory": {"base": RESERVED_BASE, "size": RESERVED_SIZE},
                 "dma": {"base": RESERVED_BASE, "size": RESERVED_SIZE, "coherent": True},
                 "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[base, 0x200]]}]}
        bus = PlatformBus.from_board(board, DevMemSpace(), memory=DevMemSpace())
        bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll", **options))
        try:
            driver = bus.bind("blk0")
            assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
            yield driver.block
        finally:
            bus.close()


GUEST_TARGETS: dict[str, tuple[type[GuestDiskTarget], Machine]] = {
    "linux-mmio": (LinuxMmioTarget, MICROVM), "linux-pci": (LinuxPciTarget, IOMMU)}
