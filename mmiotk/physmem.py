"""DMA memory on Linux without an IOMMU: memory whose physical addresses are the device's addresses.

Two sources, both root-only:
- RAM reserved at boot (kernel parameter `memmap=SIZE$BASE`) mapped through /dev/mem: STRICT_DEVMEM allows
  it because it is not System RAM, and nothing else uses it. `reserved_ram_pool(base, size)`.
- Hugepages from a hugetlbfs mount: pinned by nature (never swapped or migrated), physically contiguous per
  page, their physical addresses read from /proc/self/pagemap. `HugepageSpace` and `hugepage_pool()`.

With an IOMMU in front of the device these addresses are wrong; VFIO's IOVAs are the way there.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from .devmem import DevMemSpace
from .dma import DmaPool
from .errors import MmioError, MmioValueError
from .policy import CachePolicy
from .space import PAGE_SIZE, AddressSpace, MemoryWindow, Window

PAGEMAP_PRESENT = 1 << 63
PAGEMAP_PFN_MASK = (1 << 55) - 1


def reserved_ram_pool(base: int, size: int, *, path: str | os.PathLike[str] = "/dev/mem",
                      name: str | None = None) -> DmaPool:
    """A coherent pool over RAM the kernel was told to leave alone (memmap=SIZE$BASE); dma_addr == paddr."""
    return DmaPool.from_space(DevMemSpace(path), base, size, coherent=True, name=name or f"reserved@{base:#x}")


def physical_address(vaddr: int, pagemap: str | os.PathLike[str] = "/proc/self/pagemap") -> int:
    """The physical address behind virtual address `vaddr` of this process (the page must be present)."""
    try:
        with open(pagemap, "rb") as f:
            f.seek(vaddr // PAGE_SIZE * 8)
            raw = f.read(8)
    except OSError as exc:
        raise MmioError(f"cannot read {pagemap}: {exc.strerror}") from None
    if len(raw) != 8:
        raise MmioError(f"{pagemap}: no entry for virtual address {vaddr:#x}")
    entry = struct.unpack("<Q", raw)[0]
    if not entry & PAGEMAP_PRESENT:
        raise MmioError(f"{pagemap}: virtual address {vaddr:#x} is not present in memory")
    pfn = entry & PAGEMAP_PFN_MASK
    if pfn == 0:
        raise MmioError(f"{pagemap} hides physical frame numbers (reading them needs CAP_SYS_ADMIN: root)")
    return pfn * PAGE_SIZE + vaddr % PAGE_SIZE


def _hugepage_size(mount: Path) -> int:
    stat = os.statvfs(mount)
    return stat.f_bsize


class HugepageSpace(AddressSpace):
    """Hugepages from a hugetlbfs `mount`, addressed by their physical addresses.

    Consecutive hugepages are rarely physically consecutive; a space larger than one hugepage is refused
    unless they happen to be (a device sees one contiguous range, as the pool promises).
    """

    def __init__(self, size: int | None = None, *, mount: str | os.PathLike[str] = "/dev/hugepages",
                 pagemap: str | os.PathLike[str] = "/proc/self/pagemap", name: str = "hugepages") -> None:
        mount = Path(mount)
        try:
            page = _hugepage_size(mount)
        except OSError as exc:
            raise MmioError(f"hugepages: cannot stat the hugetlbfs mount {mount}: {exc.strerror}") from None
        size = page if size is None else size
        if not isinstance(size, int) or size <= 0 or size % page:
            raise MmioValueError(f"hugepages: size must be a positive multiple of the hugepage size {page:#x}, "
                                 f"got {size!r}")
        fd, path = tempfile.mkstemp(dir=mount, prefix="mmiotk-dma-")
        try:
            os.unlink(path)  # the pages live as long as the mapping
            os.ftruncate(fd, size)
            self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            raise MmioError(f"hugepages: cannot get {size:#x} bytes from {mount} ({exc.strerror}; are enough "
                            "reserved? kernel parameter hugepages=N or /proc/sys/vm/nr_hugepages)") from None
        finally:
            os.close(fd)
        self.array = np.frombuffer(self._mmap, dtype=np.uint8)
        vbase = int(self.array.__array_interface__["data"][0])
        try:
            for off in range(0, size, page):
                self.array[off] = 0  # fault the page in; hugetlb pages then stay put
            phys = [physical_address(vbase + off, pagemap) for off in range(0, size, page)]
        except MmioError:
            self._release()
            raise
        if any(p != phys[0] + i * page for i, p in enumerate(phys)):
            self._release()
            raise MmioError(f"hugepages: the {len(phys)} pages are not physically contiguous "
                            f"({', '.join(hex(p) for p in phys)}); use one hugepage ({page:#x} bytes) per space")
        self.hugepage_size = page
        super().__init__(phys[0], size, name=name)

    def _release(self) -> None:
        del self.array
        self._mmap.close()

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        start = paddr - self.base
        return MemoryWindow(paddr, memoryview(self._mmap)[start:start + size], f"hugepage at {self.base:#x}")


def hugepage_pool(size: int | None = None, *, mount: str | os.PathLike[str] = "/dev/hugepages",
                  name: str | None = None) -> DmaPool:
    """A coherent pool over hugepages; buffers' dma_addr are physical addresses."""
    space = HugepageSpace(size, mount=mount)
    return DmaPool.from_space(space, coherent=True, name=name or f"hugepages@{space.base:#x}")
