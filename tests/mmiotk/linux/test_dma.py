"""DMA without an IOMMU on a real kernel: pools whose buffers carry physical addresses (RAM reserved at boot
through /dev/mem; a hugepage located through /proc/self/pagemap), proven by edu's DMA engine copying
between two buffers through its own 4 KiB buffer (bus mastering set through PCI config)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from edu_regs import DMA_TO_RAM, EDU_BUFFER, edu_copy

from hwsim.linux.machines import BACKENDS, RESERVED_BASE, RESERVED_SIZE
from mmiotk import CachePolicy, DmaDirection, DmaPool, MmioResource, PciSysfsSpace
from mmiotk.pci import PCI_COMMAND, PCI_COMMAND_MASTER
from mmiotk.physmem import HugepageSpace, hugepage_pool, physical_address, reserved_ram_pool

pytestmark = pytest.mark.linux_guest(BACKENDS)



@pytest.fixture(params=["reserved-ram", "hugepage"])
def pool(request: pytest.FixtureRequest) -> Iterator[DmaPool]:
    made = reserved_ram_pool(RESERVED_BASE, RESERVED_SIZE) if request.param == "reserved-ram" else hugepage_pool()
    yield made
    made.close()


@pytest.fixture
def edu_dma(edu: str) -> Iterator:
    space = PciSysfsSpace(edu)
    bar = space.bar(0)
    regs = MmioResource(space, bar.start, bar.size).create_region(bar.start, bar.size, "edu").map(
        CachePolicy.UNCACHED_DEVICE)
    space.config.modify_command(set_=PCI_COMMAND_MASTER)
    yield regs
    space.config.modify_command(clear=PCI_COMMAND_MASTER)
    assert not space.config.read16(PCI_COMMAND) & PCI_COMMAND_MASTER




def test_edu_dma_copies_between_pool_buffers_at_their_device_addresses(pool: DmaPool, edu_dma) -> None:
    src = pool.alloc(2048, name="src")
    dst = pool.alloc(2048, name="dst")
    assert src.dma_addr == src.paddr and dst.dma_addr != src.dma_addr  # no IOMMU: bus address = physical
    src[:] = np.random.default_rng(13).integers(0, 256, 2048, dtype=np.uint8)
    src.sync_for_device(DmaDirection.TO_DEVICE)
    edu_copy(edu_dma, src.dma_addr, EDU_BUFFER, 2048, 0)  # RAM -> edu
    edu_copy(edu_dma, EDU_BUFFER + 16, dst.dma_addr + 16, 1024, DMA_TO_RAM)  # edu -> RAM, offset
    dst.sync_for_cpu(DmaDirection.FROM_DEVICE)
    assert not dst[:16].any()
    assert (dst[16:16 + 1024] == src[16:16 + 1024]).all()
    assert not dst[16 + 1024:].any()


def test_hugepage_physical_address_comes_from_pagemap() -> None:
    space = HugepageSpace()
    vaddr = int(space.array.__array_interface__["data"][0])
    assert space.base == physical_address(vaddr)
    assert space.base % space.hugepage_size == 0  # a hugepage is aligned to its size physically too
    assert physical_address(vaddr + 0x1234) == space.base + 0x1234
