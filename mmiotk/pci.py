"""PCI BARs through sysfs: /sys/bus/pci/devices/BDF/resourceN (uncached) and resourceN_wc (write-combining,
prefetchable BARs only). The `resource` file lists "start end flags" per BAR. Roots are configurable so
tests run against a tree of regular files."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MmioError, OutOfRangeError, PolicyError
from .policy import CachePolicy
from .space import AddressSpace, MemoryWindow, Window, page_span

IORESOURCE_MEM = 0x200
IORESOURCE_PREFETCH = 0x2000


@dataclass(frozen=True)
class PciBar:
    index: int
    start: int
    size: int
    flags: int

    @property
    def prefetchable(self) -> bool:
        return bool(self.flags & IORESOURCE_PREFETCH)


class PciSysfsSpace(AddressSpace):
    """The memory BARs of one PCI function."""

    def __init__(self, address: str, *, sysfs_root: str | os.PathLike[str] = "/sys",
                 arch: str | None = None) -> None:
        self.address = address
        self.dir = Path(sysfs_root) / "bus" / "pci" / "devices" / address
        try:
            lines = (self.dir / "resource").read_text().splitlines()
        except OSError as exc:
            raise MmioError(f"PCI {address}: cannot read {self.dir / 'resource'}: {exc}") from None
        bars = []
        for index, line in enumerate(lines[:6]):
            try:
                start, end, flags = (int(word, 16) for word in line.split())
            except ValueError:
                raise MmioError(f"PCI {address}: {self.dir / 'resource'} line {index + 1} is not "
                                f"'start end flags': {line!r}") from None
            if end > start and flags & IORESOURCE_MEM:
                bars.append(PciBar(index, start, end - start + 1, flags))
        if not bars:
            raise MmioError(f"PCI {address}: no memory BARs")
        self.bars = bars
        lo = min(b.start for b in bars)
        hi = max(b.start + b.size for b in bars)
        super().__init__(lo, hi - lo, name=f"pci {address}", arch=arch)

    def bar(self, index: int) -> PciBar:
        for b in self.bars:
            if b.index == index:
                return b
        raise MmioError(f"PCI {self.address}: BAR {index} is not a memory BAR")

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        for bar in self.bars:
            if bar.start <= paddr and paddr + size <= bar.start + bar.size:
                break
        else:
            raise OutOfRangeError(f"PCI {self.address}: [{paddr:#x}, {paddr + size:#x}) is in no BAR")
        if policy is CachePolicy.CACHED:
            raise PolicyError(f"PCI {self.address} BAR {bar.index}: sysfs offers no cached mapping")
        name = f"resource{bar.index}"
        if policy is CachePolicy.WRITE_COMBINING:
            if not bar.prefetchable or not (self.dir / f"{name}_wc").exists():
                raise PolicyError(f"PCI {self.address} BAR {bar.index}: write-combining needs a prefetchable "
                                  f"BAR with {name}_wc")
            name += "_wc"
        start, length = page_span(paddr - bar.start, size)
        fd = os.open(self.dir / name, os.O_RDWR | os.O_SYNC)
        try:
            mapping = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        finally:
            os.close(fd)
        lo = paddr - bar.start - start
        return MemoryWindow(paddr, memoryview(mapping)[lo:lo + size], f"pci {name}", owner=mapping)
