"""The machines the project's guest tests boot. Each distinct machine costs one boot per test run, so tests
share these rather than defining near-copies.

`BACKENDS` carries a device for each hardware backend: QEMU's `edu` (BAR0 registers, INTx, a DMA engine),
`ivshmem-plain` (a prefetchable BAR2 of shared memory, write-combining through resource2_wc), 16 MiB of RAM
reserved at boot at 0x8000000 (`memmap=`: /dev/mem may map it, DMA memory with known physical addresses),
and 2 MiB hugepages.
"""

from __future__ import annotations

from .machine import Machine

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

# `IOMMU`: an Intel vIOMMU with interrupt remapping in front of an edu device, for VFIO (type1v2): DMA through
# IOVAs user space maps, interrupts on eventfds.
IOMMU = Machine(
    "iommu",
    board="q35,kernel-irqchip=split",
    devices=("-device", "intel-iommu,intremap=on", "-device", "edu,addr=04.0,dma_mask=0xffffffffffffffff"),
    cmdline=("intel_iommu=on",),
)
