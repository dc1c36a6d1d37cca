"""The machines the project's guest tests boot. Each distinct machine costs one boot per test run, so tests
share these rather than defining near-copies.

`BACKENDS` carries a device for each hardware backend: QEMU's `edu` (BAR0 registers, INTx, a DMA engine),
`ivshmem-plain` (a prefetchable BAR2 of shared memory, write-combining through resource2_wc), 16 MiB of RAM
reserved at boot at 0x8000000 (`memmap=`: /dev/mem may map it, DMA memory with known physical addresses),
and 2 MiB hugepages.
"""

from __future__ import annotations

from .machine import GuestDisk, Machine

EDU = (0x1234, 0x11E8)
IVSHMEM = (0x1AF4, 0x1110)
RESERVED_BASE = 0x800_0000
RESERVED_SIZE = 16 << 20

BACKENDS = Machine(
    "backends",
    devices=(
        "-device", "edu,addr=04.0,dma_mask=0xffffffff",  # DMA anywhere in the 1 GiB of RAM (default: 28 bits)
        "-object", "memory-backend-memfd,id=ivshmem,size=1M,share=on",
        "-device", "ivshmem-plain,memdev=ivshmem,addr=05.0",
    ),
    cmdline=(f"memmap={RESERVED_SIZE >> 20}M${RESERVED_BASE:#x}", "hugepages=8"),
)

MiB = 1 << 20
VIRTIO_BLK_PCI = (0x1AF4, 0x1042)
# The disks the conformance suite's guest targets bind to, by what a case asks for: the 4 MiB scratch disk
# (and 4 MiB images), 2 MiB images, a 1 MiB read-only disk, and a device that is 128 KiB at 256 KiB of a
# 2 MiB file. Every device reports 4 KiB physical blocks (TOPOLOGY), as on the other targets.
CONFORMANCE_DISKS = (("scratch", 4 * MiB, False, None), ("image", 2 * MiB, False, None),
                     ("readonly", MiB, True, None), ("window", 2 * MiB, False, (256 << 10, 128 << 10)))
PCI_DISK_SLOT = 0x10  # the PCI disks sit at 00:10.0, 00:11.0, ... in this order


def _pci_disks(specs: tuple[tuple[str, int, bool, tuple[int, int] | None], ...]) -> tuple[GuestDisk, ...]:
    """virtio-blk-pci devices behind the IOMMU (iommu_platform: their DMA is translated), modern only."""
    return tuple(GuestDisk(name, size, f"virtio-blk-pci,addr={PCI_DISK_SLOT + i:02x}.0,disable-legacy=on,"
                           "iommu_platform=on,physical_block_size=4096", readonly, window)
                 for i, (name, size, readonly, window) in enumerate(specs))


def pci_disk_address(machine: Machine, name: str) -> str:
    """The PCI address of `machine`'s disk `name` (made by _pci_disks)."""
    names = [disk.name for disk in machine.disks]
    return f"0000:00:{PCI_DISK_SLOT + names.index(name):02x}.0"


# `IOMMU`: an Intel vIOMMU with interrupt remapping in front of an edu device and virtio-blk-pci disks, for
# VFIO (type1v2): DMA through IOVAs user space maps, interrupts on eventfds. The disks: the conformance
# suite's (`linux-pci`) and `bus`, which the PCI bus tests take from the kernel's virtio_blk and give back.
IOMMU = Machine(
    "iommu",
    board="q35,kernel-irqchip=split",
    devices=("-device", "intel-iommu,intremap=on", "-device", "edu,addr=04.0,dma_mask=0xffffffffffffffff"),
    cmdline=("intel_iommu=on",),
    disks=_pci_disks((*CONFORMANCE_DISKS, ("bus", MiB, False, None))),
)

# `BENCH` (benchmarks/bench_linux.py): two identical 64 MiB disks behind the IOMMU, `kernel` for the guest
# kernel's virtio_blk and `mmiotk` for the project's driver over VFIO.
BENCH = Machine(
    "bench",
    board="q35,kernel-irqchip=split",
    devices=("-device", "intel-iommu,intremap=on"),
    cmdline=("intel_iommu=on",),
    disks=_pci_disks((("kernel", 64 * MiB, False, None), ("mmiotk", 64 * MiB, False, None))),
)

# `MICROVM`: QEMU's microvm board, its virtio-mmio slots at 0xfeb00000 (modern), each conformance disk a
# virtio-blk-device in one; no IOMMU, DMA from RAM reserved at boot (`memmap=`) through /dev/mem. The kernel's
# virtio_mmio is a module nobody loads here, so the devices start unclaimed. The board has no PIT or HPET
# to calibrate the TSC against under TCG (the boot hangs there): the TSC rate is given.
MICROVM_SLOTS = (0xFEB0_0000, 0x200, 24)  # first slot, stride, count
MICROVM = Machine(
    "microvm",
    board="microvm,pcie=on",
    devices=("-global", "virtio-mmio.force-legacy=false"),
    cmdline=(f"memmap={RESERVED_SIZE >> 20}M${RESERVED_BASE:#x}", "tsc_early_khz=2000000", "lpj=1000000"),
    disks=tuple(GuestDisk(name, size, "virtio-blk-device,physical_block_size=4096", readonly, window)
                for name, size, readonly, window in CONFORMANCE_DISKS),
)
